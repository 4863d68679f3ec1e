"""Service settings, read from the environment (prefix ``CLTV_``) once per process.

Every setting can be given as an environment variable, e.g. ``CLTV_DATA_DIR=/srv/cltv`` or
``CLTV_CORS_ORIGINS=https://a.example,https://b.example``. Tests build a :class:`Settings`
directly and pass it to :func:`cltv_api.main.create_app`; requests read the application's
settings (``app.state.settings``, :func:`cltv_api.deps.app_settings`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

GIB = 1024**3

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["json", "text"]


class Settings(BaseSettings):
    """Configuration of one service process."""

    model_config = SettingsConfigDict(env_prefix="CLTV_", extra="ignore", frozen=True)

    data_dir: Path = Field(
        default=Path("./data"),
        description="Directory for uploaded files, derived data and the default SQLite database.",
    )
    database_url: str = Field(
        default="",
        description=(
            "SQLAlchemy URL of the metadata database. Empty: a SQLite file "
            "``<data_dir>/cltv.sqlite3``. PostgreSQL URLs (``postgresql+psycopg://...``) work too."
        ),
    )
    engine: Literal["duckdb", "spark"] = Field(
        default="duckdb", description="Backend of the summary engine (Ibis on DuckDB or PySpark)."
    )
    max_upload_bytes: int = Field(
        default=GIB, gt=0, description="Largest accepted upload, in bytes (default 1 GiB)."
    )
    sync_fit_max_customers: int = Field(
        default=50_000,
        ge=0,
        description=(
            "Fits on at most this many customers run inside the request; larger ones become "
            "background jobs."
        ),
    )
    segment_cache_entries: int = Field(
        default=128,
        ge=0,
        description=(
            "Segment tables kept in memory per process (least recently used dropped first), so "
            "repeated pulls of one fit with the same parameters are not recomputed; 0 = no cache."
        ),
    )
    duckdb_memory_limit: str = Field(
        default="2GB", description="DuckDB ``memory_limit`` (e.g. ``2GB``, ``512MB``)."
    )
    worker_threads: int = Field(
        default=2, ge=1, le=64, description="Threads of the in-process background job worker."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed by CORS, comma-separated in the environment; empty = CORS off.",
    )
    log_level: LogLevel = Field(default="INFO", description="Level of the ``cltv_api`` loggers.")
    log_format: LogFormat = Field(
        default="json",
        description=(
            "``json``: one JSON object per log line (timestamp, level, logger, message, "
            "request_id, ...); ``text``: one human-readable line."
        ),
    )
    metrics_enabled: bool = Field(
        default=True, description="Serve Prometheus metrics at ``GET /metrics``."
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description=(
            "If set, ``GET /metrics`` requires ``Authorization: Bearer <metrics_token>``; "
            "unset = unauthenticated (keep the port private or put a proxy in front)."
        ),
    )
    rate_limit_per_second: float = Field(
        default=50.0,
        ge=0,
        description=(
            "Requests per second allowed per API key (anonymous requests: per client IP; share "
            "pulls: per token), refilled continuously (token bucket); 0 = no rate limit."
        ),
    )
    rate_limit_burst: int = Field(
        default=100,
        ge=1,
        description="Requests a caller may send at once before the per-second rate applies.",
    )

    job_poll_interval_seconds: float = Field(
        default=0.5, gt=0, description="How often idle job threads look for queued jobs, seconds."
    )
    job_heartbeat_seconds: float = Field(
        default=5.0, gt=0, description="How often running jobs' ``heartbeat_at`` is refreshed."
    )
    job_stale_after_seconds: float = Field(
        default=60.0,
        gt=0,
        description=(
            "A job still marked running whose heartbeat is older than this was left by a dead "
            "process; it is marked failed."
        ),
    )
    job_shutdown_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="On shutdown, how long running jobs may take to finish before being re-queued.",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Accept a comma-separated string (the environment form) as well as a list."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        """``CLTV_METRICS_TOKEN=`` (empty) means no token, not an empty one."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _check_heartbeat(self) -> Settings:
        if self.job_heartbeat_seconds >= self.job_stale_after_seconds:
            raise ValueError("job_heartbeat_seconds must be shorter than job_stale_after_seconds")
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL to connect to: ``database_url`` or the SQLite file in ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'cltv.sqlite3').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read from the environment once (a FastAPI dependency)."""
    return Settings()
