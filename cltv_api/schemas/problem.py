"""Problem details (RFC 9457), the body of every error response."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def _is_none(value: Any) -> bool:
    return value is None


class ProblemFieldError(BaseModel):
    """One problem with one field of the request (or one column/row of an uploaded file)."""

    model_config = ConfigDict(extra="allow")

    field: str = Field(description="Dotted path of the field, e.g. `body.scopes.0`.")
    message: str = Field(description="What is wrong with it.")
    row: int | None = Field(
        default=None, exclude_if=_is_none, description="Row of an uploaded file, when relevant."
    )
    value: str | None = Field(
        default=None, exclude_if=_is_none, description="The offending value, when safe to echo."
    )


class Problem(BaseModel):
    """An error, as `application/problem+json` (RFC 9457). Extension members may be present."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "https://cltv.dev/problems/validation-error",
                    "title": "Request validation failed",
                    "status": 422,
                    "detail": "The request has 1 invalid field; see errors.",
                    "instance": "/v1/workspace/keys",
                    "errors": [
                        {
                            "field": "body.scopes.0",
                            "message": "Input should be 'read', 'write' or 'admin'",
                        }
                    ],
                }
            ]
        },
    )

    type: str = Field(
        description="URI naming the kind of problem: https://cltv.dev/problems/<slug>."
    )
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(description="HTTP status code.")
    detail: str = Field(description="What went wrong this time, for a human.")
    instance: str | None = Field(
        default=None, exclude_if=_is_none, description="Path of the request that failed."
    )
    errors: list[ProblemFieldError] | None = Field(
        default=None, exclude_if=_is_none, description="Field-level problems, when there are some."
    )
