"""Retention fits: the shifted-beta-geometric (sBG) model on contractual survivor data, stored
so that their forecasts, values and cost of churn can be read again and used as business-case
baselines.

Survivor data comes in three forms, all turned into cohorts ``[size, active after period 1, ...]``
(Fader & Hardie 2007, "How to Project Customer Retention", J. Interactive Marketing 21(1);
several cohorts as in "Fitting the sBG Model to Multi-Cohort Data", 2007):

* counts per cohort, as given;
* per-customer start and end dates: customers are grouped by the calendar ``period`` in which
  they started (year, quarter, month, ISO week). A customer survives period k when her contract
  lasts MORE than k period lengths (end - start > k L, L = 365.25 days x the period's length in
  years; no end = still active). A cohort is followed for as many whole periods as its
  latest-starting member was observed before ``observation_end``, so every member is observed
  in every counted period; a cohort observed for less than one period is left out (and listed);
* a stored contractual data set, in the cohort layout (``cohort``, ``period``, ``survivors``) or
  the customer layout (``start``, ``end``), read as above.

Values follow Fader & Hardie (2010, "Customer-Base Valuation in a Contractual Setting: The Perils
of Ignoring Heterogeneity", Marketing Science 29(1)) through
:func:`cltv_api.economics.retention.contractual_churn_cost`. The discount rate of a retention fit
is PER PERIOD: it is handed to the economics module as the rate of a one-year period, which it
passes through unchanged ((1 + d) ** 1 - 1 = d).

The active base (who can still churn, by renewals made) is, by default, the customers active at
the end of the data: a cohort's last survivors have made as many renewals as the periods it was
followed; a customer still active on ``observation_end`` has made floor(tenure / L) renewals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from cltv_api.economics.calculator import PERIOD_YEARS
from cltv_api.economics.retention import (
    ContractualChurnCost,
    contractual_churn_cost,
    forecast_curves,
)
from cltv_api.errors import FieldError, FitFailed, InvalidInput, NotFound
from cltv_api.schemas.retention import CohortIn, CustomerSpellIn, RetentionFitCreate
from cltv_api.services import datasets as dataset_service
from cltv_api.services.fits import model_document
from cltv_api.settings import Settings
from cltv_api.storage.repositories import ScopedRepository
from cltv_api.storage.tables import RetentionFit
from models import ModelFitError
from models.sbg import SBG, as_cohorts

DAYS_PER_YEAR = 365.25
SOURCE = (
    "sBG: Fader & Hardie (2007), How to Project Customer Retention, J. Interactive Marketing "
    "21(1); values: Fader & Hardie (2010), Customer-Base Valuation in a Contractual Setting, "
    "Marketing Science 29(1)"
)
TIMING = (
    "one payment of value_per_period at the START of each period, the first at acquisition "
    "(undiscounted); an active customer is valued just before her next renewal decision, so "
    "her next payment, made if she renews, is undiscounted"
)
TENURE = (
    "renewals made: the survivors after period k have made k renewals and renew next with "
    "probability r(k + 1) = (beta + k) / (alpha + beta + k)"
)
DEFAULT_POINTS = 0.01

IntArray = NDArray[np.int64]


class RetentionFitRepository(ScopedRepository[RetentionFit]):
    model = RetentionFit


def retention_fit_url(fit_id: str) -> str:
    return f"/v1/retention/fits/{fit_id}"


# ------------------------------------------------------------------------------ cohorts


@dataclass(frozen=True)
class Cohort:
    """Survivors of one cohort: size, then active after each period."""

    name: str
    survivors: tuple[float, ...]


@dataclass(frozen=True)
class SurvivorData:
    """Cohorts to fit, cohorts left out (name, reason) and the active base by renewals."""

    kind: str
    cohorts: list[Cohort]
    dropped: list[tuple[str, str]]
    active_base: dict[int, float]
    dataset_id: str | None = None
    observation_end: date | None = None


def cohorts_from_counts(cohorts: Sequence[CohortIn], field: str = "body.cohorts") -> SurvivorData:
    """Validated cohorts as given; the active base is each cohort's last count, with as many
    renewals as the periods it was followed."""
    errors = []
    for i, cohort in enumerate(cohorts):
        try:
            as_cohorts([cohort.survivors])
        except ValueError as exc:
            message = str(exc).replace("survivors of cohort 0", "survivors").replace("cohort 0", "")
            errors.append(FieldError(f"{field}.{i}.survivors", message.strip()))
    names = [c.name for c in cohorts]
    errors += [
        FieldError(f"{field}.{i}.name", "is used by another cohort", value=name)
        for i, name in enumerate(names)
        if name in names[:i]
    ]
    if errors:
        raise InvalidInput("The cohorts are not valid survivor counts; see errors.", errors)
    base: dict[int, float] = {}
    for cohort in cohorts:
        periods = len(cohort.survivors) - 1
        base[periods] = base.get(periods, 0.0) + float(cohort.survivors[-1])
    return SurvivorData(
        kind="cohorts",
        cohorts=[Cohort(c.name, tuple(float(v) for v in c.survivors)) for c in cohorts],
        dropped=[],
        active_base=base,
    )


def period_days(period: str) -> float:
    """Length of one period in days (365.25 days a year)."""
    return PERIOD_YEARS[period] * DAYS_PER_YEAR


def _cohort_labels(starts: IntArray, period: str) -> list[str]:
    """The calendar period each start date (days since 1970-01-01) falls in."""
    days = starts.astype("datetime64[D]")
    if period == "year":
        return [str(v) for v in days.astype("datetime64[Y]")]
    if period == "month":
        return [str(v) for v in days.astype("datetime64[M]")]
    if period == "quarter":
        months = days.astype("datetime64[M]").astype(np.int64)
        return [f"{1970 + m // 12}-Q{m % 12 // 3 + 1}" for m in months]
    # ISO week: the Monday on or before the date (1970-01-01 was a Thursday).
    mondays = starts - (starts + 3) % 7
    return [f"week of {v}" for v in mondays.astype("datetime64[D]")]


def cohorts_from_spells(
    starts: IntArray,
    ends: NDArray[np.float64],
    period: str,
    observation_end: int,
    *,
    field: str,
) -> SurvivorData:
    """Cohorts from per-customer start days and end days (NaN: still active), in days since
    1970-01-01 (see the module docstring for the rules)."""
    length = period_days(period)
    if starts.size == 0:
        raise InvalidInput(
            "There are no customers to fit.", [FieldError(field, "needs at least one customer")]
        )
    late = np.flatnonzero(starts > observation_end)
    if late.size:
        raise InvalidInput(
            "A customer starts after the observation end.",
            [FieldError(field, "starts after observation_end", row=int(late[0]))],
        )
    backwards = np.flatnonzero(ends < starts)
    if backwards.size:
        raise InvalidInput(
            "A contract ends before it starts.",
            [FieldError(field, "end is before start", row=int(backwards[0]))],
        )
    lasted = np.where(np.isnan(ends), np.inf, ends - starts)
    observed = np.floor((observation_end - starts) / length).astype(np.int64)
    labels = np.asarray(_cohort_labels(starts, period), dtype=object)
    cohorts, dropped = [], []
    for label in sorted(set(labels.tolist())):
        members = labels == label
        periods = min(int(observed[members].min()), 1200)
        if periods < 1:
            dropped.append((str(label), "observed for less than one full period"))
            continue
        k = np.arange(1, periods + 1, dtype=np.float64)
        alive = (lasted[members][:, None] > k[None, :] * length).sum(axis=0)
        cohorts.append(Cohort(str(label), (float(members.sum()), *map(float, alive))))
    active = np.isnan(ends) | (ends > observation_end)
    renewals, counts = np.unique(observed[active], return_counts=True)
    return SurvivorData(
        kind="customers",
        cohorts=cohorts,
        dropped=dropped,
        active_base={int(r): float(n) for r, n in zip(renewals, counts, strict=True)},
        observation_end=date.fromordinal(date(1970, 1, 1).toordinal() + observation_end),
    )


def _days(values: Sequence[date | None]) -> NDArray[np.float64]:
    epoch = date(1970, 1, 1).toordinal()
    return np.array(
        [np.nan if v is None else float(v.toordinal() - epoch) for v in values], dtype=np.float64
    )


def _observation_end(given: date | None, starts: IntArray, ends: NDArray[np.float64]) -> int:
    if given is not None:
        return int(given.toordinal() - date(1970, 1, 1).toordinal())
    latest = float(np.nanmax(ends)) if np.any(~np.isnan(ends)) else -math.inf
    return int(max(float(starts.max()), latest))


def cohorts_from_customers(
    customers: Sequence[CustomerSpellIn], period: str, observation_end: date | None
) -> SurvivorData:
    starts = _days([c.start for c in customers]).astype(np.int64)
    ends = _days([c.end for c in customers])
    end = _observation_end(observation_end, starts, ends)
    return cohorts_from_spells(starts, ends, period, end, field="body.customers")


def cohorts_from_dataset(
    session: Session,
    settings: Settings,
    workspace_id: str,
    dataset_id: str,
    period: str,
    observation_end: date | None,
) -> SurvivorData:
    """Cohorts from a stored contractual data set (cohort or customer layout)."""
    dataset = dataset_service.get_dataset(session, workspace_id, dataset_id)
    layout = (dataset.stats or {}).get("layout")
    if dataset.kind != "contractual" or layout not in ("cohort", "customer"):
        raise InvalidInput(
            f"Data set '{dataset_id}' holds {dataset.kind} data; a retention fit needs "
            "contractual data (cohort survivor counts or customer start/end dates).",
            [FieldError("body.dataset_id", "not a contractual data set", value=dataset_id)],
        )
    path = dataset_service.dataset_file(settings, dataset)
    if layout == "cohort":
        table = pq.read_table(path, columns=["cohort", "period", "survivors"]).to_pydict()
        rows = sorted(zip(table["cohort"], table["period"], table["survivors"], strict=True))
        grouped: dict[str, list[float]] = {}
        for cohort, _, survivors in rows:
            grouped.setdefault(str(cohort), []).append(float(survivors))
        short = [name for name, values in grouped.items() if len(values) < 2]
        data = cohorts_from_counts(
            [CohortIn(name=name, survivors=v) for name, v in grouped.items() if len(v) >= 2],
            field="body.dataset_id",
        )
        dropped = [(name, "observed for less than one full period") for name in short]
        return replace(data, kind="dataset", dataset_id=dataset_id, dropped=dropped)
    table = pq.read_table(path, columns=["start", "end"])
    starts = table["start"].to_numpy().astype("datetime64[D]").astype(np.int64)
    end_values = table["end"].to_numpy(zero_copy_only=False).astype("datetime64[D]")
    ends = np.where(np.isnat(end_values), np.nan, end_values.astype(np.int64).astype(np.float64))
    end = _observation_end(observation_end, starts, ends)
    data = cohorts_from_spells(starts, ends, period, end, field="body.dataset_id")
    return replace(data, kind="dataset", dataset_id=dataset_id)


# ------------------------------------------------------------------------------ fitting


def fit_sbg(data: SurvivorData) -> SBG:
    """The sBG fitted to all cohorts at once (multi-cohort likelihood); 422 when impossible."""
    if not data.cohorts:
        raise FitFailed(
            "No cohort was observed for a full period: there is nothing to fit.",
            [FieldError("body", "no cohort observed for at least one full period")],
        )
    try:
        return SBG().fit([list(c.survivors) for c in data.cohorts])
    except ModelFitError as exc:
        raise FitFailed(str(exc)) from exc


def contractual_value(
    model: SBG,
    *,
    value_per_period: float,
    discount_rate: float,
    base: Mapping[int, float],
    max_renewals: int,
    points: float,
    currency: str,
    prefix: str,
) -> ContractualChurnCost:
    """The FH 2010 values for renewals 0..max_renewals and the active base (whose counts weight
    the totals; table rows outside the base have 0 customers)."""
    rows = {k: 0.0 for k in range(max_renewals + 1)}
    rows.update({int(k): float(n) for k, n in base.items()})
    try:
        return contractual_churn_cost(
            model,
            value_per_period,
            annual_discount_rate=discount_rate,  # a one-year period: passed through unchanged
            period="year",
            customers_by_renewals=dict(sorted(rows.items())),
            points=points,
            currency=currency,
        )
    except InvalidInput as exc:
        errors = [replace(e, field=prefix + _request_field(e.field)) for e in exc.errors]
        raise InvalidInput(exc.detail, errors) from exc


def _request_field(name: str) -> str:
    """The request's name of an economics field (``customers_by_renewals[3]`` ->
    ``customers_by_renewals.3``; the rate is per period, not annual)."""
    name = name.replace("[", ".").replace("]", "")
    return "discount_rate" if name == "annual_discount_rate" else name


def forecast_document(model: SBG, periods: int, level: float) -> dict[str, Any]:
    """Survival and retention of a new cohort with delta-method intervals (point forecasts only
    when the fit has no covariance)."""
    if bool(np.all(np.isfinite(model.covariance_))):
        f = forecast_curves(model, periods, level=level, method="delta")
        return {
            "periods": f.periods,
            "survival": f.survival,
            "survival_lower": f.survival_lower,
            "survival_upper": f.survival_upper,
            "retention": f.retention,
            "retention_lower": f.retention_lower,
            "retention_upper": f.retention_upper,
            "method": "delta method on the logit scale (parameter uncertainty)",
            "level": level,
        }
    t = np.arange(1, periods + 1)
    return {
        "periods": t.tolist(),
        "survival": model.survival(t).tolist(),
        "survival_lower": None,
        "survival_upper": None,
        "retention": model.retention_rate(t).tolist(),
        "retention_lower": None,
        "retention_upper": None,
        "method": "none: the fit has no covariance matrix",
        "level": level,
    }


def value_document(value: ContractualChurnCost) -> dict[str, Any]:
    doc = {k: v for k, v in vars(value).items() if k != "by_tenure"}
    doc["by_tenure"] = [vars(t) for t in value.by_tenure]
    return doc


def conventions(period: str, currency: str, value: float, rate: float) -> dict[str, Any]:
    return {
        "period": period,
        "currency": currency,
        "value_per_period": value,
        "discount_rate_per_period": rate,
        "timing": TIMING,
        "tenure": TENURE,
        "model": "sBG: churn probability theta ~ beta(alpha, beta) across customers; "
        "r(t) = (beta + t - 1) / (alpha + beta + t - 1)",
        "source": SOURCE,
    }


def _source_document(data: SurvivorData, model: SBG) -> dict[str, Any]:
    cohorts = []
    for c in data.cohorts:
        t = np.arange(len(c.survivors))
        cohorts.append(
            {
                "name": c.name,
                "periods_observed": len(c.survivors) - 1,
                "survivors": list(c.survivors),
                "expected_survivors": (c.survivors[0] * model.survival(t)).tolist(),
            }
        )
    return {
        "kind": data.kind,
        "dataset_id": data.dataset_id,
        "observation_end": data.observation_end.isoformat() if data.observation_end else None,
        "customers": float(sum(c.survivors[0] for c in data.cohorts)),
        "cohorts": cohorts,
        "dropped_cohorts": [{"name": n, "reason": r} for n, r in data.dropped],
    }


def _survivor_data(
    session: Session, settings: Settings, workspace_id: str, body: RetentionFitCreate
) -> SurvivorData:
    given = [
        name
        for name in ("cohorts", "customers", "dataset_id")
        if getattr(body, name) not in (None, [])
    ]
    if len(given) != 1:
        message = "give exactly one of cohorts, customers and dataset_id"
        raise InvalidInput(
            f"The survivor data is {'ambiguous' if given else 'missing'}: {message}.",
            [FieldError(f"body.{name}", message) for name in given or ["cohorts"]],
        )
    if body.cohorts:
        return cohorts_from_counts(body.cohorts)
    if body.customers:
        return cohorts_from_customers(body.customers, body.period, body.observation_end)
    assert body.dataset_id is not None
    return cohorts_from_dataset(
        session, settings, workspace_id, body.dataset_id, body.period, body.observation_end
    )


def _request_document(body: RetentionFitCreate) -> dict[str, Any]:
    """The request as stored: a long customer list is summarised by its length."""
    request = body.model_dump(mode="json", exclude={"customers"})
    if body.customers is not None:
        request["customers"] = {"count": len(body.customers)}
    return request


def create_retention_fit(
    session: Session, settings: Settings, workspace_id: str, body: RetentionFitCreate
) -> RetentionFit:
    """Fit the sBG, compute forecast and values, and store the fit."""
    data = _survivor_data(session, settings, workspace_id, body)
    base = (
        {int(k): float(v) for k, v in body.customers_by_renewals.items()}
        if body.customers_by_renewals is not None
        else data.active_base
    )
    model = fit_sbg(data)
    value = contractual_value(
        model,
        value_per_period=body.value_per_period,
        discount_rate=body.discount_rate,
        base=base,
        max_renewals=body.max_renewals,
        points=DEFAULT_POINTS,
        currency=body.currency,
        prefix="body.",
    )
    result = {
        "model": finite_json(model.to_dict()),
        "active_base": {str(k): v for k, v in sorted(base.items())},
        "source": _source_document(data, model),
        "conventions": conventions(
            body.period, body.currency, body.value_per_period, body.discount_rate
        ),
        "forecast": forecast_document(model, body.forecast_periods, body.level),
        "value": value_document(value),
        "model_document": finite_json(model_document("sbg", model)),
    }
    fit = RetentionFit(name=body.name, request=_request_document(body), result=finite_json(result))
    return RetentionFitRepository(session, workspace_id).add(fit)


def finite_json(value: Any) -> Any:
    """Plain JSON: NaN and infinities become None, tuples lists, keys strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


