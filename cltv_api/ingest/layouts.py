"""Parsing, checks and the normalised output of each kind of data, in DuckDB SQL.

Normalised Parquet schemas (all timestamps are ``timestamp[us]`` without time zone; segment
columns are strings under their header names, after the fixed columns):

* transactions: ``customer_id`` string, ``date`` timestamp, ``amount`` float64 (in the file's
  currency), ``order_id`` string (only when mapped; rows sharing customer and order id are
  summed into one transaction dated at their earliest date), segments.
* summary (one row per customer, as in Fader, Hardie & Lee 2005): ``customer_id`` string (the
  row number when the file has none), ``frequency`` int64 (repeat purchases), ``recency``
  float64 (time of the last purchase since the first), ``T`` float64 (time since the first
  purchase), ``monetary_value`` float64 (mean repeat-purchase value; only when mapped),
  ``weight`` float64 (customers the row stands for; 1.0 when not mapped), segments.
  ``recency`` and ``T`` keep the file's time unit.
* contractual, cohort layout (survivor counts as in Fader & Hardie 2007, "How to project
  customer retention"): ``cohort`` string, ``period`` int64 (0 = the cohort's start),
  ``survivors`` int64 (customers still active at the start of the period).
* contractual, customer layout: ``customer_id`` string, ``start`` timestamp, ``end``
  timestamp (null while still active), segments.

Each layout returns the SELECT of the rows to store; :func:`~store.publish_parquet` sorts them
by all columns, so the same data always gives the same bytes (and hash), whatever the order
of the rows in the file, its format or the number of threads.

The parsed table keeps the file's text of a value (``<name>_raw``) only where the checks need
it: for untyped (text) columns everywhere, for typed ones (Parquet, Excel cells) only where the
cell has no typed value. The report reads the text of the rows it lists from the staged file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb

from cltv_api.errors import InvalidInput
from cltv_api.ingest.dates import DateSpec, parse_sql
from cltv_api.ingest.mapping import ResolvedMapping
from cltv_api.ingest.numbers import WS_CHARS, NumberFormat
from cltv_api.ingest.options import ParseOptions
from cltv_api.ingest.readers import STAGED, SourceColumn, Staged
from cltv_api.ingest.sqltext import ident, lit
from cltv_api.ingest.validate import (
    Checked,
    Issue,
    Problem,
    ValidationReport,
    add_malformed,
    check,
    raise_if_rejected,
)

_MIN_DATE, _END_DATE = "TIMESTAMP '1900-01-01'", "TIMESTAMP '2101-01-01'"
MAX_AMOUNT = 1e15
"""Largest absolute amount of one transaction, in the file's currency: far above any real
purchase, and low enough that sums and the spend model's moments of millions of them stay
finite (a ``1e308`` amount overflowed the Gamma-Gamma fit)."""
MAX_CUSTOMER_ID_CHARS = 500
"""Longest customer id accepted (the longest ``/v1/fits/{id}/customers/{customer_id}`` takes)."""


def _customer_id_problems(column: str) -> list[Problem]:
    """An empty customer id, and one too long to be an id (a mis-mapped text column)."""
    return [
        Problem("missing_customer_id", column, "customer_id IS NULL", None, "customer id is empty"),
        Problem(
            "customer_id_too_long",
            column,
            f"length(customer_id) > {MAX_CUSTOMER_ID_CHARS}",
            "customer_id",
            f"customer id is longer than {MAX_CUSTOMER_ID_CHARS} characters",
        ),
    ]


@dataclass
class Context:
    """Everything a layout needs: the connection, staged data, mapping and formats."""

    con: duckdb.DuckDBPyConnection
    staged: Staged
    resolved: ResolvedMapping
    options: ParseOptions
    number: NumberFormat
    date_spec: DateSpec | None
    as_of: date
    raw: dict[str, str] = field(default_factory=dict)
    """Parsed columns holding the file's text only where unparsed: ``{name: SQL over staged}``
    (see :func:`raw_text`)."""

    def has(self, role: str) -> bool:
        return role in self.resolved.roles

    def col(self, role: str) -> SourceColumn:
        return self.staged.columns[self.resolved.roles[role]]

    def segments(self) -> list[tuple[str, SourceColumn]]:
        return [
            (self.staged.columns[i].name, self.staged.columns[i]) for i in self.resolved.segments
        ]

    def number_text(self) -> str:
        t = {None: "none", " ": "space"}.get(self.number.thousands, repr(self.number.thousands))
        return f"decimal {self.number.decimal!r}, thousands {t}"


def id_text(col: SourceColumn) -> str:
    """An identifier as text: trimmed (spaces incl. NBSP), NULL when blank.

    ``trim`` with a character list is slow, so it runs only on values that are empty or start
    or end with one of the characters (few, usually none).
    """
    edge = "[" + WS_CHARS + "]"
    needs_trim = f"{col.raw} = '' OR regexp_matches({col.raw}, {lit(f'^{edge}|{edge}$')})"
    trimmed = f"NULLIF(trim({col.raw}, {lit(WS_CHARS)}), '')"
    return f"(CASE WHEN {needs_trim} THEN {trimmed} ELSE {col.raw} END)"


def raw_text(ctx: Context, col: SourceColumn, name: str, typed: str | None) -> str:
    """Select item ``name``: the trimmed text of ``col`` as in the file, which the checks of
    missing and unreadable values need and the report shows.

    When the source has a typed value for the role (``typed``: ``col.ts`` for dates,
    ``col.num`` for numbers), the text is kept only where that value is NULL: elsewhere the
    value can be neither missing nor unreadable, and writing every value out as text would
    cost more than parsing. The report then reads the text of the rows it lists from the
    staged file (``ctx.raw``).
    """
    if typed is None:
        return f"{col.text} AS {name}"
    ctx.raw[name] = col.text
    return f"CASE WHEN {typed} IS NULL THEN {col.text} END AS {name}"


def number_expr(col: SourceColumn) -> str:
    """The number: the typed value where there is one, else the text parsed."""
    return _typed_or(col.num, f"cltv_num({col.raw})")


def date_expr(col: SourceColumn, spec: DateSpec) -> str:
    """The timestamp: the typed value where there is one, else the text parsed."""
    return _typed_or(col.ts, parse_sql(spec, col.text))


def _typed_or(typed: str | None, parsed: str) -> str:
    # CASE, not COALESCE: DuckDB evaluates a CASE branch only on the rows that take it, so
    # typed values (all of them in a typed Parquet column) are never parsed as text.
    return f"(CASE WHEN {typed} IS NOT NULL THEN {typed} ELSE {parsed} END)" if typed else parsed


def _segment_select(ctx: Context) -> list[str]:
    return [f"{col.text} AS seg{k}" for k, (_, col) in enumerate(ctx.segments())]


def _segment_output(ctx: Context, prefix: str = "") -> list[str]:
    return [f"{prefix}seg{k} AS {ident(name)}" for k, (name, _) in enumerate(ctx.segments())]


def _date_problems(
    ctx: Context, role: str, column: str | None, *, required: bool, col: str | None = None
) -> list[Problem]:
    """Checks of a parsed date: ``col`` (default ``role``) and ``<col>_raw`` in the table."""
    spec = ctx.date_spec
    assert spec is not None
    c = col or role
    as_of = ctx.as_of.isoformat()
    out = []
    if required:
        out.append(
            Problem(
                f"missing_{role}",
                column,
                f"{c}_raw IS NULL AND {c} IS NULL",
                None,
                f"{role} is empty",
            )
        )
    out += [
        Problem(
            f"bad_{role}",
            column,
            f"{c}_raw IS NOT NULL AND {c} IS NULL",
            f"{c}_raw",
            _unreadable_date(role, spec),
        ),
        Problem(
            f"{role}_out_of_range",
            column,
            f"{c} < {_MIN_DATE} OR {c} >= {_END_DATE}",
            f"{c}_raw",
            f"{role} is before 1900-01-01 or after 2100-12-31",
        ),
        Problem(
            f"future_{role}",
            column,
            f"{c} < {_END_DATE} AND CAST({c} AS DATE) > DATE '{as_of}'",
            f"{c}_raw",
            f"{role} is after the as_of date {as_of}",
            "future",
        ),
    ]
    return out


def _unreadable_date(role: str, spec: DateSpec) -> str:
    if spec.label == "native":
        return f"cannot read the {role}: expected a date cell or an ISO date (yyyy-mm-dd)"
    return f"cannot read the {role} as {spec.label}"


def _number_problems(
    ctx: Context, role: str, column: str, *, missing_when: str | None
) -> list[Problem]:
    out = []
    if missing_when is not None:
        out.append(
            Problem(
                f"missing_{role}",
                column,
                f"{role}_raw IS NULL AND {role} IS NULL AND ({missing_when})",
                None,
                f"{role} is empty",
            )
        )
    out += [
        Problem(
            f"bad_{role}",
            column,
            f"{role}_raw IS NOT NULL AND {role} IS NULL",
            f"{role}_raw",
            f"cannot read the {role} as a number ({ctx.number_text()})",
        ),
        Problem(
            f"non_finite_{role}",
            column,
            f"NOT isfinite({role})",
            f"{role}_raw",
            f"{role} is not a finite number",
        ),
    ]
    return out


def _check(ctx: Context, table: str, problems: list[Problem], report: ValidationReport) -> Checked:
    return check(ctx.con, table, problems, ctx.options, ctx.staged, report, raw=ctx.raw)


def _finish_checks(ctx: Context, report: ValidationReport, kept: int) -> int:
    """Report malformed lines and the row counts (``kept``: rows to store), then raise if any
    kind of problem rejects the file."""
    add_malformed(ctx.staged, ctx.options, report)
    report.rows_read = ctx.staged.rows + ctx.staged.malformed_count
    report.rows_kept = kept
    report.rows_dropped = report.rows_read - kept
    raise_if_rejected(report)
    return kept


def _require_rows(kept: int, report: ValidationReport) -> None:
    if kept == 0:
        raise InvalidInput(
            f"No usable rows: all {report.rows_read} rows were dropped "
            f"({', '.join(f'{n} {k}' for k, n in report.counts.items())}).",
            errors=report.field_errors(),
            extra={"report": report.as_dict()},
        )


# --------------------------------------------------------------------------- transactions


def transactions(ctx: Context, report: ValidationReport) -> str:
    """Parse and check transactions; return the SELECT of the normalised rows."""
    assert ctx.date_spec is not None
    cust, dt, amt = ctx.col("customer_id"), ctx.col("date"), ctx.col("amount")
    select = [
        "__row",
        f"{id_text(cust)} AS customer_id",
        raw_text(ctx, dt, "date_raw", dt.ts),
        f"{date_expr(dt, ctx.date_spec)} AS date",
        raw_text(ctx, amt, "amount_raw", amt.num),
        f"{number_expr(amt)} AS amount",
    ]
    has_order = ctx.has("order_id")
    if has_order:
        select.append(f"{id_text(ctx.col('order_id'))} AS order_id")
    select += _segment_select(ctx)
    ctx.con.execute(f"CREATE TEMP TABLE parsed AS SELECT {', '.join(select)} FROM {STAGED}")
    problems = [
        *_customer_id_problems(cust.name),
        *_date_problems(ctx, "date", dt.name, required=True),
        *_number_problems(ctx, "amount", amt.name, missing_when="true"),
        Problem(
            "negative_amount",
            amt.name,
            "isfinite(amount) AND amount < 0",
            "amount_raw",
            "negative amount (a return or correction)",
            "negative",
        ),
        Problem("zero_amount", amt.name, "amount = 0", "amount_raw", "amount is zero", "zero"),
        Problem(
            "amount_out_of_range",
            amt.name,
            f"isfinite(amount) AND abs(amount) > {MAX_AMOUNT:.0f}",
            "amount_raw",
            f"amount is larger than {MAX_AMOUNT:g} in absolute value",
        ),
    ]
    checked = _check(ctx, "parsed", problems, report)
    kept = _finish_checks(ctx, report, checked.kept)
    _require_rows(kept, report)
    ctx.con.execute(f"CREATE TEMP VIEW kept AS SELECT * FROM parsed WHERE NOT ({checked.drop})")
    source = _combine_orders(ctx, report) if has_order else "kept"
    out = [
        "CAST(customer_id AS VARCHAR) AS customer_id",
        "CAST(date AS TIMESTAMP) AS date",
        "CAST(amount AS DOUBLE) AS amount",
    ]
    if has_order:
        out.append("CAST(order_id AS VARCHAR) AS order_id")
    out += _segment_output(ctx)
    return f"SELECT {', '.join(out)} FROM {source}"


def _combine_orders(ctx: Context, report: ValidationReport) -> str:
    """The kept transactions with the rows that share customer and order id combined into one
    (amounts summed, earliest date, first segment values), as a FROM item; reports the
    combining and the order ids several customers use.

    Only orders with several rows need combining: they are found in one pass (a count per order
    id) and copied to ``order_rows``; every other row is its own transaction as it is. Sums run
    in file order (``__row``), so they do not depend on the number of threads.
    """
    ctx.con.execute(
        "CREATE TEMP TABLE order_rows AS SELECT * FROM kept WHERE order_id IN (SELECT order_id "
        "FROM kept WHERE order_id IS NOT NULL GROUP BY order_id HAVING count(*) > 1)"
    )
    _order_warnings(ctx, report)
    segs = [f"seg{k}" for k in range(len(ctx.resolved.segments))]
    seg_min = "".join(f", min({s}) AS {s}" for s in segs)
    seg_plain = "".join(f", {s}" for s in segs)
    # A single row is the sum of itself, but for -0.0: sum() starts from +0.0.
    single = "CASE WHEN amount = 0 THEN 0.0::DOUBLE ELSE amount END"
    # DuckDB writes a Parquet column as required (not null) when its statistics prove it has
    # no nulls. Rows without an order id stay a part of their own, as when every order was
    # grouped: the statistics, so the stored schema and bytes, stay what they were.
    return (
        f"(SELECT customer_id, date, {single} AS amount, order_id{seg_plain} FROM kept "
        "WHERE order_id IS NOT NULL AND order_id NOT IN (SELECT order_id FROM order_rows) "
        "UNION ALL SELECT customer_id, min(date) AS date, sum(amount ORDER BY __row) AS amount, "
        f"order_id{seg_min} FROM order_rows GROUP BY customer_id, order_id "
        f"UNION ALL SELECT customer_id, date, amount, order_id{seg_plain} FROM kept "
        "WHERE order_id IS NULL)"
    )


def _order_warnings(ctx: Context, report: ValidationReport) -> None:
    """Note how many rows were combined; warn about order ids used by several customers."""
    column = ctx.col("order_id").name
    with_order = _scalar(ctx.con, "SELECT count(*) FROM kept WHERE order_id IS NOT NULL")
    row = ctx.con.execute(
        "SELECT count(*), count(DISTINCT (customer_id, order_id)) FROM order_rows"
    ).fetchone()
    combined, groups = (int(row[0]), int(row[1])) if row else (0, 0)
    orders = with_order - combined + groups
    if with_order > orders:
        report.notes.append(
            f"{with_order} rows with an order id were combined into {orders} transactions "
            "(amounts summed, earliest date kept)."
        )
    shared = (
        "SELECT order_id, min(__row) AS first_row, count(DISTINCT customer_id) AS customers "
        "FROM order_rows GROUP BY order_id HAVING count(DISTINCT customer_id) > 1"
    )
    total = _scalar(ctx.con, f"SELECT count(*) FROM ({shared})")
    if total == 0:
        return
    report.counts["order_id_shared"] = total
    report.actions["order_id_shared"] = "kept"
    rows = ctx.con.execute(
        f"{shared} ORDER BY first_row LIMIT {ctx.options.max_issues_per_kind}"
    ).fetchall()
    mapping = ctx.staged.user_rows(int(r[1]) for r in rows)
    for order_id, first_row, customers in rows:
        report.issues.append(
            Issue(
                "order_id_shared",
                mapping[int(first_row)],
                column,
                str(order_id)[:100],
                f"order id used by {customers} customers; kept as one transaction per customer",
            )
        )


# --------------------------------------------------------------------------- summary

_SUMMARY_NUMBERS = ("frequency", "recency", "T", "monetary_value", "weight")


def summary(ctx: Context, report: ValidationReport) -> str:
    """Parse and check one-row-per-customer summaries; return the normalised SELECT."""
    present = [r for r in _SUMMARY_NUMBERS if ctx.has(r)]
    select = ["__row"]
    if ctx.has("customer_id"):
        select.append(f"{id_text(ctx.col('customer_id'))} AS customer_id")
    else:
        select.append("CAST(__row AS VARCHAR) AS customer_id")
    for role in present:
        col = ctx.col(role)
        select += [raw_text(ctx, col, f"{role}_raw", col.num), f"{number_expr(col)} AS {role}"]
    select += _segment_select(ctx)
    dup = "count(*) OVER (PARTITION BY customer_id)" if ctx.has("customer_id") else "1"
    ctx.con.execute(
        f"CREATE TEMP TABLE parsed AS SELECT *, {dup} AS __dup FROM "
        f"(SELECT {', '.join(select)} FROM {STAGED})"
    )
    name = {r: ctx.col(r).name for r in present}
    problems: list[Problem] = []
    if ctx.has("customer_id"):
        problems += [
            *_customer_id_problems(ctx.col("customer_id").name),
            Problem(
                "duplicate_customer_id",
                ctx.col("customer_id").name,
                "customer_id IS NOT NULL AND __dup > 1",
                "customer_id",
                "customer appears on several rows; summaries need one row per customer",
            ),
        ]
    for role in present:
        when = "frequency > 0" if role == "monetary_value" else "true"
        problems += _number_problems(ctx, role, name[role], missing_when=when)
    problems += [
        Problem(
            "frequency_not_count",
            name["frequency"],
            "isfinite(frequency) AND (frequency < 0 OR frequency <> floor(frequency))",
            "frequency_raw",
            "frequency must be a whole number >= 0",
        ),
        Problem(
            "negative_recency",
            name["recency"],
            "recency < 0",
            "recency_raw",
            "recency must be >= 0",
        ),
        Problem("non_positive_T", name["T"], "T <= 0", "T_raw", "T must be > 0"),
        Problem(
            "recency_after_T",
            name["recency"],
            "isfinite(T) AND recency > T",
            "recency_raw",
            "recency is larger than T",
        ),
        Problem(
            "recency_without_repeat",
            name["recency"],
            "frequency = 0 AND recency <> 0",
            "recency_raw",
            "recency must be 0 when frequency is 0",
        ),
    ]
    if "monetary_value" in name:
        problems.append(
            Problem(
                "non_positive_monetary_value",
                name["monetary_value"],
                "monetary_value < 0 OR (frequency > 0 AND monetary_value <= 0)",
                "monetary_value_raw",
                "monetary value must be > 0 for customers with repeat purchases (>= 0 otherwise)",
            )
        )
    if "weight" in name:
        problems.append(
            Problem(
                "non_positive_weight",
                name["weight"],
                "weight <= 0",
                "weight_raw",
                "weight must be > 0",
            )
        )
    checked = _check(ctx, "parsed", problems, report)
    drop = checked.drop
    kept = _finish_checks(ctx, report, checked.kept)
    _require_rows(kept, report)
    out = [
        "CAST(customer_id AS VARCHAR) AS customer_id",
        "CAST(frequency AS BIGINT) AS frequency",
        "CAST(recency AS DOUBLE) AS recency",
        'CAST(T AS DOUBLE) AS "T"',
    ]
    if "monetary_value" in name:
        out.append("CAST(monetary_value AS DOUBLE) AS monetary_value")
    out.append("CAST(weight AS DOUBLE) AS weight" if "weight" in name else "1.0::DOUBLE AS weight")
    out += _segment_output(ctx)
    return f"SELECT {', '.join(out)} FROM parsed WHERE NOT ({drop})"


# --------------------------------------------------------------------------- contractual


def cohort(ctx: Context, report: ValidationReport) -> str:
    """Parse and check cohort survivor counts; return the normalised SELECT."""
    coh, per, sur = ctx.col("cohort"), ctx.col("period"), ctx.col("survivors")
    ctx.con.execute(
        f"CREATE TEMP TABLE parsed AS SELECT __row, {id_text(coh)} AS cohort, "
        f"{raw_text(ctx, per, 'period_raw', per.num)}, {number_expr(per)} AS period, "
        f"{raw_text(ctx, sur, 'survivors_raw', sur.num)}, {number_expr(sur)} AS survivors "
        f"FROM {STAGED}"
    )
    whole = "isfinite({0}) AND ({0} < 0 OR {0} <> floor({0}))"
    row_problems = [
        Problem("missing_cohort", coh.name, "cohort IS NULL", None, "cohort is empty"),
        *_number_problems(ctx, "period", per.name, missing_when="true"),
        Problem(
            "period_not_count",
            per.name,
            whole.format("period"),
            "period_raw",
            "period must be a whole number >= 0",
        ),
        *_number_problems(ctx, "survivors", sur.name, missing_when="true"),
        Problem(
            "survivors_not_count",
            sur.name,
            whole.format("survivors"),
            "survivors_raw",
            "survivors must be a whole number >= 0",
        ),
    ]
    drop = _check(ctx, "parsed", row_problems, report).drop
    ctx.con.execute(
        "CREATE TEMP TABLE cohorts AS SELECT *, "
        "count(*) OVER (PARTITION BY cohort, period) AS __dups, "
        "lag(survivors) OVER (PARTITION BY cohort ORDER BY period, __row) AS __prev_s, "
        "lag(period) OVER (PARTITION BY cohort ORDER BY period, __row) AS __prev_p, "
        "min(period) OVER (PARTITION BY cohort) AS __pmin "
        f"FROM parsed WHERE NOT ({drop})"
    )
    cohort_problems = [
        Problem(
            "duplicate_period",
            per.name,
            "__dups > 1",
            "period_raw",
            "the cohort has this period more than once",
        ),
        Problem(
            "survivors_increase",
            sur.name,
            "__dups = 1 AND survivors > __prev_s",
            "survivors_raw",
            "survivors increase from the previous period",
        ),
        Problem(
            "period_gap",
            per.name,
            "period - __prev_p > 1",
            "period_raw",
            "periods must be consecutive (a period is missing before this one)",
        ),
        Problem(
            "no_period_zero",
            per.name,
            "period = __pmin AND __pmin <> 0",
            "period_raw",
            "the cohort has no period 0 (its starting size)",
        ),
    ]
    cohort_drop = _check(ctx, "cohorts", cohort_problems, report).drop
    bad_cohorts = f"cohort IN (SELECT cohort FROM cohorts WHERE {cohort_drop})"
    kept = _finish_checks(
        ctx, report, _scalar(ctx.con, f"SELECT count(*) FROM cohorts WHERE NOT ({bad_cohorts})")
    )
    report.rows_dropped = report.rows_read - kept
    _require_rows(kept, report)
    return (
        "SELECT CAST(cohort AS VARCHAR) AS cohort, CAST(period AS BIGINT) AS period, "
        f"CAST(survivors AS BIGINT) AS survivors FROM cohorts WHERE NOT ({bad_cohorts})"
    )


def customer_spells(ctx: Context, report: ValidationReport) -> str:
    """Parse and check per-customer start/end dates; return the normalised SELECT."""
    assert ctx.date_spec is not None
    cust, start = ctx.col("customer_id"), ctx.col("start")
    select = [
        "__row",
        f"{id_text(cust)} AS customer_id",
        raw_text(ctx, start, "start_date_raw", start.ts),
        f"{date_expr(start, ctx.date_spec)} AS start_date",
    ]
    end_name = None
    if ctx.has("end"):
        end = ctx.col("end")
        end_name = end.name
        select += [
            raw_text(ctx, end, "end_date_raw", end.ts),
            f"{date_expr(end, ctx.date_spec)} AS end_date",
        ]
    else:
        select += ["NULL::VARCHAR AS end_date_raw", "NULL::TIMESTAMP AS end_date"]
    select += _segment_select(ctx)
    ctx.con.execute(f"CREATE TEMP TABLE parsed AS SELECT {', '.join(select)} FROM {STAGED}")
    problems = [
        *_customer_id_problems(cust.name),
        *_date_problems(ctx, "start", start.name, required=True, col="start_date"),
        *_date_problems(ctx, "end", end_name, required=False, col="end_date"),
        Problem(
            "end_before_start",
            end_name,
            "end_date < start_date",
            "end_date_raw",
            "end date is before the start date",
        ),
    ]
    checked = _check(ctx, "parsed", problems, report)
    kept = _finish_checks(ctx, report, checked.kept)
    _require_rows(kept, report)
    out = [
        "CAST(customer_id AS VARCHAR) AS customer_id",
        "CAST(start_date AS TIMESTAMP) AS start",
        'CAST(end_date AS TIMESTAMP) AS "end"',
        *_segment_output(ctx),
    ]
    return f"SELECT {', '.join(out)} FROM parsed WHERE NOT ({checked.drop})"


LAYOUTS = {
    "transactions": transactions,
    "summary": summary,
    "cohort": cohort,
    "customer": customer_spells,
}


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


__all__ = ["LAYOUTS", "Context"]
