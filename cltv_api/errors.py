"""Domain errors of the service. Services raise these; one place maps them to HTTP problems.

Each error carries a stable ``type`` slug (used as the RFC 9457 problem ``type`` URI suffix),
a human ``detail`` and optional field-level ``errors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One problem with one field/column/row of the input."""

    field: str
    message: str
    row: int | None = None
    value: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.row is not None:
            out["row"] = self.row
        if self.value is not None:
            out["value"] = self.value
        return out


@dataclass
class CLTVError(Exception):
    """Base class of every error the service reports to a caller."""

    detail: str
    errors: list[FieldError] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    type_slug: str = "error"
    title: str = "Error"
    status: int = 500

    def __post_init__(self) -> None:
        super().__init__(self.detail)

    def __str__(self) -> str:
        return self.detail


@dataclass
class InvalidInput(CLTVError):
    """The caller's data or parameters are wrong; the message says what and where."""

    type_slug: str = "invalid-input"
    title: str = "Invalid input"
    status: int = 422


@dataclass
class AmbiguousFormat(InvalidInput):
    """The file could be read more than one way (e.g. dd/mm vs mm/dd); the caller must choose."""

    type_slug: str = "ambiguous-format"
    title: str = "Ambiguous file format"


@dataclass
class Unauthorized(CLTVError):
    """No API key, or one that is unknown or revoked (401 with ``WWW-Authenticate: Bearer``)."""

    type_slug: str = "unauthorized"
    title: str = "Unauthorized"
    status: int = 401


@dataclass
class Forbidden(CLTVError):
    """The key is valid but lacks the scope the operation needs (403)."""

    type_slug: str = "forbidden"
    title: str = "Forbidden"
    status: int = 403


@dataclass
class NotFound(CLTVError):
    type_slug: str = "not-found"
    title: str = "Not found"
    status: int = 404


@dataclass
class Conflict(CLTVError):
    type_slug: str = "conflict"
    title: str = "Conflict"
    status: int = 409


@dataclass
class PayloadTooLarge(CLTVError):
    type_slug: str = "payload-too-large"
    title: str = "Payload too large"
    status: int = 413


@dataclass
class FitFailed(CLTVError):
    """The model could not be fitted to this data (not identifiable, no convergence...)."""

    type_slug: str = "fit-failed"
    title: str = "Model fit failed"
    status: int = 422


@dataclass
class StorageError(CLTVError):
    """The data directory or database could not be written (disk full, read-only...)."""

    type_slug: str = "storage-error"
    title: str = "Storage error"
    status: int = 507


@dataclass
class UnsupportedMediaType(CLTVError):
    """The request body is of a media type the endpoint does not read (415)."""

    type_slug: str = "unsupported-media-type"
    title: str = "Unsupported media type"
    status: int = 415
