"""Fits: running model fits on data sets (in the request or as a background job), storing them,
and valuing segments and customers with them.

Storage of a fit ``fit_...``:

* the row of the ``fits`` table holds the request as given and, once fitted, ``result``: the
  fitted models as plain JSON (:meth:`FittedModels.to_dict`, never pickles), the observation
  end, the holdout start, the segment columns and the path of the summary;
* ``<data_dir>/fits/<fit_id>/summary.parquet`` holds the per-customer summary (frequency,
  recency, T, monetary value and every segment column of the data set) that the segment and
  customer reports read.

Fits of up to ``settings.sync_fit_max_customers`` customers (counted from the data set's stored
statistics, no data read) run inside the request; larger ones are queued as a ``fit`` job that
reports the stages ``summarise``, ``fit`` and ``save``.

Every computation opens its own engine (one DuckDB connection, ``settings.duckdb_memory_limit``)
and closes it when done.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy.orm import Session

from cltv_api.analysis import (
    FitRequest,
    FittedModels,
    Valuation,
    fit_models,
    score_customers,
    segment_table,
)
from cltv_api.analysis.fitting import SegmentFit
from cltv_api.analysis.scoring import BLANK_SEGMENT, SegmentRow
from cltv_api.engine import Engine, summarize, summarize_parts
from cltv_api.errors import CLTVError, Conflict, FieldError, InvalidInput, NotFound
from cltv_api.exports.csv_safe import neutralise_arrow, write_csv
from cltv_api.metrics import record_fit
from cltv_api.problems import problem_from_error
from cltv_api.schemas.fits import FitCreate
from cltv_api.services import datasets as dataset_service
from cltv_api.services.jobs import (
    FINISHED_STATUSES,
    JobCancelled,
    JobFailed,
    JobInterrupted,
    ProgressReporter,
    cancel_job,
    enqueue_job,
    job_outcome,
    job_path,
)
from cltv_api.settings import Settings
from cltv_api.storage.repositories import FitRepository, JobRepository
from cltv_api.storage.tables import Dataset, Fit, Job, new_id, utcnow
from models._base import BaseModel

FIT_JOB_KIND = "fit"
FITS_DIR = "fits"
SUMMARY_FILE = "summary.parquet"
CSV_BATCH_ROWS = 10_000
MAX_HORIZON_YEARS = 20
STEPS_PER_YEAR = {"days": 365.25, "weeks": 365.25 / 7, "months": 12.0}
METRIC_COLUMNS = (
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "expected_revenue",
    "clv",
    "clv_lower",
    "clv_upper",
)
SEGMENT_METRICS = (
    "customers",
    "share_active",
    "expected_purchases",
    "expected_purchases_per_customer",
    "expected_revenue",
    "clv_mean",
    "clv_mean_lower",
    "clv_mean_upper",
    "clv_median",
    "clv_total",
    "clv_total_lower",
    "clv_total_upper",
    "share_of_value",
)
ALL_LABEL = "(all)"
ALL_CUSTOMERS_LABEL = "all customers"
MAX_DISTRIBUTION_BINS = 200
DISTRIBUTION_METRICS = {
    "p_alive": "probability that the customer is active at the observation end (0..1)",
    "clv": "discounted margin over the horizon, in the data's currency",
    "expected_purchases": "expected purchases over the horizon, undiscounted",
}

Progress = Callable[[float, str], None]


def _no_progress(progress: float, stage: str) -> None:
    """Progress sink of fits run inside a request."""


def fit_url(fit_id: str) -> str:
    return f"/v1/fits/{fit_id}"


def fit_dir(settings: Settings, fit_id: str) -> Path:
    return settings.data_dir / FITS_DIR / fit_id


# ------------------------------------------------------------------------------ creating


def check_request(dataset: Dataset, body: FitCreate) -> None:
    """Problems of a fit request that need the data set: kind, segment columns, dates."""
    dataset_service.require_transactions(dataset, "body.dataset_id")
    available = dataset_service.segment_columns(dataset)
    errors = [
        FieldError(f"body.segment_by.{i}", f"no such segment column; the data set has {available}")
        for i, name in enumerate(body.segment_by)
        if name not in available
    ]
    first, last = _date_range(dataset)
    end = body.observation_end or last
    if body.observation_end is not None and body.observation_end < first:
        errors.append(
            FieldError("body.observation_end", f"is before the first transaction ({first})")
        )
    if body.holdout is not None:
        start = body.holdout.start
        if not first < start <= end:
            errors.append(
                FieldError(
                    "body.holdout.start",
                    f"must be after the first transaction ({first}) and on or before the "
                    f"observation end ({end}), so both periods have purchases",
                    value=start.isoformat(),
                )
            )
    if errors:
        raise InvalidInput("The fit request does not match the data set; see errors.", errors)


def _date_range(dataset: Dataset) -> tuple[date, date]:
    stats = dataset.stats or {}
    return (
        datetime.fromisoformat(stats["date_min"]).date(),
        datetime.fromisoformat(stats["date_max"]).date(),
    )


@dataclass(frozen=True)
class FitSource:
    """What a fit needs of its data set: the stored rows, segment columns, currency label."""

    path: Path
    segment_columns: tuple[str, ...]
    currency: str | None

    @classmethod
    def of(cls, settings: Settings, dataset: Dataset) -> FitSource:
        return cls(
            path=dataset_service.dataset_file(settings, dataset),
            segment_columns=tuple(dataset_service.segment_columns(dataset)),
            currency=(dataset.stats or {}).get("currency"),
        )


def create_fit(
    session: Session,
    settings: Settings,
    workspace_id: str,
    body: FitCreate,
    wake: Callable[[], None] | None = None,
) -> tuple[Fit, Job | None]:
    """Fit now (small data: returns the stored fit and ``None``) or queue a ``fit`` job (large
    data: returns the queued fit and its job)."""
    dataset = dataset_service.get_dataset(session, workspace_id, body.dataset_id)
    check_request(dataset, body)
    repository = FitRepository(session, workspace_id)
    request = body.model_dump(mode="json")
    customers = int((dataset.stats or {}).get("customer_count") or 0)
    if customers > settings.sync_fit_max_customers:
        fit = repository.add(Fit(dataset_id=dataset.id, status="queued", request=request))
        job = enqueue_job(session, workspace_id, FIT_JOB_KIND, {"fit_id": fit.id}, on_commit=wake)
        fit.result = {"job_id": job.id}
        session.flush()
        return fit, job
    source = FitSource.of(settings, dataset)
    session.commit()  # hold no database lock while fitting
    fit_id = new_id("fit")
    result = compute_fit(settings, fit_id, source, body, _no_progress)
    try:
        fit = repository.add(
            Fit(
                id=fit_id,
                dataset_id=dataset.id,
                status="succeeded",
                request=request,
                result=result,
                finished_at=utcnow(),
            )
        )
    except BaseException:
        shutil.rmtree(fit_dir(settings, fit_id), ignore_errors=True)
        raise
    return fit, None


def compute_fit(
    settings: Settings,
    fit_id: str,
    source: FitSource,
    body: FitCreate,
    progress: Progress,
) -> dict[str, Any]:
    """Summarise the transactions, fit the models and write the summary; returns the fit's
    ``result`` (plain JSON). On any error nothing is left in the fit's directory."""
    directory = fit_dir(settings, fit_id)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        progress(0.05, "summarise")
        with dataset_service.open_engine(settings) as engine:
            tx = engine.table(source.path)
            observation_end = _end_of_day(body.observation_end) if body.observation_end else None
            summary = engine.store(
                summarize_parts(
                    tx,
                    body.time_unit,
                    observation_end=observation_end,
                    segment_cols=source.segment_columns,
                ),
                directory / SUMMARY_FILE,
                on_part=lambda done, total: _summary_progress(progress, done, total),
            )
            calibration = _calibration(tx, body, observation_end)
            progress(0.3, "fit")
            fitted = fit_models(summary, _analysis_request(body), calibration=calibration)
            end = observation_end or _latest(engine, tx)
        progress(0.95, "save")
        record_fit(body.purchase_model, job_outcome(None))
        return {
            "models": _json_safe(fitted.to_dict()),
            "observation_end": end.date().isoformat(),
            "holdout_start": body.holdout.start.isoformat() if body.holdout else None,
            "customers": sum(fit.n_customers for fit in fitted.fits),
            "segment_columns": list(source.segment_columns),
            "currency": source.currency,
            "summary_path": str((directory / SUMMARY_FILE).relative_to(settings.data_dir)),
        }
    except BaseException as exc:
        shutil.rmtree(directory, ignore_errors=True)
        record_fit(body.purchase_model, job_outcome(exc))
        raise


