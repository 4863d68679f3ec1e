"""Row checks in SQL and the structured validation report.

Each :class:`Problem` is a SQL condition over a parsed table. The checker counts every kind
over the whole table (one pass for all kinds), lists the first ``max_issues_per_kind`` rows of
each kind that occurs, and applies the policy of its category:

* ``error`` (unreadable rows: missing id, unparsable or impossible value, malformed CSV
  line) -> ``on_error``: ``reject`` the file or ``drop`` the rows;
* ``negative`` -> ``negative_amounts``; ``zero`` -> ``zero_amounts``;
* ``future`` -> ``future_dates`` (``error`` defers to ``on_error``);
* ``warning`` -> always kept, only reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb

from cltv_api.errors import FieldError, InvalidInput
from cltv_api.ingest.options import ParseOptions
from cltv_api.ingest.readers import STAGED, Staged

Category = Literal["error", "negative", "zero", "future", "warning"]
Action = Literal["reject", "drop", "keep"]
VALUE_CHARS = 100


@dataclass(frozen=True)
class Problem:
    """One kind of problem: ``condition`` (SQL boolean) flags the rows that have it and
    ``value`` (SQL text) is what the report shows for such a row."""

    kind: str
    column: str | None
    condition: str
    value: str | None
    message: str
    category: Category = "error"


@dataclass(frozen=True)
class Issue:
    """One reported row: ``row`` is the line (CSV, header included) or sheet row (XLSX)."""

    kind: str
    row: int | None
    column: str | None
    value: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "message": self.message,
        }


@dataclass
class ValidationReport:
    """What was checked, what was found and what was done about it.

    ``counts`` holds the total number of rows per problem kind (not only the listed ones),
    ``actions`` what was done per kind (``rejected``, ``dropped``, ``kept``), ``policies``
    the options in force and ``issues`` the first rows of every kind.
    """

    rows_read: int = 0
    rows_kept: int = 0
    rows_dropped: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    actions: dict[str, str] = field(default_factory=dict)
    policies: dict[str, str] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def field_errors(self, kinds: Sequence[str] | None = None) -> list[FieldError]:
        """Issues as the service's FieldErrors (optionally only some kinds)."""
        return [
            FieldError(field=i.column or i.kind, message=i.message, row=i.row, value=i.value)
            for i in self.issues
            if kinds is None or i.kind in kinds
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_dropped": self.rows_dropped,
            "counts": dict(self.counts),
            "actions": dict(self.actions),
            "policies": dict(self.policies),
            "issues": [i.as_dict() for i in self.issues],
            "notes": list(self.notes),
        }


def action_for(category: Category, options: ParseOptions) -> Action:
    """What the options say to do with rows of a category."""
    if category == "warning":
        return "keep"
    if category == "negative":
        return options.negative_amounts
    if category == "zero":
        return options.zero_amounts
    if category == "future" and options.future_dates != "error":
        return options.future_dates
    return options.on_error


def policies_of(options: ParseOptions) -> dict[str, str]:
    return {
        "on_error": options.on_error,
        "negative_amounts": options.negative_amounts,
        "zero_amounts": options.zero_amounts,
        "future_dates": options.future_dates,
    }


def guarded(condition: str) -> str:
    """NULL-safe boolean: a NULL condition counts as false."""
    return f"COALESCE(({condition}), false)"


@dataclass(frozen=True)
class Checked:
    """What :func:`check` found: ``drop`` is the SQL condition of the rows to drop (``false``
    when none), ``kept`` the number of rows of the table it does not flag."""

    drop: str
    kept: int


def check(
    con: duckdb.DuckDBPyConnection,
    table: str,
    problems: Sequence[Problem],
    options: ParseOptions,
    staged: Staged,
    report: ValidationReport,
    *,
    raw: Mapping[str, str] | None = None,
) -> Checked:
    """Count and list ``problems`` over ``table`` into ``report``; return the rows to drop and
    how many are kept. Rejections are raised by :func:`raise_if_rejected`.

    Every kind and the kept rows are counted in one pass over the table; the rows of a kind are
    listed only when it occurs. ``raw`` names columns of ``table`` that hold the file's text
    only where it was needed to parse (see :mod:`layouts`): for the listed rows they are read
    again, in full, from the staged file (``{column: SQL over staged}``).
    """
    dropping = [p for p in problems if action_for(p.category, options) == "drop"]
    kept_when = f"NOT ({' OR '.join(guarded(p.condition) for p in dropping)})" if dropping else ""
    aggregates = [f"count(*) FILTER (WHERE {guarded(p.condition)})" for p in problems]
    aggregates.append(f"count(*) FILTER (WHERE {kept_when})" if kept_when else "count(*)")
    row = con.execute(f"SELECT {', '.join(aggregates)} FROM {table}").fetchone()
    counts = [int(v) for v in (row or [0] * len(aggregates))]
    drops: list[str] = []
    pending: list[Issue] = []
    for problem, n in zip(problems, counts[:-1], strict=True):
        if n == 0:
            continue
        action = action_for(problem.category, options)
        report.counts[problem.kind] = report.counts.get(problem.kind, 0) + n
        report.actions[problem.kind] = {"reject": "rejected", "drop": "dropped", "keep": "kept"}[
            action
        ]
        if action == "drop":
            drops.append(guarded(problem.condition))
        for user_row, shown in _listed(con, table, problem, options, raw or {}):
            pending.append(
                Issue(problem.kind, int(user_row), problem.column, _short(shown), problem.message)
            )
    _append_with_user_rows(report, pending, staged)
    return Checked(" OR ".join(drops) if drops else "false", counts[-1])


