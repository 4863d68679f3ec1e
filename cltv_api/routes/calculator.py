"""The quick CLTV calculator (``/v1/calculator``) and the web page that uses it (``/``).

``POST /v1/calculator`` (JSON body) and ``GET /v1/calculator`` (the same fields as query
parameters) are stateless: no key, no database, no engine; the answer is a closed-form sum
(Gupta & Lehmann 2003, 2005; see :mod:`cltv_api.economics.calculator`) and takes well under a
millisecond. Every field error names where it was sent (``body.retention_rate``,
``query.churn_rate``), as request-validation errors do.

The page is ``static/index.html`` served at ``/`` with a strict Content-Security-Policy (scripts,
styles and connections from this origin only; no inline script or style), the other static files
under ``/static``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from cltv_api.economics.calculator import (
    CalculatorInput,
    CalculatorResult,
    calculate,
)
from cltv_api.errors import FieldError, InvalidInput
from cltv_api.problems import problem_responses
from cltv_api.schemas.calculator import (
    CalculatorConventions,
    CalculatorCurve,
    CalculatorInputs,
    CalculatorRequest,
    CalculatorResponse,
)

router = APIRouter(prefix="/v1/calculator", tags=["calculator"], responses=problem_responses(422))

Location = Literal["body", "query"]

SOURCE = (
    "Gupta & Lehmann (2003), Customers as Assets, J. Interactive Marketing 17(1); "
    "Gupta & Lehmann (2005), Managing Customers as Investments, ch. 2"
)
MARGIN_FORMULA = "v = average_order_value x purchases_per_period x gross_margin"
FORMULAS: dict[tuple[str, bool], str] = {
    # (timing, unlimited horizon) -> CLTV; r retention, d discount rate per period, H horizon.
    ("start", True): "CLTV = v (1+d) / (1+d-r)",
    ("start", False): "CLTV = sum over t=1..H of v r^(t-1) / (1+d)^(t-1)",
    ("end", True): "CLTV = v / (1+d-r)",
    ("end", False): "CLTV = sum over t=1..H of v r^(t-1) / (1+d)^t",
}
TIMING_DESCRIPTIONS = {
    "start": "margin arrives at the start of each period: period 1 is not discounted",
    "end": "margin arrives at the end of each period: period 1 is discounted once",
}


def _rate_errors(body: CalculatorRequest, location: Location) -> list[FieldError]:
    """Exactly one of retention_rate and churn_rate must be given."""
    given = [body.retention_rate is not None, body.churn_rate is not None]
    if all(given):
        message = "give either retention_rate or churn_rate, not both"
    elif not any(given):
        message = "required: give retention_rate or churn_rate (churn = 1 - retention)"
    else:
        return []
    return [FieldError(f"{location}.{name}", message) for name in ("retention_rate", "churn_rate")]


def _retention(body: CalculatorRequest) -> float:
    if body.retention_rate is not None:
        return body.retention_rate
    assert body.churn_rate is not None
    return 1.0 - body.churn_rate


def _as_input(body: CalculatorRequest) -> CalculatorInput:
    return CalculatorInput(
        average_order_value=body.average_order_value,
        purchases_per_period=body.purchases_per_period,
        gross_margin=body.gross_margin,
        retention_rate=_retention(body),
        annual_discount_rate=body.annual_discount_rate,
        horizon_periods=body.horizon_periods,
        acquisition_cost=body.acquisition_cost,
        period=body.period,
        timing=body.timing,
        currency=body.currency,
    )


def _relocated(exc: InvalidInput, body: CalculatorRequest, location: Location) -> InvalidInput:
    """The calculator's error with each field named as the caller sent it: the location prefix,
    and ``churn_rate`` (with the caller's value) when the retention was derived from it."""
    errors = []
    for error in exc.errors:
        name, value = error.field, error.value
        if name == "retention_rate" and body.churn_rate is not None:
            name, value = "churn_rate", str(body.churn_rate)
        errors.append(replace(error, field=f"{location}.{name}", value=value))
    return InvalidInput(exc.detail, errors=errors)


def _conventions(inp: CalculatorInput, result: CalculatorResult) -> CalculatorConventions:
    unlimited = inp.horizon_periods is None
    horizon = (
        "unlimited (summed in closed form)" if unlimited else f"{inp.horizon_periods} {inp.period}"
    )
    return CalculatorConventions(
        period=inp.period,
        currency=inp.currency,
        timing=inp.timing,
        timing_description=TIMING_DESCRIPTIONS[inp.timing],
        first_period_included=True,
        horizon_periods=inp.horizon_periods,
        horizon_description=horizon,
        value_basis="revenue" if inp.gross_margin == 1 else "margin",
        annual_discount_rate=inp.annual_discount_rate,
        discount_rate_per_period=result.discount_rate_per_period,
        formula=f"{FORMULAS[(inp.timing, unlimited)]}; {MARGIN_FORMULA}",
        lifetime_definition="expected active periods within the horizon, undiscounted: "
        "sum of r^(t-1)",
        payback_definition="first period whose cumulative expected discounted margin reaches "
        "the acquisition cost; simple payback = acquisition cost / v",
        source=SOURCE,
    )


def _response(inp: CalculatorInput, result: CalculatorResult) -> CalculatorResponse:
    lifetime = result.expected_lifetime_periods
    curve_length = len(result.curve_period)
    return CalculatorResponse(
        clv=result.clv,
        ltv_to_cac=result.ltv_to_cac,
        cac_payback_periods=result.cac_payback_periods,
        simple_payback_periods=result.simple_payback_periods,
        expected_lifetime_periods=lifetime if math.isfinite(lifetime) else None,
        margin_per_period=result.margin_per_period,
        discount_rate_per_period=result.discount_rate_per_period,
        curve=CalculatorCurve(
            period=result.curve_period,
            survival=result.curve_survival,
            cumulative_value=result.curve_cumulative_value,
            truncated=inp.horizon_periods is None or inp.horizon_periods > curve_length,
        ),
        inputs=CalculatorInputs(
            average_order_value=inp.average_order_value,
            purchases_per_period=inp.purchases_per_period,
            gross_margin=inp.gross_margin,
            retention_rate=inp.retention_rate,
            churn_rate=1.0 - inp.retention_rate,
            annual_discount_rate=inp.annual_discount_rate,
            horizon_periods=inp.horizon_periods,
            acquisition_cost=inp.acquisition_cost,
            period=inp.period,
            timing=inp.timing,
            currency=inp.currency,
        ),
        conventions=_conventions(inp, result),
    )


def compute(body: CalculatorRequest, location: Location) -> CalculatorResponse:
    """The calculator's answer for ``body``; errors name fields as sent at ``location``."""
    rate_errors = _rate_errors(body, location)
    if rate_errors:
        raise InvalidInput("calculator inputs are not valid", errors=rate_errors)
    inp = _as_input(body)
    try:
        result = calculate(inp)
    except InvalidInput as exc:
        raise _relocated(exc, body, location) from exc
    return _response(inp, result)


@router.post(
    "",
    response_model=CalculatorResponse,
    summary="CLTV, LTV:CAC, payback and value curve of one customer (simple retention model)",
)
async def calculate_post(body: CalculatorRequest) -> CalculatorResponse:
    """Stateless: no key needed, nothing stored. Impossible inputs are a 422 problem naming
    every offending field (`body.<name>`)."""
    # async: the computation takes well under a millisecond, less than a thread hand-off
    return compute(body, "body")


@router.get(
    "",
    response_model=CalculatorResponse,
    summary="The calculator with its inputs as query parameters (a shareable link)",
)
async def calculate_get(query: Annotated[CalculatorRequest, Query()]) -> CalculatorResponse:
    """The same as `POST /v1/calculator`; errors name `query.<name>`."""
    return compute(query, "query")


# --- the web page --------------------------------------------------------------------------------

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
# The strict policy of the page; the security middleware adds the rest (nosniff, no referrer,
# X-Frame-Options on HTML) and keeps a policy a response already has.
PAGE_POLICY = {"Content-Security-Policy": CONTENT_SECURITY_POLICY}
PAGE_HEADERS = {**PAGE_POLICY, "Cache-Control": "no-cache"}

page_router = APIRouter(include_in_schema=False)


@page_router.get("/")
def index() -> FileResponse:
    """The calculator page, with the security headers (a strict CSP: no inline script)."""
    return FileResponse(
        STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS
    )


class StaticAssets(StaticFiles):
    """Static files under the page's content security policy, so ``/static/index.html`` is as
    locked down as ``/`` (the middleware adds the other security headers)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_POLICY)
        return response


def static_files() -> StaticAssets:
    """The app for ``/static`` (the page's scripts, styles and vendored libraries)."""
    return StaticAssets(directory=STATIC_DIR)
