"""Read-only share tokens: a secret in a URL that lets a spreadsheet (Excel ``WEBSERVICE``,
Google Sheets ``IMPORTDATA``, which cannot send headers) pull numbers of ONE fit or ONE business
case of a workspace.

A token looks like ``cltv_share_<40 base-62 characters>`` (about 238 random bits). Like an API
key it is returned once; the database keeps its SHA-256 hex digest (same helper as the keys,
:func:`~cltv_api.services.workspaces.hash_key`) and its first 16 characters as a prefix. It is
never an API key (other prefix and length) and an API key is never a share token.

Refusals of a pull (chosen so that nothing leaks about other tokens or resources):

* an unknown or malformed token, a token of another resource type than the endpoint reads (a
  fit token on ``cashflows.csv``), or a resource that is gone or no longer in the token's
  workspace: **404** ``not-found``;
* a token that was revoked or has expired: **401** ``unauthorized`` saying which (only someone
  holding the secret learns that it once worked).

The token is never logged nor stored in plaintext; error details name its id, never the secret.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cltv_api.errors import FieldError, InvalidInput, NotFound, Unauthorized
from cltv_api.exports import csv_safe
from cltv_api.schemas.share import ShareTokenCreate
from cltv_api.services import business_cases as case_service
from cltv_api.services import fits as fit_service
from cltv_api.services.workspaces import KEY_ALPHABET, KEY_RANDOM_CHARS, hash_key
from cltv_api.settings import Settings
from cltv_api.storage.repositories import ShareTokenRepository
from cltv_api.storage.tables import BusinessCase, Fit, ShareToken, utcnow

TOKEN_PREFIX = "cltv_share_"
TOKEN_DISPLAY_CHARS = 16
FIT = "fit"
BUSINESS_CASE = "business_case"
FIT_METRICS: tuple[str, ...] = fit_service.SEGMENT_METRICS
CASE_METRICS: tuple[str, ...] = ("npv", "roi", "payback_periods", "pv_benefits", "pv_costs")
BREAK_EVEN = "break_even"


@dataclass(frozen=True)
class IssuedShareToken:
    """A token just created: the stored row and the secret, never retrievable again."""

    row: ShareToken
    plaintext: str


def generate_token() -> str:
    """A fresh random share token ``cltv_share_...``."""
    return TOKEN_PREFIX + "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_RANDOM_CHARS))


def _looks_like_token(token: str) -> bool:
    body = token[len(TOKEN_PREFIX) :]
    return (
        token.startswith(TOKEN_PREFIX)
        and len(body) == KEY_RANDOM_CHARS
        and all(char in KEY_ALPHABET for char in body)
    )


def share_urls(token: str, resource_type: str) -> dict[str, str]:
    """The paths a token reads (relative to the service's base URL)."""
    base = f"/v1/share/{token}"
    table = "segments.csv" if resource_type == FIT else "cashflows.csv"
    return {"value": f"{base}/value", table.removesuffix(".csv"): f"{base}/{table}"}


# ------------------------------------------------------------------------------ management


def _check_resource(
    session: Session, workspace_id: str, resource_type: str, resource_id: str
) -> Any:
    """The shared resource in this workspace (fit row, or the case's versions); NotFound else."""
    if resource_type == FIT:
        return fit_service.get_fit(session, workspace_id, resource_id)
    return case_service.case_versions(session, workspace_id, resource_id)


def _expiry(expires_at: datetime | None) -> datetime | None:
    if expires_at is None:
        return None
    aware = expires_at if expires_at.tzinfo is not None else expires_at.replace(tzinfo=UTC)
    if aware <= utcnow():
        raise InvalidInput(
            "The expiry must be in the future.",
            [FieldError("body.expires_at", "must be in the future", value=aware.isoformat())],
        )
    return aware


def issue_token(session: Session, workspace_id: str, body: ShareTokenCreate) -> IssuedShareToken:
    """Create a token for a resource of the workspace (404 for another workspace's id)."""
    _check_resource(session, workspace_id, body.resource_type, body.resource_id)
    plaintext = generate_token()
    row = ShareToken(
        resource_type=body.resource_type,
        resource_id=body.resource_id,
        token_hash=hash_key(plaintext),
        prefix=plaintext[:TOKEN_DISPLAY_CHARS],
        expires_at=_expiry(body.expires_at),
    )
    return IssuedShareToken(ShareTokenRepository(session, workspace_id).add(row), plaintext)


def list_tokens(session: Session, workspace_id: str) -> Sequence[ShareToken]:
    """The workspace's tokens (revoked ones too), newest first, without their secrets."""
    return ShareTokenRepository(session, workspace_id).list(limit=10_000)


def revoke_token(session: Session, workspace_id: str, token_id: str) -> ShareToken:
    """Revoke a token of the workspace (idempotent); NotFound for unknown or foreign ids."""
    row = ShareTokenRepository(session, workspace_id).get(token_id)
    if row is None:
        raise NotFound(f"No share token '{token_id}' in this workspace.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row


# ------------------------------------------------------------------------------ pulls


def resolve_token(session: Session, presented: str, resource_type: str | None) -> ShareToken:
    """The valid token row for a pull of ``resource_type`` (None: either; see the module
    docstring).

    The one lookup across workspaces besides API keys: by the digest of the secret.
    """
    row = None
    if _looks_like_token(presented):
        query = select(ShareToken).where(ShareToken.token_hash == hash_key(presented))
        row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFound("No such share token.")
    if row.revoked_at is not None:
        raise Unauthorized(f"Share token '{row.id}' has been revoked.")
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise Unauthorized(f"Share token '{row.id}' expired at {row.expires_at.isoformat()}.")
    if resource_type is not None and row.resource_type != resource_type:
        raise NotFound(
            f"Share token '{row.id}' does not share a {resource_type.replace('_', ' ')}."
        )
    return row


def shared_fit(session: Session, token: ShareToken) -> Fit:
    """The token's fit, still in the token's workspace (404 once deleted)."""
    fit: Fit = _check_resource(session, token.workspace_id, FIT, token.resource_id)
    return fit


def shared_case(session: Session, token: ShareToken) -> BusinessCase:
    """The latest version of the token's case, still in the token's workspace (404 once gone)."""
    versions = _check_resource(session, token.workspace_id, BUSINESS_CASE, token.resource_id)
    return case_service.pick_version(list(versions), None)


def cash_flows_csv(
    row: BusinessCase, *, sep: str, decimal: csv_safe.DecimalMark, bom: bool
) -> bytes:
    """The case version's cash-flow table, exactly as ``/v1/business-cases/{id}?format=csv``."""
    return case_service.cash_flow_csv(row, sep=sep, decimal=decimal, bom=bom)


def _unknown_metric(metric: str, allowed: Sequence[str]) -> InvalidInput:
    return InvalidInput(
        f"Unknown metric '{metric}'.",
        [FieldError("query.metric", f"must be one of {list(allowed)}", value=metric)],
    )


def _segment_label(segment: Mapping[str, Any]) -> str:
    return ", ".join(str(v) for v in segment.values())


def fit_value(report: Mapping[str, Any], metric: str, segment: str | None) -> float | None:
    """One number of a segment report (:func:`~cltv_api.services.fits.segment_report`).

    ``segment`` is the segment's value (several segment columns: the values joined by ``", "``,
    in the report's column order); None means all customers.
    """
    if metric not in FIT_METRICS:
        raise _unknown_metric(metric, FIT_METRICS)
    if segment is None:
        value: float | None = report["total"][metric]
        return value
    for row in report["segments"]:
        if _segment_label(row["segment"]) == segment:
            found: float | None = row[metric]
            return found
    names = [_segment_label(row["segment"]) for row in report["segments"]]
    raise NotFound(
        f"The fit has no segment '{segment}'.",
        [FieldError("query.segment", f"no such segment; the fit's are {names}", value=segment)],
    )


def case_value(row: BusinessCase, metric: str) -> float | None:
    """One number of a case version's result; ``break_even`` is the break-even value of the
    case's first effect (the effect size at which the NPV is zero)."""
    result = row.result or {}
    if metric == BREAK_EVEN:
        effects = (result.get("break_even") or {}).get("effects") or []
        return effects[0]["break_even_value"] if effects else None
    if metric not in CASE_METRICS:
        raise _unknown_metric(metric, (*CASE_METRICS, BREAK_EVEN))
    value: float | None = result.get(metric)
    return value


def value_text(value: float | int | None, decimal: csv_safe.DecimalMark) -> str:
    """A bare number as a spreadsheet reads it: no thousands separators, no exponent, ``,`` as
    the decimal mark with ``decimal="comma"``; empty when the value is missing or not finite."""
    return "" if value is None else csv_safe.format_number(value, decimal)


def check_csv_options(sep: str, decimal: csv_safe.DecimalMark) -> None:
    """422 naming the query field for impossible CSV options (e.g. ``sep=,`` with a comma)."""
    problems = csv_safe.check_options(sep, decimal)
    if problems:
        raise InvalidInput(
            "The CSV options are not valid.",
            [FieldError(f"query.{name}", message, value=sep) for name, message in problems],
        )


def segments_csv(
    report: Mapping[str, Any], *, sep: str, decimal: csv_safe.DecimalMark, bom: bool
) -> bytes:
    """The segment table as CSV (same layout as ``/v1/fits/{id}/segments?format=csv``, the last
    row ``(all)`` = all customers) with the locale options of :func:`csv_safe.write_csv`."""
    by = list(report["by"]) or ["segment"]
    rows = [
        [
            *(row["segment"].get(c, fit_service.ALL_LABEL) for c in by),
            *(row[m] for m in FIT_METRICS),
        ]
        for row in [*report["segments"], report["total"]]
    ]
    text = csv_safe.write_csv([*by, *FIT_METRICS], rows, sep=sep, decimal=decimal, bom=bom)
    return text.encode("utf-8")


def fit_report(
    session: Session,
    settings: Settings,
    cache: fit_service.SegmentCache,
    token: ShareToken,
    params: fit_service.ValuationParams,
) -> dict[str, Any]:
    """The shared fit's segment report (the fit's own segment columns), through the cache."""
    fit = shared_fit(session, token)
    session.commit()  # no transaction held while values are computed
    return fit_service.segment_report(settings, cache, fit, params, [])
