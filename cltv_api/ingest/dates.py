"""Date and timestamp formats: detection from values and parsing in DuckDB SQL.

Recognised: ISO 8601 (``2024-03-01``, ``2024-03-01T10:30:00``, an offset is dropped and the
wall-clock time kept), ``yyyy/mm/dd``, ``dd.mm.yyyy``, ``dd.mm.yy``, ``dd/mm/yyyy`` and
``mm/dd/yyyy`` (also with 2-digit years and ``-``), ``yyyymmdd``, Excel serial day numbers
(days since 1899-12-30, the 1900 date system; the 1904 system is used for workbooks that
declare it) and Unix timestamps in seconds or milliseconds. Any of these may carry a time
``HH:MM[:SS[.ffffff]]``.

Day-first versus month-first is decided over *every* value: a first part above 12 means
dd/mm, a second part above 12 means mm/dd; when all parts are <= 12 the column is ambiguous
and :class:`~cltv_api.errors.AmbiguousFormat` asks for ``date_format``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from cltv_api.errors import AmbiguousFormat, InvalidInput
from cltv_api.ingest.sqltext import lit, str_list

_TIME = r"(?: [0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)?"
ISO_RE = (
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"(?:[T ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?)?"
    r"(?: ?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?))?"
)
NUMBER_RE = r"[0-9]+(?:\.[0-9]+)?"
COMPACT_RE = r"(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"

EXCEL_EPOCH_1900 = date(1899, 12, 30)
EXCEL_EPOCH_1904 = date(1904, 1, 1)
_EXCEL_MAX_SERIAL = 100_000  # 2173-10-14: larger numbers are not plausible Excel dates
_UNIX_S = (1e8, 1e11)  # 1973-03-03 .. 5138-11-16
_UNIX_MS = (1e11, 1e14)

DateKind = Literal["strptime", "iso", "excel", "unix_s", "unix_ms"]


@dataclass(frozen=True)
class Family:
    """A family of textual date layouts; ``ambiguous`` families need the dd/mm decision."""

    name: str
    pattern: str
    formats: tuple[str, ...] = ()
    day_first: tuple[str, ...] = ()
    month_first: tuple[str, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return bool(self.day_first)


FAMILIES: tuple[Family, ...] = (
    Family("ymd_slash", rf"[0-9]{{4}}/[0-9]{{1,2}}/[0-9]{{1,2}}{_TIME}", ("%Y/%m/%d",)),
    Family("dmy_dot", rf"[0-9]{{1,2}}\.[0-9]{{1,2}}\.[0-9]{{4}}{_TIME}", ("%d.%m.%Y",)),
    Family("dmy_dot_short", rf"[0-9]{{1,2}}\.[0-9]{{1,2}}\.[0-9]{{2}}{_TIME}", ("%d.%m.%y",)),
    Family(
        "slash",
        rf"([0-9]{{1,2}})/([0-9]{{1,2}})/[0-9]{{4}}{_TIME}",
        day_first=("%d/%m/%Y",),
        month_first=("%m/%d/%Y",),
    ),
    Family(
        "slash_short",
        rf"([0-9]{{1,2}})/([0-9]{{1,2}})/[0-9]{{2}}{_TIME}",
        day_first=("%d/%m/%y",),
        month_first=("%m/%d/%y",),
    ),
    Family(
        "dash",
        rf"([0-9]{{1,2}})-([0-9]{{1,2}})-[0-9]{{4}}{_TIME}",
        day_first=("%d-%m-%Y",),
        month_first=("%m-%d-%Y",),
    ),
)
_FAMILY_RX = {f.name: re.compile(f.pattern) for f in FAMILIES}
_ISO_RX = re.compile(ISO_RE)
_NUMBER_RX = re.compile(NUMBER_RE)
_COMPACT_RX = re.compile(COMPACT_RE)


@dataclass(frozen=True)
class DateSpec:
    """How to parse a date column: ``label`` is what the user sees (e.g. ``%d.%m.%Y``)."""

    kind: DateKind
    label: str
    formats: tuple[str, ...] = ()
    excel_epoch: date = EXCEL_EPOCH_1900


@dataclass
class DateStats:
    """Counts of non-empty text values per layout, plus what the dd/mm and number rules need."""

    nonempty: int = 0
    iso: int = 0
    number: int = 0
    compact: int = 0
    number_min: float | None = None
    number_max: float | None = None
    families: dict[str, int] = field(default_factory=dict)
    max_first: dict[str, int] = field(default_factory=dict)
    max_second: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def __add__(self, other: DateStats) -> DateStats:
        return DateStats(
            nonempty=self.nonempty + other.nonempty,
            iso=self.iso + other.iso,
            number=self.number + other.number,
            compact=self.compact + other.compact,
            number_min=_opt(min, self.number_min, other.number_min),
            number_max=_opt(max, self.number_max, other.number_max),
            families=_merge(self.families, other.families, lambda a, b: a + b),
            max_first=_merge(self.max_first, other.max_first, max),
            max_second=_merge(self.max_second, other.max_second, max),
            examples=(self.examples + other.examples)[:5],
        )


def stats_from_values(values: Iterable[str]) -> DateStats:
    """Layout counts over text values (Python side, used on a sample)."""
    st = DateStats()
    for raw in values:
        v = raw.strip()
        if not v:
            continue
        st.nonempty += 1
        if _ISO_RX.fullmatch(v):
            st.iso += 1
            continue
        if _NUMBER_RX.fullmatch(v):
            st.number += 1
            x = float(v)
            st.number_min = x if st.number_min is None else min(st.number_min, x)
            st.number_max = x if st.number_max is None else max(st.number_max, x)
            st.compact += bool(_COMPACT_RX.fullmatch(v))
            continue
        for fam in FAMILIES:
            m = _FAMILY_RX[fam.name].fullmatch(v)
            if m is None:
                continue
            st.families[fam.name] = st.families.get(fam.name, 0) + 1
            if fam.ambiguous:
                first, second = int(m.group(1)), int(m.group(2))
                st.max_first[fam.name] = max(st.max_first.get(fam.name, 0), first)
                st.max_second[fam.name] = max(st.max_second.get(fam.name, 0), second)
            break
        else:
            if len(st.examples) < 5:
                st.examples.append(v[:40])
    return st


def stats_select(expr: str) -> list[str]:
    """SQL aggregates over the trimmed text ``expr`` (NULL/empty excluded by the caller).

    Families are counted independently here (a value matches at most one family, since
    their separators differ), matching :func:`stats_from_values`.
    """
    iso = f"regexp_full_match({expr}, {lit(ISO_RE)})"
    num = f"(NOT {iso} AND regexp_full_match({expr}, {lit(NUMBER_RE)}))"
    out = [
        "count(*)",
        f"count(*) FILTER (WHERE {iso})",
        f"count(*) FILTER (WHERE {num})",
        f"count(*) FILTER (WHERE {num} AND regexp_full_match({expr}, {lit(COMPACT_RE)}))",
        f"min(TRY_CAST({expr} AS DOUBLE)) FILTER (WHERE {num})",
        f"max(TRY_CAST({expr} AS DOUBLE)) FILTER (WHERE {num})",
    ]
    for fam in FAMILIES:
        match = f"regexp_full_match({expr}, {lit(fam.pattern)})"
        out.append(f"count(*) FILTER (WHERE {match})")
        if fam.ambiguous:
            for group in (1, 2):
                part = f"TRY_CAST(regexp_extract({expr}, {lit(fam.pattern)}, {group}) AS INTEGER)"
                out.append(f"max({part}) FILTER (WHERE {match})")
    return out


def stats_from_row(row: tuple[object, ...]) -> DateStats:
    """Turn the result row of :func:`stats_select` back into :class:`DateStats`."""
    values = list(row)
    st = DateStats(
        nonempty=_int(values[0]),
        iso=_int(values[1]),
        number=_int(values[2]),
        compact=_int(values[3]),
        number_min=None if values[4] is None else float(str(values[4])),
        number_max=None if values[5] is None else float(str(values[5])),
    )
    i = 6
    for fam in FAMILIES:
        n = _int(values[i])
        i += 1
        if n:
            st.families[fam.name] = n
        if fam.ambiguous:
            if n:
                st.max_first[fam.name] = _int(values[i])
                st.max_second[fam.name] = _int(values[i + 1])
            i += 2
    return st


def spec_from_override(date_format: str, *, excel_epoch: date = EXCEL_EPOCH_1900) -> DateSpec:
    """The DateSpec for a user's ``date_format``."""
    key = date_format.strip().lower()
    if key == "iso":
        return DateSpec("iso", "iso")
    if key == "excel":
        return DateSpec("excel", "excel", excel_epoch=excel_epoch)
    if key in ("unix", "unix_s"):
        return DateSpec("unix_s", "unix_s")
    if key == "unix_ms":
        return DateSpec("unix_ms", "unix_ms")
    if "%" not in date_format:
        raise InvalidInput(
            f"date_format {date_format!r} is neither a strptime format (like '%d/%m/%Y') nor "
            "one of 'iso', 'excel', 'unix_s', 'unix_ms'"
        )
    return DateSpec("strptime", date_format, _with_times((date_format,)))