# ------------------------------------------------------------------------------ reading


def get_retention_fit(session: Session, workspace_id: str, fit_id: str) -> RetentionFit:
    fit = RetentionFitRepository(session, workspace_id).get(fit_id)
    if fit is None:
        raise NotFound(f"No retention fit '{fit_id}' in this workspace.")
    return fit


def list_retention_fits(
    session: Session, workspace_id: str, *, limit: int, offset: int
) -> tuple[Sequence[RetentionFit], int]:
    repository = RetentionFitRepository(session, workspace_id)
    return repository.list(limit=limit, offset=offset), repository.count()


def delete_retention_fit(session: Session, workspace_id: str, fit_id: str) -> None:
    session.delete(get_retention_fit(session, workspace_id, fit_id))
    session.flush()


def load_model(fit: RetentionFit) -> SBG:
    """The stored sBG (covariance None -> NaN, as fitted)."""
    data = dict(fit.result["model"])
    if data.get("covariance") is not None:
        data["covariance"] = [
            [np.nan if v is None else v for v in row] for row in data["covariance"]
        ]
    if data.get("log_likelihood") is None:
        data["log_likelihood"] = float("nan")
    return SBG.from_dict(data)


def active_base(fit: RetentionFit) -> dict[int, float]:
    return {int(k): float(v) for k, v in fit.result["active_base"].items()}


