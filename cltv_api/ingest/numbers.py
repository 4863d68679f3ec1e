"""Numbers as people type them: decimal comma, thousands separators, currency, signs.

Detection works on *classes* of values (regular expressions shared by Python's ``re`` and
DuckDB's RE2, so a sample in Python and a full column in SQL are judged the same way).
A value such as ``1,234`` fits both "decimal comma" (1.234) and "thousands comma" (1234);
other values in the column decide it (``12,5`` means decimal comma, ``1,234.50`` thousands
comma...). When nothing decides it, :class:`~cltv_api.errors.AmbiguousFormat` asks the user
for ``decimal_separator``: we never guess.

Parsing happens in DuckDB SQL macros (see :func:`macro_statements`), so no per-row Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from cltv_api.errors import AmbiguousFormat, InvalidInput
from cltv_api.ingest.sqltext import lit

WS_CHARS = " \t\u00a0\u202f\u2009"
SPACE_CLASS = "[ \u00a0\u202f\u2009]"
_CURRENCY = r"(?:[$€£¥₽₴₸]|руб\.?|р\.|rub|rur|usd|eur|gbp|chf|cny|kzt|uah|byn|грн\.?|тенге|тг)"
CURRENCY_RE = f"^{_CURRENCY}{SPACE_CLASS}*|{SPACE_CLASS}*{_CURRENCY}$"
SPECIAL_RE = r"[-+]?(?:inf|infinity|nan)"
# Any character that is not a digit, separator, sign, parenthesis or space: a letter or a
# currency symbol, so the (slower) currency and case handling is needed.
OTHER_CHARS_RE = "[^0-9 ,.()+−\t\u00a0\u202f\u2009-]"

_G3 = "[1-9][0-9]{0,2}"
CLASSES: dict[str, str] = {
    "int": "[0-9]+",
    "comma_one": "[0-9]*,[0-9]+",
    "comma_amb": f"{_G3},[0-9]{{3}}",
    "dot_one": r"[0-9]*\.[0-9]+",
    "dot_amb": rf"{_G3}\.[0-9]{{3}}",
    "comma_group": f"{_G3}(?:,[0-9]{{3}}){{2,}}",
    "dot_group": rf"{_G3}(?:\.[0-9]{{3}}){{2,}}",
    "comma_group_dot": rf"{_G3}(?:,[0-9]{{3}})+\.[0-9]*",
    "dot_group_comma": rf"{_G3}(?:\.[0-9]{{3}})+,[0-9]*",
    "space_group": f"{_G3}(?:{SPACE_CLASS}[0-9]{{3}})+",
    "space_group_comma": f"{_G3}(?:{SPACE_CLASS}[0-9]{{3}})+,[0-9]*",
    "space_group_dot": rf"{_G3}(?:{SPACE_CLASS}[0-9]{{3}})+\.[0-9]*",
}
_COMPILED = {name: re.compile(pattern) for name, pattern in CLASSES.items()}
_CURRENCY_PY = re.compile(CURRENCY_RE)
_OTHER_PY = re.compile(OTHER_CHARS_RE)


@dataclass(frozen=True)
class NumberFormat:
    """Decimal separator (``"."`` or ``","``) and thousands separator (``None``, ``" "``
    meaning any space incl. U+00A0/U+202F, ``"."`` or ``","``)."""

    decimal: str = "."
    thousands: str | None = None


@dataclass(frozen=True)
class NumberStats:
    """How many non-empty text values fall in each class of :data:`CLASSES`."""

    counts: dict[str, int]

    def __add__(self, other: NumberStats) -> NumberStats:
        keys = set(self.counts) | set(other.counts)
        return NumberStats({k: self.counts.get(k, 0) + other.counts.get(k, 0) for k in keys})

    def get(self, name: str) -> int:
        return self.counts.get(name, 0)


def amount_parts(raw: str, *, strip_currency: bool) -> tuple[bool, str]:
    """Split a typed number into (is negative, unsigned body); mirrors the SQL macros."""
    s = raw.strip(WS_CHARS)
    if _OTHER_PY.search(s):
        s = s.lower()
        if strip_currency:
            s = _CURRENCY_PY.sub("", s).strip(WS_CHARS)
    negative = bool(s) and (s[0] in "-−" or (s[0] == "(" and s[-1] == ")"))
    body = s.lstrip(WS_CHARS + "(+-−").rstrip(WS_CHARS + ")")
    if strip_currency and _OTHER_PY.search(body):
        body = _CURRENCY_PY.sub("", body).strip(WS_CHARS)
    return negative, body


def stats_from_values(values: Iterable[str], *, strip_currency: bool) -> NumberStats:
    """Class counts over text values (Python side, used on a sample)."""
    counts = dict.fromkeys(CLASSES, 0)
    for value in values:
        _, body = amount_parts(value, strip_currency=strip_currency)
        for name, rx in _COMPILED.items():
            if rx.fullmatch(body):
                counts[name] += 1
    return NumberStats(counts)


def stats_select(body_expr: str) -> list[str]:
    """SQL aggregate expressions counting the classes of ``body_expr`` (order of CLASSES)."""
    return [
        f"count(*) FILTER (WHERE regexp_full_match({body_expr}, {lit(pattern)}))"
        for pattern in CLASSES.values()
    ]


def stats_from_row(row: tuple[object, ...]) -> NumberStats:
    """Turn the result row of :func:`stats_select` back into :class:`NumberStats`."""
    return NumberStats({name: int(str(v)) for name, v in zip(CLASSES, row, strict=True)})


def decide_number_format(
    stats: NumberStats,
    *,
    columns: str,
    decimal: str | None = None,
    thousands: str | None = None,
) -> NumberFormat:
    """Choose the number format that reads every value one way, or raise AmbiguousFormat.

    ``decimal``/``thousands`` are the user's overrides (``thousands=""`` means none).
    """
    if decimal is not None and thousands is not None:
        return NumberFormat(decimal, thousands or None)
    c = stats.get
    dec_evidence = {
        ",": c("comma_one") - c("comma_amb") + c("dot_group_comma") + c("space_group_comma"),
        ".": c("dot_one") - c("dot_amb") + c("comma_group_dot") + c("space_group_dot"),
    }
    thou_evidence = {
        " ": c("space_group") + c("space_group_comma") + c("space_group_dot"),
        ",": c("comma_group") + c("comma_group_dot"),
        ".": c("dot_group") + c("dot_group_comma"),
    }
    dec = decimal if decimal is not None else _single(dec_evidence, columns, "decimal")
    if thousands is not None:
        thou: str | None = thousands or None
    else:
        if dec is not None and thou_evidence.get(dec, 0) > 0:
            raise AmbiguousFormat(
                f"Numbers in {columns} use {dec!r} both as decimal and as thousands separator; "
                "pass decimal_separator and thousands_separator.",
                extra={"columns": columns},
            )
        thou = _single(thou_evidence, columns, "thousands")
    for ch, amb in ((",", "comma_amb"), (".", "dot_amb")):
        if c(amb) == 0 or ch in (dec, thou):
            continue
        if dec is not None and thou is None:
            thou = ch
        elif dec is None and thou is not None:
            dec = ch
        elif dec is None:
            example = "1,234" if ch == "," else "1.234"
            raise AmbiguousFormat(
                f"Numbers in {columns} such as {example!r} can be read two ways (thousands "
                f"separator or decimal {ch!r}) and no value decides it; pass "
                "decimal_separator='.' or ','.",
                extra={"columns": columns},
            )
    if dec is None:
        dec = "," if thou == "." else "."
    return NumberFormat(dec, thou)


def _single(evidence: dict[str, int], columns: str, what: str) -> str | None:
    seen = [ch for ch, n in evidence.items() if n > 0]
    if len(seen) > 1:
        shown = " and ".join(repr(ch) for ch in seen)
        raise AmbiguousFormat(
            f"Numbers in {columns} mix {shown} as {what} separator; pass "
            f"{what}_separator=... to say which one the file uses.",
            extra={"columns": columns},
        )
    return seen[0] if seen else None


def macro_statements(strip_currency: bool) -> list[str]:
    """DuckDB macros that clean a typed number (format independent).

    ``cltv_amt_s1(v)``: trimmed, currency removed (lower-cased when it has letters);
    ``cltv_amt_neg(s)``: whether ``s`` is negative (``-``, U+2212 or accounting
    parentheses); ``cltv_amt_body(s)``: the unsigned digits and separators. The regular
    expressions run only on values with characters other than digits, separators and signs,
    so plain numbers cost a few string operations.
    """
    ws = lit(WS_CHARS)
    other = lit(OTHER_CHARS_RE)
    letters = f"lower(trim(v, {ws}))"
    if strip_currency:
        letters = f"trim(regexp_replace({letters}, {lit(CURRENCY_RE)}, '', 'g'), {ws})"
    s1 = f"CASE WHEN regexp_matches(v, {other}) THEN {letters} ELSE trim(v, {ws}) END"
    body = f"rtrim(ltrim(s, {lit(WS_CHARS + '(+-−')}), {lit(WS_CHARS + ')')})"
    if strip_currency:
        body = (
            f"CASE WHEN regexp_matches(s, {other}) THEN trim(regexp_replace({body}, "
            f"{lit(CURRENCY_RE)}, '', 'g'), {ws}) ELSE {body} END"
        )
    return [
        f"CREATE OR REPLACE TEMP MACRO cltv_amt_s1(v) AS ({s1})",
        "CREATE OR REPLACE TEMP MACRO cltv_amt_neg(s) AS "
        "(left(s, 1) IN ('-', '−') OR (left(s, 1) = '(' AND right(s, 1) = ')'))",
        f"CREATE OR REPLACE TEMP MACRO cltv_amt_body(s) AS ({body})",
    ]


def number_regex(fmt: NumberFormat) -> str:
    """RE2/Python regex a cleaned, unsigned number body must fully match under ``fmt``."""
    d = re.escape(fmt.decimal)
    alternatives = [f"[0-9]+(?:{d}[0-9]*)?(?:e[-+]?[0-9]+)?", f"{d}[0-9]+"]
    if fmt.thousands is not None:
        t = SPACE_CLASS if fmt.thousands == " " else re.escape(fmt.thousands)
        alternatives.insert(0, f"[0-9]{{1,3}}(?:{t}[0-9]{{3}})+(?:{d}[0-9]*)?")
    return "(?:" + "|".join(alternatives) + ")"


def parse_macro_statement(fmt: NumberFormat) -> str:
    """``cltv_num(v)``: DOUBLE from typed text under ``fmt``, NULL when it is no number.

    ``inf``/``nan`` spelled out parse to non-finite values so validation can name them.
    """
    if fmt.decimal not in (".", ","):
        raise InvalidInput(f"unsupported decimal separator {fmt.decimal!r}")
    b = "cltv_amt_body(cltv_amt_s1(v))"
    plain = b
    if fmt.thousands is not None:
        t = SPACE_CLASS if fmt.thousands == " " else re.escape(fmt.thousands)
        plain = f"regexp_replace({plain}, {lit(t)}, '', 'g')"
    if fmt.decimal == ",":
        plain = f"replace({plain}, ',', '.')"
    # Fast path for the usual case, bare digits with an optional decimal part: the general
    # branch below gives the same number for them (nothing to trim, strip or negate), at a
    # fraction of the cost.
    simple = f"[0-9]+(?:{re.escape(fmt.decimal)}[0-9]+)?"
    simple_value = "v" if fmt.decimal == "." else "replace(v, ',', '.')"
    return (
        "CREATE OR REPLACE TEMP MACRO cltv_num(v) AS (CASE "
        f"WHEN regexp_full_match(v, {lit(simple)}) THEN TRY_CAST({simple_value} AS DOUBLE) "
        f"WHEN regexp_full_match({b}, {lit(number_regex(fmt))}) "
        "AND (left(cltv_amt_s1(v), 1) = '(') = (right(cltv_amt_s1(v), 1) = ')') THEN "
        f"(CASE WHEN cltv_amt_neg(cltv_amt_s1(v)) THEN -1.0 ELSE 1.0 END) "
        f"* TRY_CAST({plain} AS DOUBLE) "
        f"WHEN regexp_full_match(cltv_amt_s1(v), {lit(SPECIAL_RE)}) "
        "THEN TRY_CAST(cltv_amt_s1(v) AS DOUBLE) END)"
    )