def _listed(
    con: duckdb.DuckDBPyConnection,
    table: str,
    problem: Problem,
    options: ParseOptions,
    raw: Mapping[str, str],
) -> list[tuple[Any, Any]]:
    """``(__row, value as text)`` of the first rows of ``table`` that have ``problem``."""
    value = problem.value or "NULL"
    first = (
        f"FROM {table} WHERE {guarded(problem.condition)} "
        f"ORDER BY __row LIMIT {options.max_issues_per_kind}"
    )
    if not raw:
        return con.execute(f"SELECT __row, CAST({value} AS VARCHAR) {first}").fetchall()
    wanted = [int(r) for (r,) in con.execute(f"SELECT __row {first}").fetchall()]
    if not wanted:
        return []
    texts = ", ".join(f"{sql} AS {name}" for name, sql in raw.items())
    replaced = ", ".join(f"r.{name} AS {name}" for name in raw)
    in_list = ", ".join(map(str, wanted))
    return con.execute(
        f"SELECT __row, CAST({value} AS VARCHAR) FROM (SELECT t.* REPLACE ({replaced}) "
        f"FROM {table} t JOIN (SELECT __row, {texts} FROM {STAGED}) r USING (__row) "
        f"WHERE t.__row IN ({in_list})) ORDER BY __row"
    ).fetchall()


def add_malformed(staged: Staged, options: ParseOptions, report: ValidationReport) -> None:
    """Report CSV lines DuckDB could not split (they are already out of the staged table)."""
    if staged.malformed_count == 0:
        return
    kind = "malformed_row"
    action = action_for("error", options)
    report.counts[kind] = staged.malformed_count
    report.actions[kind] = "rejected" if action == "reject" else "dropped"
    for m in staged.malformed[: options.max_issues_per_kind]:
        report.issues.append(Issue(kind, m.line, None, _short(m.text), m.message))


def raise_if_rejected(report: ValidationReport, what: str = "file") -> None:
    """Raise InvalidInput listing the first rows of every rejected kind, if any."""
    rejected = [k for k, a in report.actions.items() if a == "rejected"]
    if not rejected:
        return
    # nothing is stored: say so in the counts too (not what the policies would have kept)
    report.rows_kept = 0
    report.rows_dropped = report.rows_read
    parts = [f"{report.counts[k]} {k.replace('_', ' ')}" for k in rejected]
    hints = []
    if any(_category_hint(k) == "error" for k in rejected):
        hints.append("fix the rows or pass on_error='drop' to drop them")
    if "negative_amount" in rejected:
        hints.append("negative_amounts='drop' or 'keep' accepts returns")
    if any(k.startswith("future_") for k in rejected):
        hints.append("future_dates='drop' or 'keep', or a later as_of, accepts future dates")
    if "zero_amount" in rejected:
        hints.append("zero_amounts='keep' accepts zero amounts")
    raise InvalidInput(
        f"The {what} was rejected: {', '.join(parts)}. Nothing was stored; "
        + "; ".join(hints)
        + ".",
        errors=report.field_errors(rejected),
        extra={"report": report.as_dict()},
    )


def _category_hint(kind: str) -> str:
    return "negative" if kind == "negative_amount" else "zero" if kind == "zero_amount" else "error"


def _append_with_user_rows(report: ValidationReport, pending: list[Issue], staged: Staged) -> None:
    mapping = staged.user_rows(i.row for i in pending if i.row is not None)
    for issue in pending:
        row = mapping.get(issue.row, issue.row) if issue.row is not None else None
        report.issues.append(Issue(issue.kind, row, issue.column, issue.value, issue.message))


def _short(value: object) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"