def decide_date_spec(
    stats: DateStats, *, column: str, excel_epoch: date = EXCEL_EPOCH_1900
) -> DateSpec:
    """The one layout that reads the column, or raise (AmbiguousFormat for dd/mm vs mm/dd)."""
    if stats.nonempty == 0:
        raise InvalidInput(f"Date column {column!r} is empty.", extra={"column": column})
    candidates = dict(stats.families)
    if stats.number:
        candidates["number"] = stats.number
    if not candidates:
        if stats.iso:
            return DateSpec("iso", "iso")
        shown = (
            f" (e.g. {', '.join(repr(e) for e in stats.examples[:3])})" if stats.examples else ""
        )
        raise InvalidInput(
            f"Could not recognise the dates in column {column!r}{shown}; pass "
            "date_format (e.g. '%d.%m.%Y').",
            extra={"column": column},
        )
    ranked = sorted(candidates.items(), key=lambda kv: -kv[1])
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        raise AmbiguousFormat(
            f"Column {column!r} mixes date layouts ({ranked[0][0]} and {ranked[1][0]}) in "
            "equal numbers; pass date_format.",
            extra={"column": column},
        )
    name = ranked[0][0]
    if name == "number":
        return _numeric_spec(stats, column, excel_epoch)
    family = next(f for f in FAMILIES if f.name == name)
    if not family.ambiguous:
        return DateSpec("strptime", family.formats[0], _with_times(family.formats))
    return _day_or_month_first(stats, family, column)


