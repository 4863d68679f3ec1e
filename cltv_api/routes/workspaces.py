"""The caller's workspace and its API keys (``/v1/workspace``). Key management needs ``admin``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from cltv_api.deps import AdminAccess, ReadAccess, SessionDep
from cltv_api.problems import problem_responses
from cltv_api.schemas.workspaces import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    WorkspaceOut,
)
from cltv_api.services import workspaces as service
from cltv_api.storage.tables import ID_LENGTH

router = APIRouter(
    prefix="/v1/workspace",
    tags=["workspace"],
    responses=problem_responses(401, 403, 422, 500),
)

KeyId = Annotated[str, Path(max_length=ID_LENGTH, description="Id of the key, `key_...`.")]
NO_STORE = "no-store"


def _created(issued: service.IssuedKey, response: Response) -> ApiKeyCreated:
    response.headers["Location"] = f"/v1/workspace/keys/{issued.api_key.id}"
    response.headers["Cache-Control"] = NO_STORE
    out = ApiKeyOut.model_validate(issued.api_key)
    return ApiKeyCreated(**out.model_dump(), key=issued.plaintext)


@router.get("", response_model=WorkspaceOut, summary="The workspace of the calling key")
def get_workspace(principal: ReadAccess) -> WorkspaceOut:
    return WorkspaceOut.model_validate(principal.workspace)


@router.post(
    "/keys",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key (its secret is shown only in this response)",
)
def create_key(
    body: ApiKeyCreate, principal: AdminAccess, session: SessionDep, response: Response
) -> ApiKeyCreated:
    issued = service.issue_key(session, principal.workspace.id, body.name, body.scopes)
    return _created(issued, response)


@router.get("/keys", response_model=ApiKeyList, summary="List API keys (prefixes only)")
def list_keys(
    principal: AdminAccess,
    session: SessionDep,
    include_revoked: Annotated[bool, Query(description="Also list revoked keys.")] = False,
) -> ApiKeyList:
    keys = service.list_keys(session, principal.workspace.id, include_revoked=include_revoked)
    return ApiKeyList(items=[ApiKeyOut.model_validate(key) for key in keys])


@router.delete(
    "/keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an API key",
    responses=problem_responses(404, 409),
)
def revoke_key(key_id: KeyId, principal: AdminAccess, session: SessionDep) -> Response:
    service.revoke_key(session, principal.workspace.id, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/keys/{key_id}/rotate",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Replace a key by a new one with the same name and scopes; the old one is revoked",
    responses=problem_responses(404, 409),
)
def rotate_key(
    key_id: KeyId, principal: AdminAccess, session: SessionDep, response: Response
) -> ApiKeyCreated:
    issued = service.rotate_key(session, principal.workspace.id, key_id)
    return _created(issued, response)