def fit_document(fit: RetentionFit) -> dict[str, Any]:
    """The API view of a stored retention fit (:class:`~cltv_api.schemas.retention.RetentionFitOut`)."""
    result = fit.result
    url = retention_fit_url(fit.id)
    return {
        "id": fit.id,
        "url": url,
        "name": fit.name,
        "created_at": fit.created_at,
        "source": result["source"],
        "model": result["model_document"],
        "conventions": result["conventions"],
        "forecast": result["forecast"],
        "value": result["value"],
        "links": {"self": url, "churn_cost": f"{url}/churn-cost"},
    }


def churn_cost_document(
    fit: RetentionFit,
    *,
    value_per_period: float | None,
    discount_rate: float | None,
    points: float,
    max_renewals: int | None,
) -> dict[str, Any]:
    """The values of the stored fit, recomputed with the given economics (None: as stored)."""
    stored = fit.result["conventions"]
    request = fit.request
    value = stored["value_per_period"] if value_per_period is None else value_per_period
    rate = stored["discount_rate_per_period"] if discount_rate is None else discount_rate
    renewals = int(request.get("max_renewals", 10)) if max_renewals is None else max_renewals
    result = contractual_value(
        load_model(fit),
        value_per_period=value,
        discount_rate=rate,
        base=active_base(fit),
        max_renewals=renewals,
        points=points,
        currency=stored["currency"],
        prefix="query.",
    )
    return {
        "retention_fit_id": fit.id,
        "conventions": conventions(stored["period"], stored["currency"], value, rate),
        "value": finite_json(value_document(result)),
    }
