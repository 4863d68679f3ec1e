"""Share-token bodies. A token's secret appears only in the response that creates it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ShareResource = Literal["fit", "business_case"]


class ShareTokenCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "resource_type": "fit",
                    "resource_id": "fit_4f0c9k2m1x8q7z3a5b6n",
                    "expires_at": "2026-12-31T23:59:59Z",
                }
            ]
        },
    )

    resource_type: ShareResource = Field(description="What the token reads: a fit or a case.")
    resource_id: str = Field(max_length=40, description="Id of the fit or business case.")
    expires_at: datetime | None = Field(
        default=None,
        description="When the token stops working (UTC if no offset is given); none = never.",
    )


class ShareTokenOut(BaseModel):
    """A token as listed: its prefix identifies it; the secret itself is never shown again."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    resource_type: ShareResource
    resource_id: str
    prefix: str = Field(description="The token's first characters, to recognise it by.")
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ShareTokenCreated(ShareTokenOut):
    """The token just created, with its secret (shown this once) and the URLs that use it."""

    token: str = Field(description="The secret `cltv_share_...`; store it now, it is not kept.")
    urls: dict[str, str] = Field(description="Paths that read the resource with this token.")


class ShareTokenList(BaseModel):
    items: list[ShareTokenOut]