def _summary_progress(progress: Progress, done: int, total: int) -> None:
    """Report each customer partition of a large summary (0.05 -> 0.3 of the job); the job's
    reporter raises there when the job was cancelled, so a long summary stops between parts."""
    if total > 1:
        progress(0.05 + 0.25 * done / total, f"summarise {done}/{total}")


def _end_of_day(day: date) -> datetime:
    """The last instant of a day: an observation end or calibration end includes the whole day."""
    return datetime.combine(day, time.max)


def _calibration(tx: ir.Table, body: FitCreate, observation_end: datetime | None) -> Any:
    if body.holdout is None:
        return None
    calibration_end = _end_of_day(body.holdout.start - timedelta(days=1))
    try:
        return summarize(
            tx,
            body.time_unit,
            calibration_end=calibration_end,
            observation_end=observation_end,
            segment_cols=list(body.segment_by),
        )
    except InvalidInput as exc:
        raise InvalidInput(
            f"The holdout cannot be used: {exc.detail}",
            errors=[FieldError("body.holdout.start", exc.detail)],
        ) from exc


def _latest(engine: Engine, tx: ir.Table) -> datetime:
    value = engine.to_pyarrow(tx.aggregate(last=tx.date.max()))["last"][0].as_py()
    return value if isinstance(value, datetime) else datetime.combine(value, time.min)


