"""Workspaces and their API keys: creation, authentication, listing, rotation, revocation.

A key looks like ``cltv_<40 base-62 characters>`` (about 238 random bits from :mod:`secrets`). It
is returned once, when created; the database keeps only its SHA-256 hex digest (a lookup key,
enough for a secret of this entropy) and its first 12 characters (the "prefix") so a person can
recognise it in a list. Scopes nest: ``admin`` includes ``write``, which includes ``read``.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from cltv_api.errors import Conflict, Forbidden, NotFound, Unauthorized
from cltv_api.settings import Settings, get_settings
from cltv_api.storage.db import Database
from cltv_api.storage.migrate import upgrade_to_head
from cltv_api.storage.repositories import ApiKeyLookup, ApiKeyRepository, WorkspaceRepository
from cltv_api.storage.tables import SCOPES, ApiKey, Workspace, utcnow

KEY_PREFIX = "cltv_"
KEY_ALPHABET = string.ascii_letters + string.digits
KEY_RANDOM_CHARS = 40
KEY_DISPLAY_CHARS = 12
LAST_USED_RESOLUTION = timedelta(minutes=1)
ALL_SCOPES: tuple[str, ...] = SCOPES


@dataclass(frozen=True)
class Principal:
    """Who is calling: a workspace and the key it authenticated with."""

    workspace: Workspace
    api_key: ApiKey

    @property
    def scopes(self) -> frozenset[str]:
        return effective_scopes(self.api_key.scopes)

    def require(self, scope: str) -> None:
        """Raise :class:`Forbidden` unless the key has ``scope`` (directly or by inclusion)."""
        if scope not in self.scopes:
            raise Forbidden(
                f"This operation needs the '{scope}' scope; the key has: "
                f"{', '.join(sorted(self.api_key.scopes)) or 'none'}.",
                extra={"required_scope": scope},
            )


@dataclass(frozen=True)
class IssuedKey:
    """A key just created: the stored row and the secret, which is never retrievable again."""

    api_key: ApiKey
    plaintext: str


def effective_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """The scopes granted, with the ones each includes (admin ⊃ write ⊃ read)."""
    granted = set(scopes)
    ranks = [ALL_SCOPES.index(scope) for scope in granted if scope in ALL_SCOPES]
    return frozenset(ALL_SCOPES[: max(ranks) + 1]) if ranks else frozenset()


def hash_key(key: str) -> str:
    """SHA-256 hex digest of a key (what the database stores and looks up)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_key() -> str:
    """A fresh random API key ``cltv_...``."""
    return KEY_PREFIX + "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_RANDOM_CHARS))


def _looks_like_key(key: str) -> bool:
    return (
        key.startswith(KEY_PREFIX)
        and len(key) == len(KEY_PREFIX) + KEY_RANDOM_CHARS
        and all(char in KEY_ALPHABET for char in key[len(KEY_PREFIX) :])
    )


def _check_scopes(scopes: Sequence[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {ALL_SCOPES}, got {list(scopes)}")
    return sorted(set(scopes), key=ALL_SCOPES.index)


def create_workspace(session: Session, name: str) -> Workspace:
    """A new, empty workspace."""
    return WorkspaceRepository(session).add(name)


def issue_key(session: Session, workspace_id: str, name: str, scopes: Sequence[str]) -> IssuedKey:
    """Create a key for the workspace; the plaintext is in the result and nowhere else."""
    plaintext = generate_key()
    row = ApiKey(
        name=name,
        prefix=plaintext[:KEY_DISPLAY_CHARS],
        key_hash=hash_key(plaintext),
        scopes=_check_scopes(scopes),
    )
    return IssuedKey(api_key=ApiKeyRepository(session, workspace_id).add(row), plaintext=plaintext)


def list_keys(
    session: Session, workspace_id: str, include_revoked: bool = False
) -> Sequence[ApiKey]:
    """The workspace's keys, newest first (without their secrets, which are not stored)."""
    repository = ApiKeyRepository(session, workspace_id)
    if include_revoked:
        return repository.list(limit=10_000)
    return repository.active()


def _get_key(session: Session, workspace_id: str, key_id: str) -> ApiKey:
    key = ApiKeyRepository(session, workspace_id).get(key_id)
    if key is None:
        raise NotFound(f"No API key '{key_id}' in this workspace.")
    return key


def _is_last_admin(session: Session, key: ApiKey) -> bool:
    admins = [
        k for k in ApiKeyRepository(session, key.workspace_id).active() if "admin" in k.scopes
    ]
    return [k.id for k in admins] == [key.id]


def revoke_key(session: Session, workspace_id: str, key_id: str) -> ApiKey:
    """Revoke a key (idempotent). The last active admin key cannot be revoked: that would lock
    everyone out of key management; create another admin key first."""
    key = _get_key(session, workspace_id, key_id)
    if key.revoked_at is not None:
        return key
    if _is_last_admin(session, key):
        raise Conflict(
            "This is the workspace's last active admin key; create another admin key (or rotate "
            "this one) before revoking it."
        )
    key.revoked_at = utcnow()
    session.flush()
    return key


def rotate_key(session: Session, workspace_id: str, key_id: str) -> IssuedKey:
    """Replace a key by a new one with the same name and scopes; the old one stops working now."""
    old = _get_key(session, workspace_id, key_id)
    if old.revoked_at is not None:
        raise Conflict(f"API key '{key_id}' is revoked; create a new key instead.")
    issued = issue_key(session, workspace_id, old.name, old.scopes)
    old.revoked_at = utcnow()
    session.flush()
    return issued


def authenticate(session: Session, presented: str | None) -> Principal:
    """The workspace and key a request's API key belongs to; :class:`Unauthorized` otherwise.

    Records ``last_used_at`` (to the minute, so reads do not write on every request).
    """
    if not presented:
        raise Unauthorized("No API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.")
    key = ApiKeyLookup(session).by_hash(hash_key(presented)) if _looks_like_key(presented) else None
    if key is None:
        raise Unauthorized("The API key is not valid.")
    if key.revoked_at is not None:
        raise Unauthorized("The API key has been revoked.")
    workspace = WorkspaceRepository(session).get(key.workspace_id)
    if workspace is None:  # pragma: no cover - the foreign key cascades deletions
        raise Unauthorized("The API key's workspace no longer exists.")
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        key.last_used_at = now
        session.flush()
    return Principal(workspace=workspace, api_key=key)


def bootstrap_workspace(
    name: str, settings: Settings | None = None, scopes: Sequence[str] = ALL_SCOPES
) -> tuple[Workspace, str]:
    """Create a workspace with one key (admin by default) outside of any request.

    For the command line and ``make run``: prepares the data directory and database (migrations)
    from ``settings`` (default: the environment) and returns the workspace and the plaintext key.
    """
    settings = settings or get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        upgrade_to_head(db, lock_path=settings.data_dir / ".migrate.lock")
        with db.session() as session:
            workspace = create_workspace(session, name)
            issued = issue_key(session, workspace.id, "bootstrap", scopes)
        return workspace, issued.plaintext
    finally:
        db.dispose()
