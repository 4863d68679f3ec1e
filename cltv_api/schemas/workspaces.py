"""Workspace and API key bodies. A key's secret appears only in the response that creates it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Scope = Literal["read", "write", "admin"]


class WorkspaceOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "ws_4f0c9k2m1x8q7z3a5b6n",
                    "name": "Acme retail",
                    "created_at": "2026-01-05T09:30:00Z",
                }
            ]
        },
    )

    id: str
    name: str
    created_at: datetime


def _default_scopes() -> list[Scope]:
    return ["read"]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "dashboard (read only)", "scopes": ["read"]}]},
    )

    name: str = Field(default="", max_length=200, description="A label to recognise the key by.")
    scopes: list[Scope] = Field(
        default_factory=_default_scopes,
        min_length=1,
        description="`read` < `write` < `admin`; each scope includes the ones before it.",
    )

    @field_validator("scopes")
    @classmethod
    def _unique(cls, scopes: list[Scope]) -> list[Scope]:
        return sorted(set(scopes), key=("read", "write", "admin").index)


class ApiKeyOut(BaseModel):
    """A key as listed: its prefix identifies it; the secret itself is never shown again."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "key_0m3k9x2c7v5b1n8q4w6e",
                    "name": "dashboard (read only)",
                    "prefix": "cltv_Xq3fZ9a",
                    "scopes": ["read"],
                    "created_at": "2026-01-05T09:30:00Z",
                    "revoked_at": None,
                    "last_used_at": "2026-01-06T14:02:11Z",
                }
            ]
        },
    )

    id: str
    name: str
    prefix: str = Field(description="First characters of the key, to recognise it.")
    scopes: list[Scope]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    """A newly created key, with its secret: store it now, it cannot be shown again."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "key_0m3k9x2c7v5b1n8q4w6e",
                    "name": "dashboard (read only)",
                    "prefix": "cltv_Xq3fZ9a",
                    "scopes": ["read"],
                    "created_at": "2026-01-05T09:30:00Z",
                    "revoked_at": None,
                    "last_used_at": None,
                    "key": "cltv_Xq3fZ9aK2mP7rT4vW8yB1cD5fG0hJ3kL6nQ9sU2",
                }
            ]
        }
    )

    key: str = Field(description="The API key. Send it as `Authorization: Bearer <key>`.")


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]