def _day_or_month_first(stats: DateStats, family: Family, column: str) -> DateSpec:
    first = stats.max_first.get(family.name, 0)
    second = stats.max_second.get(family.name, 0)
    dmy, mdy = family.day_first[0], family.month_first[0]
    if first > 12 and second <= 12:
        return DateSpec("strptime", dmy, _with_times(family.day_first))
    if second > 12 and first <= 12:
        return DateSpec("strptime", mdy, _with_times(family.month_first))
    if first > 12 and second > 12:
        raise InvalidInput(
            f"Dates in column {column!r} have values above 12 in both the first and the second "
            f"position, so neither {dmy!r} nor {mdy!r} reads them all; pass date_format.",
            extra={"column": column},
        )
    raise AmbiguousFormat(
        f"Dates in column {column!r} fit both day-first ({dmy}) and month-first ({mdy}): no "
        f"day is above 12. Pass date_format={dmy!r} or date_format={mdy!r}.",
        extra={"column": column, "candidates": [dmy, mdy]},
    )


def _numeric_spec(stats: DateStats, column: str, excel_epoch: date) -> DateSpec:
    lo, hi = stats.number_min or 0.0, stats.number_max or 0.0
    if stats.compact == stats.number:
        return DateSpec("strptime", "%Y%m%d", ("%Y%m%d",))
    if lo >= 1 and hi < _EXCEL_MAX_SERIAL:
        return DateSpec("excel", "excel", excel_epoch=excel_epoch)
    if _UNIX_S[0] <= lo and hi < _UNIX_S[1]:
        return DateSpec("unix_s", "unix_s")
    if _UNIX_MS[0] <= lo and hi < _UNIX_MS[1]:
        return DateSpec("unix_ms", "unix_ms")
    raise InvalidInput(
        f"Numbers in date column {column!r} (from {lo:g} to {hi:g}) are neither Excel serial "
        "dates nor Unix timestamps; pass date_format.",
        extra={"column": column},
    )


def parse_sql(spec: DateSpec, text_expr: str) -> str:
    """SQL TIMESTAMP expression parsing trimmed text ``text_expr`` under ``spec`` (NULL if not)."""
    v = text_expr
    iso = f"(CASE WHEN regexp_full_match({v}, {lit(ISO_RE)}) THEN TRY_CAST({v} AS TIMESTAMP) END)"
    number = (
        f"(CASE WHEN regexp_full_match({v}, {lit(NUMBER_RE)}) THEN TRY_CAST({v} AS DOUBLE) END)"
    )
    if spec.kind == "iso":
        return iso
    if spec.kind == "strptime":
        # Failed strptime attempts are slow: try the formats with a time part only on
        # values that have one.
        plain = [f for f in spec.formats if "%H" not in f and "%I" not in f]
        timed = [f for f in spec.formats if f not in plain]
        parsed = f"try_strptime({v}, {str_list(timed or plain)})"
        if plain and timed:
            parsed = (
                f"(CASE WHEN contains({v}, ':') THEN try_strptime({v}, {str_list(timed)}) "
                f"ELSE try_strptime({v}, {str_list(plain)}) END)"
            )
        return f"COALESCE({parsed}, {iso})"
    if spec.kind == "excel":
        epoch = spec.excel_epoch.isoformat()
        seconds = f"TRY_CAST(round({number} * 86400) AS BIGINT)"
        return (
            f"(CASE WHEN {number} BETWEEN 0 AND 2958465 THEN "
            f"TIMESTAMP '{epoch}' + to_seconds({seconds}) END)"
        )
    scale = 1_000_000 if spec.kind == "unix_s" else 1_000
    return (
        f"(CASE WHEN {number} BETWEEN -1e11 AND 1e14 THEN "
        f"make_timestamp(TRY_CAST(round({number} * {scale}) AS BIGINT)) END)"
    )


def _with_times(formats: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for fmt in formats:
        if "%H" in fmt or "%I" in fmt:
            out.append(fmt)
            continue
        out.extend((fmt, f"{fmt} %H:%M:%S", f"{fmt} %H:%M", f"{fmt} %H:%M:%S.%f"))
    return tuple(out)


def _int(value: object) -> int:
    return 0 if value is None else int(str(value))


def _opt(fn: Callable[[float, float], float], a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return fn(a, b)


def _merge(a: dict[str, int], b: dict[str, int], how: Callable[[int, int], int]) -> dict[str, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = how(out[k], v) if k in out else v
    return out