def _analysis_request(body: FitCreate) -> FitRequest:
    return FitRequest(
        purchase_model=body.purchase_model,
        spend_model=body.spend_model,
        segment_by=tuple(body.segment_by),
        per_segment=body.per_segment,
        time_unit=body.time_unit,
    )


def _json_safe(value: Any) -> Any:
    """Plain JSON: NaN and infinities (e.g. an unavailable covariance) become ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


# ------------------------------------------------------------------------------ the job


def run_fit_job(payload: dict[str, Any], report: ProgressReporter) -> str:
    """The ``fit`` job kind: fit a queued fit and store it; the fit row follows the job's state
    (running, succeeded, failed, cancelled, or back to queued after a shutdown)."""
    fit_id = str(payload["fit_id"])
    settings = report.settings
    with report.db.session() as session:
        fit = _job_fit(session, report.workspace_id, fit_id)
        dataset = dataset_service.get_dataset(session, report.workspace_id, fit.dataset_id)
        body = FitCreate.model_validate(fit.request)
        source = FitSource.of(settings, dataset)
        fit.status = "running"
    try:
        result = compute_fit(settings, fit_id, source, body, report)
    except JobInterrupted:
        _set_state(report, fit_id, "queued", None)
        raise
    except JobCancelled:
        _set_state(report, fit_id, "cancelled", None)
        raise
    except CLTVError as exc:
        _set_state(report, fit_id, "failed", problem_from_error(exc, fit_url(fit_id)))
        raise
    except Exception:
        error = JobFailed("The fit failed because of an unexpected server error.")
        _set_state(report, fit_id, "failed", problem_from_error(error, fit_url(fit_id)))
        raise
    with report.db.session() as session:
        done = FitRepository(session, report.workspace_id).get(fit_id)
        if done is None:  # deleted while it ran
            shutil.rmtree(fit_dir(settings, fit_id), ignore_errors=True)
            raise NotFound(f"Fit '{fit_id}' was deleted while it was being fitted.")
        done.result = {**result, "job_id": report.job_id}
        done.status = "succeeded"
        done.finished_at = utcnow()
    return fit_url(fit_id)


def fail_interrupted_fit(session: Session, job: Job, error: dict[str, Any]) -> None:
    """The fit a dead process was fitting is failed with the job's problem (the ``fit`` job
    kind's interrupted hook)."""
    fit_id = str((job.payload or {}).get("fit_id", ""))
    fit = FitRepository(session, job.workspace_id).get(fit_id)
    if fit is None or fit.status in FINISHED_STATUSES:
        return
    fit.status = "failed"
    fit.result = {"job_id": job.id, "error": {**error, "instance": fit_url(fit_id)}}
    fit.finished_at = utcnow()


def _job_fit(session: Session, workspace_id: str, fit_id: str) -> Fit:
    fit = FitRepository(session, workspace_id).get(fit_id)
    if fit is None:
        raise NotFound(f"Fit '{fit_id}' no longer exists.")
    return fit


def _set_state(
    report: ProgressReporter, fit_id: str, status: str, error: dict[str, Any] | None
) -> None:
    with report.db.session() as session:
        fit = FitRepository(session, report.workspace_id).get(fit_id)
        if fit is None:
            return
        fit.status = status
        fit.result = {"job_id": report.job_id, **({"error": error} if error else {})}
        if status in FINISHED_STATUSES:
            fit.finished_at = utcnow()


# ------------------------------------------------------------------------------ reading


