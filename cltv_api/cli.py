"""The ``cltv`` command: summaries, fits, segment tables and per-customer scores from a file.

    cltv summarize INPUT [--out summary.parquet]
    cltv fit INPUT [--model auto] [--segment-by channel --per-segment] [--out fit.json]
    cltv segments INPUT --segment-by channel [--horizon 12 --horizon-unit months]
    cltv score INPUT --out customers.csv

INPUT is a transaction export (CSV, XLSX or Parquet): it goes through the same ingestion and
validation as an upload to the service, unless it is a Parquet file already in the normalised
layout (customer_id, date, amount), which the engine reads directly. Errors print one line
``cltv: error: <reason>`` to stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

import ibis.expr.types as ir
import pyarrow.parquet as pq

from cltv_api.analysis import (
    FitRequest,
    FittedModels,
    Valuation,
    fit_models,
    score_customers,
    segment_table,
)
from cltv_api.analysis.scoring import SegmentRow
from cltv_api.engine import Engine, summarize, summarize_parts
from cltv_api.errors import CLTVError, InvalidInput
from models import ModelFitError

NORMALISED_COLUMNS = {"customer_id", "date", "amount"}
EXIT_BAD_INPUT = 2


# ------------------------------------------------------------------------------ arguments
def _input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "input",
        type=Path,
        help="transactions: CSV, XLSX or Parquet (with --from-url: a table of that database)",
    )
    g = p.add_argument_group("columns and parsing")
    g.add_argument("--customer-col", help="customer id column (default: detected by name)")
    g.add_argument("--date-col", help="transaction date column")
    g.add_argument("--amount-col", help="amount column")
    g.add_argument("--order-col", help="order id column (rows of one order are one transaction)")
    g.add_argument(
        "--segment-col", action="append", default=[], help="segment column to carry (repeatable)"
    )
    g.add_argument(
        "--date-format", help="e.g. %%d.%%m.%%Y, iso, excel (needed when dates are ambiguous)"
    )
    g.add_argument("--encoding", help="e.g. cp1251 (default: detected)")
    g.add_argument("--delimiter", help="CSV delimiter (default: detected)")
    g.add_argument("--decimal", choices=[".", ","], help="decimal separator (default: detected)")
    g.add_argument("--sheet", help="XLSX sheet name (default: the first)")
    g.add_argument("--negative-amounts", choices=["drop", "keep", "reject"], default="drop")
    g.add_argument(
        "--on-error", choices=["reject", "drop"], default="reject", help="unreadable rows"
    )
    e = p.add_argument_group("engine")
    e.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    e.add_argument(
        "--from-url",
        metavar="URL",
        help="read INPUT as a table of this database, e.g. postgres://user@host/db or "
        "duckdb:///warehouse.ddb (the engine then runs there)",
    )
    e.add_argument(
        "--memory-limit",
        default="1GB",
        help="DuckDB memory limit before spilling to disk (e.g. 512MB, 8GB)",
    )
    e.add_argument("--time-unit", choices=["days", "weeks", "months"], default="weeks")
    e.add_argument("--observation-end", help="last day observed (default: the latest transaction)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def _model_args(p: argparse.ArgumentParser, *, segment_required: bool = False) -> None:
    p.add_argument("--model", choices=["bgnbd", "pnbd", "mbgnbd", "auto"], default="bgnbd")
    p.add_argument("--spend-model", choices=["gamma_gamma", "none"], default="gamma_gamma")
    p.add_argument(
        "--segment-by",
        action="append",
        default=[],
        required=segment_required,
        help="segment column (repeatable)",
    )
    p.add_argument("--per-segment", action="store_true", help="fit one model per segment")
    p.add_argument(
        "--holdout-start", help="score the model on purchases from this date on (calibration split)"
    )


def _valuation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--horizon", type=float, default=12, help="CLTV horizon (default 12)")
    p.add_argument("--horizon-unit", choices=["days", "weeks", "months"], default="months")
    p.add_argument(
        "--discount-rate", type=float, default=0.10, help="effective annual rate (default 0.10)"
    )
    p.add_argument(
        "--margin",
        type=float,
        default=1.0,
        help="share of revenue that is margin (default 1 = revenue)",
    )
    p.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")


def _output_args(
    p: argparse.ArgumentParser, formats: Sequence[str] = ("table", "csv", "json")
) -> None:
    p.add_argument("--format", choices=list(formats), default=formats[0])
    p.add_argument("--out", type=Path, help="write here instead of standard output")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cltv", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summarize", help="per-customer frequency, recency, T and mean spend")
    _input_args(p)
    p.add_argument("--out", type=Path, help="write the summary as Parquet (or .csv)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--calibration-end", help="split into calibration and holdout at this date")
    p = sub.add_parser(
        "fit", help="fit purchase and spend models; print parameters and diagnostics"
    )
    _input_args(p)
    _model_args(p)
    _output_args(p, ("table", "json"))
    p = sub.add_parser("segments", help="CLTV per segment with intervals")
    _input_args(p)
    _model_args(p, segment_required=True)
    _valuation_args(p)
    _output_args(p)
    p = sub.add_parser("score", help="per-customer P(alive), expected purchases and CLTV")
    _input_args(p)
    _model_args(p)
    _valuation_args(p)
    p.add_argument(
        "--fit", type=Path, help="use a fit saved by `cltv fit --format json` instead of fitting"
    )
    p.add_argument("--out", type=Path, required=True, help="output file: .parquet or .csv")
    return parser


# ------------------------------------------------------------------------------ steps
class Progress:
    """Named stages on one progress bar (stderr); silent with --quiet or when not a terminal.

    A stage computed in parts (the summary) shows them as ``summarise 3/16``. tqdm is
    imported only when a bar is shown: a scripted run does not pay for it.
    """

    def __init__(self, stages: Sequence[str], quiet: bool, file: TextIO | None = None) -> None:
        stream = sys.stderr if file is None else file
        self.bar: Any = None
        self.name = ""
        if not quiet and stream.isatty():
            from tqdm import tqdm  # noqa: PLC0415

            self.bar = tqdm(total=len(stages), file=stream, unit="step", leave=False)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.name = name
        if self.bar is not None:
            self.bar.set_description(name)
        yield
        if self.bar is not None:
            self.bar.update(1)

    def part(self, done: int, total: int) -> None:
        """Progress inside the current stage (``done`` of ``total`` parts computed)."""
        if self.bar is not None and total > 1:
            self.bar.set_description(f"{self.name} {done}/{total}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _engine(args: argparse.Namespace, workdir: Path) -> Engine:
    if args.from_url:
        return Engine.from_url(args.from_url)
    if args.engine == "spark":
        return Engine.spark()
    return Engine.duckdb(memory_limit=args.memory_limit, temp_dir=workdir / "spill")


def _transactions(args: argparse.Namespace, engine: Engine, workdir: Path) -> ir.Table:
    """The input as a normalised transaction table (ingesting it unless already normalised)."""
    if args.from_url:
        return _warehouse_table(args, engine)
    path: Path = args.input
    if not path.exists():
        raise InvalidInput(f"no such file: {path}")
    mapping_given = any([args.customer_col, args.date_col, args.amount_col, args.order_col])
    if path.suffix.lower() in {".parquet", ".pq"} and not mapping_given:
        names = set(pq.read_schema(path).names)
        if names >= NORMALISED_COLUMNS:
            return engine.table(path)
    # Ingestion (CSV/XLSX parsing) is imported only for files that need it.
    from cltv_api.ingest import ColumnMapping, ParseOptions, ingest_file  # noqa: PLC0415

    result = ingest_file(
        path,
        data_dir=workdir,
        mapping=ColumnMapping(
            customer_id=args.customer_col,
            date=args.date_col,
            amount=args.amount_col,
            order_id=args.order_col,
            segments=tuple(dict.fromkeys([*args.segment_col, *getattr(args, "segment_by", [])])),
        ),
        options=ParseOptions(
            encoding=args.encoding,
            delimiter=args.delimiter,
            decimal_separator=args.decimal,
            date_format=args.date_format,
            sheet=args.sheet,
            negative_amounts=args.negative_amounts,
            on_error=args.on_error,
        ),
    )
    return engine.table(result.path)


def _warehouse_table(args: argparse.Namespace, engine: Engine) -> ir.Table:
    """A database table, its id/date/amount columns renamed as the mapping options say."""
    table = engine.table(str(args.input))
    renames = {
        new: old
        for new, old in (
            ("customer_id", args.customer_col),
            ("date", args.date_col),
            ("amount", args.amount_col),
        )
        if old and old != new
    }
    missing = [old for old in renames.values() if old not in table.columns]
    if missing:
        raise InvalidInput(f"table {args.input} has no column(s) {', '.join(missing)}")
    return table.rename(renames) if renames else table


def _segments(args: argparse.Namespace) -> list[str]:
    return list(dict.fromkeys([*args.segment_col, *getattr(args, "segment_by", [])]))


def _summary(
    args: argparse.Namespace, engine: Engine, tx: ir.Table, progress: Progress
) -> ir.Table:
    """The summary computed once into an engine temp table, customer partition by partition."""
    parts = summarize_parts(
        tx, args.time_unit, observation_end=args.observation_end, segment_cols=_segments(args)
    )
    return engine.store(parts, on_part=progress.part)


def _fit(args: argparse.Namespace, engine: Engine, tx: ir.Table, summary: ir.Table) -> FittedModels:
    """Fit the models; DuckDB's buffers freed by the fit's queries go back before valuing."""
    request = FitRequest(
        purchase_model=args.model,
        spend_model=args.spend_model,
        segment_by=tuple(args.segment_by),
        per_segment=args.per_segment,
        time_unit=args.time_unit,
    )
    calibration = None
    if args.holdout_start:
        calibration = summarize(
            tx,
            args.time_unit,
            calibration_end=args.holdout_start,
            observation_end=args.observation_end,
            segment_cols=list(args.segment_by),
        )
    fitted = fit_models(summary, request, calibration=calibration)
    engine.release_memory()
    return fitted


def _valuation(args: argparse.Namespace) -> Valuation:
    return Valuation(
        horizon=args.horizon,
        horizon_unit=args.horizon_unit,
        annual_discount_rate=args.discount_rate,
        margin=args.margin,
        level=args.level,
    )


# ------------------------------------------------------------------------------ commands
def cmd_summarize(args: argparse.Namespace, out: TextIO, workdir: Path) -> None:
    progress = Progress(["read", "summarise"], args.quiet)
    with _engine(args, workdir) as engine:
        with progress.stage("read"):
            tx = _transactions(args, engine, workdir)
        with progress.stage("summarise"):
            expr = summarize(
                tx,
                args.time_unit,
                observation_end=args.observation_end,
                calibration_end=args.calibration_end,
                segment_cols=_segments(args),
            )
            if args.out is not None:
                _write_table(engine, expr, args.out)
            else:
                rows = engine.to_pyarrow(expr.order_by("customer_id").limit(20)).to_pylist()
                _emit(rows, args.format, out)
        progress.close()


def cmd_fit(args: argparse.Namespace, out: TextIO, workdir: Path) -> None:
    progress = Progress(["read", "summarise", "fit"], args.quiet)
    with _engine(args, workdir) as engine:
        with progress.stage("read"):
            tx = _transactions(args, engine, workdir)
        with progress.stage("summarise"):
            summary = _summary(args, engine, tx, progress)
        with progress.stage("fit"):
            fitted = _fit(args, engine, tx, summary)
    progress.close()
    if args.format == "json":
        text = json.dumps(fitted.to_dict(), indent=2, allow_nan=False, default=_json_default)
        _write_text(text + "\n", args.out, out)
        return
    _write_text(_fit_report(fitted), args.out, out)


def cmd_segments(args: argparse.Namespace, out: TextIO, workdir: Path) -> None:
    valuation = _valuation(args)
    progress = Progress(["read", "summarise", "fit", "value"], args.quiet)
    with _engine(args, workdir) as engine:
        with progress.stage("read"):
            tx = _transactions(args, engine, workdir)
        with progress.stage("summarise"):
            summary = _summary(args, engine, tx, progress)
        with progress.stage("fit"):
            fitted = _fit(args, engine, tx, summary)
        with progress.stage("value"):
            rows = segment_table(summary, fitted, valuation, by=args.segment_by)
    progress.close()
    records = [_segment_record(r, args.segment_by) for r in rows]
    if args.out is not None:
        with args.out.open("w", encoding="utf-8", newline="") as fh:
            _emit(records, args.format, fh)
    else:
        _emit(records, args.format, out)


def cmd_score(args: argparse.Namespace, out: TextIO, workdir: Path) -> None:
    valuation = _valuation(args)
    progress = Progress(["read", "summarise", "fit", "score"], args.quiet)
    with _engine(args, workdir) as engine:
        with progress.stage("read"):
            tx = _transactions(args, engine, workdir)
        with progress.stage("summarise"):
            summary = _summary(args, engine, tx, progress)
        with progress.stage("fit"):
            if args.fit is not None:
                fitted = FittedModels.from_dict(json.loads(args.fit.read_text(encoding="utf-8")))
            else:
                fitted = _fit(args, engine, tx, summary)
        with progress.stage("score"):
            _write_table(engine, score_customers(summary, fitted, valuation), args.out)
    progress.close()
    print(f"wrote {args.out}", file=out)


COMMANDS = {
    "summarize": cmd_summarize,
    "fit": cmd_fit,
    "segments": cmd_segments,
    "score": cmd_score,
}


# ------------------------------------------------------------------------------ output
def _segment_record(row: SegmentRow, by: Sequence[str]) -> dict[str, Any]:
    record: dict[str, Any] = (
        {c: row.segment.get(c, "(all)") for c in by} if by else {"segment": "(all)"}
    )
    data = asdict(row)
    for key in ("segment", "extra"):
        data.pop(key)
    record.update(data)
    return record


def _fit_report(fitted: FittedModels) -> str:
    lines = []
    req = fitted.request
    lines.append(
        f"time unit: {req.time_unit}; purchase model: {req.purchase_model}; spend model: {req.spend_model}"
    )
    for fit in fitted.fits:
        title = ", ".join(f"{k}={v}" for k, v in fit.segment.items()) or "all customers"
        lines.append("")
        lines.append(
            f"== {title}: {fit.n_customers} customers ({fit.n_repeat_customers} repeat), {fit.n_histories} distinct histories"
        )
        for label, model in (
            ("purchase " + fit.purchase_model, fit.purchase),
            ("spend", fit.spend),
        ):
            if model is None:
                continue
            s = model.summary()
            lines.append(
                f"{label}: log-likelihood {s['log_likelihood']:.3f}, AIC {s['aic']:.1f}, BIC {s['bic']:.1f}, "
                f"{'converged' if s['converged'] else 'NOT CONVERGED: ' + s['message']}"
            )
            rows = [
                {
                    "param": k,
                    "estimate": v["estimate"],
                    "std_error": v["std_error"],
                    "lower_95": v["lower_95"],
                    "upper_95": v["upper_95"],
                }
                for k, v in s["params"].items()
            ]
            lines.append(_format_table(rows))
        if fit.selection_reason:
            lines.append(f"selected: {fit.selection_reason}")
        if fit.calibration:
            c = fit.calibration
            lines.append(
                f"holdout: predicted {c['predicted_total']:.1f} vs actual {c['actual_total']:.0f} purchases, "
                f"MAE {c['mae_per_customer']:.4f} per customer"
            )
    return "\n".join(lines) + "\n"


def _emit(rows: list[dict[str, Any]], fmt: str, out: TextIO) -> None:
    if fmt == "json":
        out.write(json.dumps(rows, indent=2, allow_nan=False, default=_json_default) + "\n")
    elif fmt == "csv":
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: _csv_value(v) for k, v in row.items()} for row in rows)
    else:
        out.write(_format_table(rows) + "\n")


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(value)
    return value


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _format_table(rows: list[dict[str, Any]]) -> str:
    """Aligned plain-text table: text left, numbers right, 4 significant digits for floats."""
    if not rows:
        return "(no rows)"
    headers = list(rows[0])
    cells = [[_cell(row.get(h)) for h in headers] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row.get(h), int | float) for row in rows) for h in headers]

    def fmt(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        )

    lines = [fmt(headers), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if value is None:
        return ""
    return str(value)


def _write_text(text: str, path: Path | None, out: TextIO) -> None:
    if path is None:
        out.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def _write_table(engine: Engine, expr: ir.Table, path: Path) -> None:
    if path.suffix.lower() == ".csv":
        engine.backend.to_csv(expr, str(path))
    else:
        engine.to_parquet(expr, path)


# ------------------------------------------------------------------------------ entry point
def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command; return the exit status (0 ok, 2 bad input or a model that cannot fit)."""
    args = build_parser().parse_args(argv)
    stream = out if out is not None else sys.stdout
    try:
        with tempfile.TemporaryDirectory(prefix="cltv-") as tmp:
            COMMANDS[args.command](args, stream, Path(tmp))
    except (CLTVError, ModelFitError, ValueError) as exc:
        print(f"cltv: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _one_line(exc: Exception) -> str:
    text = str(exc)
    errors = getattr(exc, "errors", None)
    if errors:
        first = errors[0]
        where = f" (row {first.row})" if getattr(first, "row", None) else ""
        text += f": {first.field}{where}: {first.message}"
        if len(errors) > 1:
            text += f" (+{len(errors) - 1} more)"
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
