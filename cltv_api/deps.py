"""FastAPI dependencies: settings, database session, job worker, authentication and scopes.

Use them through the ``Annotated`` aliases, e.g.::

    @router.get("/v1/things/{thing_id}")
    def get_thing(thing_id: str, session: SessionDep, workspace: CurrentWorkspace,
                  _: ReadAccess) -> ThingOut: ...

The session is one unit of work per request: committed when the endpoint returns (before the
response is sent, so a failed commit is a 500, not a lost write), rolled back when it raises.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from cltv_api.observability import note_workspace
from cltv_api.services.jobs import JobWorker
from cltv_api.services.workspaces import Principal, authenticate
from cltv_api.settings import Settings
from cltv_api.storage.db import Database
from cltv_api.storage.tables import Workspace

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="BearerKey",
    description="An API key `cltv_...` sent as `Authorization: Bearer <key>`.",
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="HeaderKey",
    description="The same API key sent as `X-API-Key: <key>`.",
)


async def app_settings(request: Request) -> Settings:
    """The settings the application was created with (``create_app(settings)``)."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(app_settings)]

# The trivial dependencies below are ``async``: FastAPI runs a plain ``def`` dependency in a
# worker thread, and those hand-offs were most of an authenticated request's time.


async def get_db(request: Request) -> Database:
    """The application's database (created in the lifespan)."""
    db: Database = request.app.state.db
    return db


async def get_worker(request: Request) -> JobWorker:
    """The application's background job worker (started in the lifespan)."""
    worker: JobWorker = request.app.state.worker
    return worker


DatabaseDep = Annotated[Database, Depends(get_db)]
WorkerDep = Annotated[JobWorker, Depends(get_worker)]


def get_session(db: DatabaseDep) -> Iterator[Session]:
    """A session for this request: committed if the endpoint returns, rolled back if it raises."""
    with db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_principal(
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    header_key: Annotated[str | None, Security(api_key_scheme)],
) -> Principal:
    """The workspace and key of the request (401 problem without a valid key)."""
    presented = bearer.credentials if bearer is not None else header_key
    principal = authenticate(session, presented)
    note_workspace(principal.workspace.id)  # for the access log line of this request
    # Authentication may record ``last_used_at``: commit now so that write transaction does not
    # stay open (holding SQLite's write lock) for the whole of a long request.
    session.commit()
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_current_workspace(principal: CurrentPrincipal) -> Workspace:
    """The workspace the request's key belongs to."""
    return principal.workspace


CurrentWorkspace = Annotated[Workspace, Depends(get_current_workspace)]


def require_scope(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets the request through only if its key has ``scope`` (else 403)."""

    async def check(principal: CurrentPrincipal) -> Principal:
        principal.require(scope)
        return principal

    check.__name__ = f"require_{scope}_scope"
    return check


ReadAccess = Annotated[Principal, Depends(require_scope("read"))]
WriteAccess = Annotated[Principal, Depends(require_scope("write"))]
AdminAccess = Annotated[Principal, Depends(require_scope("admin"))]