def get_fit(session: Session, workspace_id: str, fit_id: str) -> Fit:
    """A fit of the workspace; NotFound for unknown, deleted or foreign ids."""
    fit = FitRepository(session, workspace_id).get(fit_id)
    if fit is None:
        raise NotFound(f"No fit '{fit_id}' in this workspace.")
    return fit


def list_fits(
    session: Session,
    workspace_id: str,
    *,
    dataset_id: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Fit], int]:
    """A page of the workspace's fits (newest first), optionally of one data set, and the count."""
    repository = FitRepository(session, workspace_id)
    conditions = [] if dataset_id is None else [Fit.dataset_id == dataset_id]
    return repository.list(*conditions, limit=limit, offset=offset), repository.count(*conditions)


def job_of(fit: Fit) -> str | None:
    return (fit.result or {}).get("job_id")


def load_fitted(fit: Fit) -> FittedModels:
    """The fitted models of a fit that succeeded (409 Conflict for any other state)."""
    result = fit.result or {}
    if fit.status != "succeeded" or "models" not in result:
        raise Conflict(
            f"Fit '{fit.id}' is {fit.status}; values need a fit that succeeded.",
            extra={"fit_status": fit.status},
        )
    return FittedModels.from_dict(_restore_nan(result["models"]))


def _restore_nan(value: Any) -> Any:
    """Inverse of :func:`_json_safe` for the fields models read back as floats."""
    if isinstance(value, Mapping):
        return {
            k: (float("nan") if v is None and k == "log_likelihood" else _restore_nan(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_restore_nan(v) for v in value]
    return value


def fit_document(fit: Fit) -> dict[str, Any]:
    """The API view of a fit (see :class:`cltv_api.schemas.fits.FitOut`)."""
    result = fit.result or {}
    job_id = result.get("job_id")
    url = fit_url(fit.id)
    return {
        "id": fit.id,
        "url": url,
        "status": fit.status,
        "dataset_id": fit.dataset_id,
        "request": fit.request,
        "created_at": fit.created_at,
        "finished_at": fit.finished_at,
        "job": {"id": job_id, "url": job_path(job_id)} if job_id else None,
        "error": result.get("error"),
        "result": _result_document(fit) if fit.status == "succeeded" else None,
        "links": {"segments": f"{url}/segments", "customers": f"{url}/customers"},
    }


def _result_document(fit: Fit) -> dict[str, Any]:
    result = fit.result or {}
    fitted = load_fitted(fit)
    return {
        "observation_end": result["observation_end"],
        "holdout_start": result.get("holdout_start"),
        "customers": result["customers"],
        "segment_columns": result.get("segment_columns", []),
        "fits": [_segment_fit_document(f, result.get("holdout_start")) for f in fitted.fits],
    }


def _segment_fit_document(fit: SegmentFit, holdout_start: str | None) -> dict[str, Any]:
    calibration = fit.calibration
    holdout = None
    if calibration is not None and holdout_start is not None:
        holdout = {
            "start": holdout_start,
            **{k: _finite(v) if isinstance(v, float) else v for k, v in calibration.items()},
            "calibration_parameters": calibration.get("params", {}),
            "by_frequency": [
                {k: _finite(v) if isinstance(v, float) else v for k, v in row.items()}
                for row in calibration.get("by_frequency", [])
            ],
        }
    return {
        "segment": fit.segment,
        "purchase_model": fit.purchase_model,
        "purchase": model_document(fit.purchase_model, fit.purchase),
        "spend": None if fit.spend is None else model_document("gamma_gamma", fit.spend),
        "n_customers": fit.n_customers,
        "n_repeat_customers": fit.n_repeat_customers,
        "n_histories": fit.n_histories,
        "candidates": [
            {k: _finite(v) if isinstance(v, float) else v for k, v in asdict(c).items()}
            for c in fit.candidates
        ],
        "selection_reason": fit.selection_reason,
        "holdout": holdout,
    }


def model_document(name: str, model: BaseModel) -> dict[str, Any]:
    """Parameters with standard errors and 95% intervals, fit statistics and diagnostics."""
    summary = model.summary()
    return {
        "model": name,
        "parameters": [
            {"name": param, **{k: _finite(v) for k, v in values.items()}}
            for param, values in summary["params"].items()
        ],
        "log_likelihood": _finite(summary["log_likelihood"]),
        "aic": _finite(summary["aic"]),
        "bic": _finite(summary["bic"]),
        "n_obs": float(summary["n_obs"]),
        "converged": bool(summary["converged"]),
        "message": str(summary["message"]),
        "n_iter": int(summary["n_iter"]),
    }


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


# ------------------------------------------------------------------------------ deleting


def delete_fit(session: Session, settings: Settings, workspace_id: str, fit_id: str) -> None:
    """Delete a fit, its stored summary and (if still queued or running) cancel its job."""
    fit = get_fit(session, workspace_id, fit_id)
    delete_fit_rows(session, workspace_id, [fit])
    session.commit()
    remove_fit_files(settings, [fit_id])


def delete_fits_of_dataset(session: Session, workspace_id: str, dataset_id: str) -> list[str]:
    """Delete the fit rows of a data set (cascade of a data set deletion); returns their ids.
    Their files are removed by :func:`remove_fit_files` once the deletion is committed."""
    fits = FitRepository(session, workspace_id).list(Fit.dataset_id == dataset_id, limit=10**9)
    return delete_fit_rows(session, workspace_id, fits)


def delete_fit_rows(session: Session, workspace_id: str, fits: Sequence[Fit]) -> list[str]:
    ids = []
    jobs = JobRepository(session, workspace_id)
    for fit in fits:
        job_id = job_of(fit)
        job = jobs.get(job_id) if job_id else None
        if job is not None and job.status not in FINISHED_STATUSES:
            cancel_job(session, workspace_id, job.id)
        ids.append(fit.id)
        session.delete(fit)
    session.flush()
    return ids


def remove_fit_files(settings: Settings, fit_ids: Sequence[str]) -> None:
    for fit_id in fit_ids:
        shutil.rmtree(fit_dir(settings, fit_id), ignore_errors=True)


# ------------------------------------------------------------------------------ valuation


@dataclass(frozen=True)
class ValuationParams:
    """The valuation query parameters of segment and customer reports."""

    horizon: int = 12
    horizon_unit: str = "months"
    discount_rate: float = 0.10
    margin: float = 1.0
    level: float = 0.95
    currency: str | None = None

    def valuation(self) -> Valuation:
        """The analysis layer's valuation; a horizon over 20 years is refused (422)."""
        longest = math.floor(MAX_HORIZON_YEARS * STEPS_PER_YEAR[self.horizon_unit])
        if self.horizon > longest:
            raise InvalidInput(
                f"The horizon is at most {MAX_HORIZON_YEARS} years ({longest} "
                f"{self.horizon_unit}).",
                errors=[
                    FieldError(
                        "query.horizon",
                        f"must be at most {longest} {self.horizon_unit}",
                        value=str(self.horizon),
                    )
                ],
            )
        return Valuation(
            horizon=self.horizon,
            horizon_unit=self.horizon_unit,
            annual_discount_rate=self.discount_rate,
            margin=self.margin,
            level=self.level,
            currency=self.currency or "",
        )

    @property
    def cache_key(self) -> tuple[Any, ...]:
        return (self.horizon, self.horizon_unit, self.discount_rate, self.margin, self.level)


def conventions(fit: Fit, fitted: FittedModels, params: ValuationParams) -> dict[str, Any]:
    """Units and conventions of the reported values."""
    time_unit = fitted.request.time_unit
    horizon = params.valuation().horizon_for(time_unit)
    currency = params.currency or ((fit.result or {}).get("currency")) or None
    return {
        "time_unit": time_unit,
        "horizon": params.horizon,
        "horizon_unit": params.horizon_unit,
        "horizon_in_time_units": horizon.n_steps * horizon.step_length,
        "discount_rate_annual_effective": params.discount_rate,
        "discount_rate_per_step": horizon.rate_per_step,
        "cash_flow_timing": f"end of each horizon step (1 {params.horizon_unit[:-1]})",
        "margin": params.margin,
        "currency": currency,
        "interval_level": params.level,
        "interval_method": "delta method on the log scale (parameter uncertainty)",
        "observation_end": (fit.result or {})["observation_end"],
    }


class SegmentCache:
    """Segment tables by (fit, parameters), least recently used dropped first (thread-safe)."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[Any, ...], list[SegmentRow]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_compute(
        self, key: tuple[Any, ...], compute: Callable[[], list[SegmentRow]]
    ) -> list[SegmentRow]:
        with self._lock:
            rows = self._entries.get(key)
            if rows is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return rows
            self.misses += 1
        rows = compute()
        if self.max_entries > 0:
            with self._lock:
                self._entries[key] = rows
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return rows

    def forget(self, fit_ids: Sequence[str]) -> None:
        """Drop the entries of deleted fits."""
        gone = set(fit_ids)
        with self._lock:
            for key in [k for k in self._entries if k[0] in gone]:
                del self._entries[key]


def _report_columns(fit: Fit, by: Sequence[str]) -> list[str]:
    available = (fit.result or {}).get("segment_columns", [])
    errors = [
        FieldError("query.by", f"no such segment column; the fit has {available}", value=name)
        for name in by
        if name not in available
    ]
    if errors:
        raise InvalidInput("Unknown segment column; see errors.", errors)
    return list(by)


def summary_file(settings: Settings, fit: Fit) -> Path:
    """The fit's stored summary (a Parquet file; a directory of parts when Spark wrote it)."""
    relative = str((fit.result or {}).get("summary_path", ""))
    path = settings.data_dir / relative
    if not relative or not path.exists():
        raise Conflict(f"The stored summary of fit '{fit.id}' is missing; fit it again.")
    return path


def segment_report(
    settings: Settings,
    cache: SegmentCache,
    fit: Fit,
    params: ValuationParams,
    by: Sequence[str],
) -> dict[str, Any]:
    """CLTV per segment with intervals, the all-customers total and the conventions."""
    fitted = load_fitted(fit)
    columns = _report_columns(fit, list(by) or list(fitted.request.segment_by))
    valuation = params.valuation()

    def compute() -> list[SegmentRow]:
        with dataset_service.open_engine(settings) as engine:
            summary = engine.table(summary_file(settings, fit))
            return segment_table(summary, fitted, valuation, by=columns)

    rows = cache.get_or_compute((fit.id, tuple(columns), *params.cache_key), compute)
    return {
        "fit_id": fit.id,
        "by": columns,
        "conventions": conventions(fit, fitted, params),
        "segments": [_row_document(r) for r in rows[:-1]] if columns else [],
        "total": _row_document(rows[-1]),
    }


def _row_document(row: SegmentRow) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in SEGMENT_METRICS}
    return {
        "segment": dict(row.segment),
        **{k: _finite(v) if isinstance(v, float) else v for k, v in values.items()},
    }


def segment_csv(report: Mapping[str, Any]) -> str:
    """The segment table as CSV: the segment columns, then one column per metric; the last row
    (segment values ``(all)``) is all customers. Numbers are written without exponents; segment
    values that a spreadsheet would run as formulas are neutralised (:mod:`cltv_api.exports`)."""
    by = list(report["by"]) or ["segment"]
    rows = [
        [*(row["segment"].get(c, ALL_LABEL) for c in by), *(row[m] for m in SEGMENT_METRICS)]
        for row in [*report["segments"], report["total"]]
    ]
    return write_csv([*by, *SEGMENT_METRICS], rows)


# ------------------------------------------------------------------------------ customers


@dataclass(frozen=True)
class CustomerQuery:
    """Which customers, in which order."""

    sort: str = "-clv"
    min_p_alive: float | None = None
    max_p_alive: float | None = None
    segments: dict[str, str] = field(default_factory=dict)


def _customers_expr(
    settings: Settings,
    engine: Engine,
    fit: Fit,
    fitted: FittedModels,
    valuation: Valuation,
    query: CustomerQuery,
) -> ir.Table:
    scored = _filtered_customers(settings, engine, fit, fitted, valuation, query)
    available = (fit.result or {}).get("segment_columns", [])
    key = query.sort.lstrip("-")
    order = scored[key].desc() if query.sort.startswith("-") else scored[key].asc()
    return scored.select("customer_id", *available, *METRIC_COLUMNS).order_by(
        [order, scored.customer_id.asc()]
    )


def _filtered_customers(
    settings: Settings,
    engine: Engine,
    fit: Fit,
    fitted: FittedModels,
    valuation: Valuation,
    query: CustomerQuery,
) -> ir.Table:
    """The fit's scored customers (a lazy engine table) that pass the query's filters."""
    summary = engine.table(summary_file(settings, fit))
    available = (fit.result or {}).get("segment_columns", [])
    unknown = [c for c in query.segments if c not in available]
    if unknown:
        raise InvalidInput(
            "Unknown segment column in a filter; see errors.",
            errors=[
                FieldError(f"query.segment.{c}", f"no such segment column; the fit has {available}")
                for c in unknown
            ],
        )
    scored = score_customers(summary, fitted, valuation)
    if query.min_p_alive is not None:
        scored = scored.filter(scored.p_alive >= query.min_p_alive)
    if query.max_p_alive is not None:
        scored = scored.filter(scored.p_alive <= query.max_p_alive)
    for column, value in query.segments.items():
        # Missing values match the label the segment tables give them, "(blank)".
        label = scored[column].cast("string").fill_null(BLANK_SEGMENT)
        scored = scored.filter(label == value)
    return scored


def customer_page(
    settings: Settings,
    fit: Fit,
    params: ValuationParams,
    query: CustomerQuery,
    *,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
    """One page of scored customers, how many match, and the conventions."""
    fitted = load_fitted(fit)
    valuation = params.valuation()
    segments = (fit.result or {}).get("segment_columns", [])
    with dataset_service.open_engine(settings) as engine:
        expr = _customers_expr(settings, engine, fit, fitted, valuation, query)
        total = int(engine.to_pyarrow(expr.aggregate(n=expr.count()))["n"][0].as_py())
        rows = engine.to_pyarrow(expr.limit(limit, offset=offset)).to_pylist()
    return (
        [_customer_document(row, segments) for row in rows],
        total,
        conventions(fit, fitted, params),
    )


def one_customer(
    settings: Settings, fit: Fit, params: ValuationParams, customer_id: str
) -> dict[str, Any]:
    """One customer's summary, predictions and CLTV interval (NotFound if not in the fit)."""
    fitted = load_fitted(fit)
    valuation = params.valuation()
    segments = (fit.result or {}).get("segment_columns", [])
    with dataset_service.open_engine(settings) as engine:
        expr = _customers_expr(settings, engine, fit, fitted, valuation, CustomerQuery())
        rows = engine.to_pyarrow(expr.filter(expr.customer_id == customer_id).limit(1)).to_pylist()
    if not rows:
        raise NotFound(f"No customer '{customer_id}' in fit '{fit.id}'.")
    return {
        **_customer_document(rows[0], segments),
        "conventions": conventions(fit, fitted, params),
    }


# ------------------------------------------------------------------------------ distributions


def parse_segment(text: str | None, available: Sequence[str]) -> dict[str, str]:
    """The segment named ``column=value`` (several columns joined with ``, ``, as business cases
    name segments); empty or ``all customers`` for every customer. A value may itself contain
    ``, `` as long as what follows is not another ``known column=``. Errors name
    ``query.segment``."""
    text = (text or "").strip()
    if not text or text == ALL_CUSTOMERS_LABEL:
        return {}
    if available:
        names = "|".join(re.escape(c) for c in sorted(available, key=len, reverse=True))
        parts = re.split(rf", (?=(?:{names})=)", text)
    else:
        parts = [text]
    out: dict[str, str] = {}
    for part in parts:
        column, sep, value = part.partition("=")
        column = column.strip()
        if not sep or column not in available:
            raise InvalidInput(
                "The segment is not valid; see errors.",
                errors=[
                    FieldError(
                        "query.segment",
                        f"must be column=value with a segment column of the fit {list(available)}"
                        ", several joined with ', '",
                        value=text,
                    )
                ],
            )
        out[column] = value
    return out


def distribution(
    settings: Settings,
    fit: Fit,
    params: ValuationParams,
    *,
    metric: str,
    bins: int,
    segment: Mapping[str, str],
) -> dict[str, Any]:
    """Histogram of one per-customer value over the fit's customers (or one segment's).

    ``metric``: ``p_alive`` (probability of being active at the observation end; bins of equal
    width over [0, 1]), ``clv`` or ``expected_purchases`` (bins of equal width from the smallest
    to the largest value). Bin i counts values in [edge_i, edge_i+1); the last bin includes its
    right edge. Everything is aggregated inside the engine: one pass for the count, range and
    mean, one ``group by`` on the bin index, so at most ``bins`` rows reach Python. Customers
    whose value is missing (no finite number) are counted in ``missing``, not in a bin.
    """
    if metric not in DISTRIBUTION_METRICS:  # the route's Literal refuses these first
        raise InvalidInput(
            "Unknown metric.",
            errors=[
                FieldError(
                    "query.metric", f"must be one of {list(DISTRIBUTION_METRICS)}", value=metric
                )
            ],
        )
    if not 1 <= bins <= MAX_DISTRIBUTION_BINS:
        raise InvalidInput(
            "Too many or too few bins.",
            errors=[
                FieldError(
                    "query.bins", f"must be between 1 and {MAX_DISTRIBUTION_BINS}", value=str(bins)
                )
            ],
        )
    fitted = load_fitted(fit)
    valuation = params.valuation()
    query = CustomerQuery(segments=dict(segment))
    with dataset_service.open_engine(settings) as engine:
        scored = _filtered_customers(settings, engine, fit, fitted, valuation, query)
        value = scored[metric].cast("float64")
        valid = value.notnull() & ~value.isnan()
        stats = engine.to_pyarrow(
            scored.aggregate(
                customers=scored.count(),
                valued=valid.cast("int64").sum(),
                low=value.min(where=valid),
                high=value.max(where=valid),
                mean=value.mean(where=valid),
            )
        ).to_pylist()[0]
        customers = int(stats["customers"] or 0)
        if customers == 0 and segment:
            raise InvalidInput(
                "No customer is in this segment.",
                errors=[
                    FieldError(
                        "query.segment",
                        "no customer of the fit is in this segment",
                        value=", ".join(f"{k}={v}" for k, v in segment.items()),
                    )
                ],
            )
        low, high = _histogram_range(metric, stats["low"], stats["high"])
        index = (((value - low) * bins) / (high - low)).floor().cast("int64").clip(0, bins - 1)
        binned = engine.to_pyarrow(
            scored.filter(valid)
            .mutate(bin=index)
            .group_by("bin")
            .aggregate(customers=lambda t: t.count())
        ).to_pylist()
    counts = [0] * bins
    for row in binned:
        counts[int(row["bin"])] += int(row["customers"])
    valued = int(stats["valued"] or 0)
    return {
        "fit_id": fit.id,
        "metric": metric,
        "description": DISTRIBUTION_METRICS[metric],
        "segment": dict(segment),
        "bins": bins,
        "edges": [low + (high - low) * i / bins for i in range(bins)] + [high],
        "counts": counts,
        "customers": customers,
        "missing": customers - valued,
        "mean": _finite(stats["mean"]),
        "min": _finite(stats["low"]),
        "max": _finite(stats["high"]),
        "conventions": conventions(fit, fitted, params),
    }


def _histogram_range(metric: str, low: float | None, high: float | None) -> tuple[float, float]:
    """[0, 1] for probabilities; else the values' range, one unit wide when they are all equal
    (or when there are none)."""
    if metric == "p_alive":
        return 0.0, 1.0
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return 0.0, 1.0
    low, high = float(low), float(high)
    return (low, high) if high > low else (low, low + 1.0)


def _customer_document(row: Mapping[str, Any], segments: Sequence[str]) -> dict[str, Any]:
    return {
        "customer_id": str(row["customer_id"]),
        "segments": {c: None if row[c] is None else str(row[c]) for c in segments},
        **{c: _finite(row[c]) for c in METRIC_COLUMNS},
    }


class CustomerExport:
    """All matching customers as CSV, produced in chunks: the engine streams Arrow record batches
    of ``CSV_BATCH_ROWS`` rows and each is written as CSV on its own, so no step holds every
    customer in memory. Opening (in the constructor) runs the checks and starts the query, so
    errors surface before a response starts; iterating yields UTF-8 CSV bytes (header first) and
    releases the engine at the end."""

    def __init__(
        self, settings: Settings, fit: Fit, params: ValuationParams, query: CustomerQuery
    ) -> None:
        fitted = load_fitted(fit)
        valuation = params.valuation()
        self._stack = contextlib.ExitStack()
        try:
            engine = self._stack.enter_context(dataset_service.open_engine(settings))
            expr = _customers_expr(settings, engine, fit, fitted, valuation, query)
            self.schema = expr.schema().to_pyarrow()
            self._batches = record_batches(engine, expr, CSV_BATCH_ROWS)
        except BaseException:
            self._stack.close()
            raise

    def __iter__(self) -> Iterator[bytes]:
        try:
            header = True
            for batch in self._batches:
                if batch.num_rows == 0:
                    continue
                yield _csv_bytes(batch, header)
                header = False
            if header:
                yield _csv_bytes(self.schema.empty_table(), True)
        finally:
            self._stack.close()


def _csv_bytes(data: pa.RecordBatch | pa.Table, header: bool) -> bytes:
    buffer = io.BytesIO()
    pa_csv.write_csv(
        neutralise_arrow(data),
        buffer,
        write_options=pa_csv.WriteOptions(include_header=header, quoting_style="needed"),
    )
    return buffer.getvalue()


def record_batches(engine: Engine, expr: ir.Table, rows: int) -> pa.RecordBatchReader:
    """Stream the result of ``expr`` as Arrow record batches of about ``rows`` rows.

    On DuckDB the query's relation is read with ``to_arrow_reader``: Ibis 12's own
    ``to_pyarrow_batches`` calls a cursor method that DuckDB 2.0 no longer has.
    """
    if engine.name == "duckdb":
        relation = engine.backend._to_duckdb_relation(expr)
        reader: pa.RecordBatchReader = relation.to_arrow_reader(rows)
        return reader
    batches: pa.RecordBatchReader = engine.backend.to_pyarrow_batches(expr, chunk_size=rows)
    return batches
