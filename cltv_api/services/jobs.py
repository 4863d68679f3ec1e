"""Background jobs: a registry of job kinds, the queue in the ``jobs`` table, an in-process worker.

A job kind is a function ``func(payload, report) -> result_ref | None`` registered with
:func:`register_job_kind`. ``payload`` is the JSON object given when the job was queued;
``report(progress, stage)`` records progress (0 to 1) and what the job is doing, and is also the
point where a job learns it must stop: it raises :class:`JobCancelled` once the job was cancelled
and :class:`JobInterrupted` when the server is shutting down. ``report`` also carries context
(``report.job_id``, ``report.workspace_id``, ``report.db``, ``report.settings``). The return
value, if any, is the path of the result (e.g. ``/v1/fits/fit_...``). A job that raises a
:class:`~cltv_api.errors.CLTVError` fails with that error as its problem details; any other
exception fails it with a generic internal error (the traceback goes to the log only).

Life of a job: ``queued`` → ``running`` → ``succeeded`` | ``failed`` | ``cancelled``.

Restarts. The worker refreshes ``heartbeat_at`` of the jobs it runs every
``job_heartbeat_seconds``. A job still ``running`` whose heartbeat is older than
``job_stale_after_seconds`` belongs to a process that died (crash, kill -9, power loss): at
start-up, and periodically while running, the worker marks such jobs **failed** with the error
"interrupted by a server restart". They are not re-run automatically: a half-run job may have
written partial results, and the caller decides whether to submit it again. Jobs still ``queued``
never started, so they stay queued and the new process runs them. On a graceful shutdown
(SIGTERM), running jobs get ``job_shutdown_grace_seconds`` to finish; the ones still running are
then interrupted at their next ``report`` and put back in the queue (re-run from the start by the
next process).

Observability. Every log line of a job carries its ``job_id``, ``job_kind`` and ``workspace_id``,
and the ``request_id`` of the request that queued it when this process queued it; the worker
logs when a job starts and ends (with its outcome and duration) and records the run time in the
application's metrics (``cltv_job_duration_seconds{kind, outcome}``). Outcomes:
``succeeded``, ``failed`` (a :class:`~cltv_api.errors.CLTVError`), ``error`` (an unexpected
exception), ``cancelled`` and ``interrupted`` (re-queued at shutdown); see :func:`job_outcome`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session

from cltv_api.errors import CLTVError, Conflict, InvalidInput, NotFound
from cltv_api.metrics import Metrics, current_metrics, record_job
from cltv_api.observability import LogContext, bind_context, current_request_id
from cltv_api.problems import problem_from_error
from cltv_api.settings import Settings
from cltv_api.storage.db import Database
from cltv_api.storage.repositories import JobQueue, JobRepository
from cltv_api.storage.tables import JOB_STATUSES, Job, utcnow

logger = logging.getLogger("cltv_api.jobs")

FINISHED_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
MAX_STAGE_CHARS = 200
MAX_REMEMBERED_ORIGINS = 10_000


class ProgressReporter(Protocol):
    """What a job function receives to report progress: ``report(progress, stage)``."""

    job_id: str
    workspace_id: str
    db: Database
    settings: Settings

    def __call__(self, progress: float, stage: str) -> None: ...


JobFunc = Callable[[dict[str, Any], ProgressReporter], str | None]

InterruptedHook = Callable[[Session, Job, dict[str, Any]], None]
"""Called when a job of the kind is found interrupted by a dead process, in the transaction
that marks it failed, with the job and the problem recorded on it (e.g. to fail the resource
the job was building)."""

_REGISTRY: dict[str, JobFunc] = {}
_ON_INTERRUPTED: dict[str, InterruptedHook] = {}
_REGISTRY_LOCK = threading.Lock()


class JobCancelled(BaseException):
    """Raised inside a job by ``report`` once the job was cancelled (not an ``Exception``, so a
    job's own ``except Exception`` does not swallow it)."""


class JobInterrupted(BaseException):
    """Raised inside a job by ``report`` when the server shuts down; the job is re-queued."""


@dataclass
class JobInterruptedError(CLTVError):
    """The error recorded on a job whose process died while running it."""

    type_slug: str = "job-interrupted"
    title: str = "Job interrupted"
    status: int = 500


@dataclass
class JobFailed(CLTVError):
    """The error recorded on a job that raised an unexpected exception."""

    type_slug: str = "job-failed"
    title: str = "Job failed"
    status: int = 500


INTERRUPTED_DETAIL = (
    "The job was interrupted by a server restart before it finished; submit it again."
)


def job_outcome(exc: BaseException | None) -> str:
    """The outcome label of work that ended with ``exc`` (None: it succeeded)."""
    if exc is None:
        return "succeeded"
    if isinstance(exc, JobCancelled):
        return "cancelled"
    if isinstance(exc, JobInterrupted):
        return "interrupted"
    if isinstance(exc, CLTVError):
        return "failed"
    return "error"


class _Origins:
    """The request id that queued each job, for the logs of the worker that runs it (in this
    process only; bounded, the oldest forgotten first)."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._ids: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, job_id: str, request_id: str) -> None:
        with self._lock:
            self._ids[job_id] = request_id
            while len(self._ids) > self._max_entries:
                self._ids.popitem(last=False)

    def pop(self, job_id: str) -> str | None:
        with self._lock:
            return self._ids.pop(job_id, None)


_ORIGINS = _Origins(MAX_REMEMBERED_ORIGINS)


def register_job_kind(
    kind: str,
    func: JobFunc,
    *,
    replace: bool = False,
    on_interrupted: InterruptedHook | None = None,
) -> None:
    """Make ``kind`` runnable by the worker. Registering a kind twice is an error unless
    ``replace`` (a different function under the same name is almost always a mistake).
    ``on_interrupted`` is called for jobs of the kind a dead process left running."""
    if not kind or len(kind) > 40:
        raise ValueError("a job kind is a non-empty name of at most 40 characters")
    with _REGISTRY_LOCK:
        if kind in _REGISTRY and _REGISTRY[kind] is not func and not replace:
            raise ValueError(f"job kind '{kind}' is already registered")
        _REGISTRY[kind] = func
        if on_interrupted is not None:
            _ON_INTERRUPTED[kind] = on_interrupted
        else:
            _ON_INTERRUPTED.pop(kind, None)


def unregister_job_kind(kind: str) -> None:
    """Forget a job kind (queued jobs of that kind then fail when picked up)."""
    with _REGISTRY_LOCK:
        _REGISTRY.pop(kind, None)
        _ON_INTERRUPTED.pop(kind, None)


def registered_job_kinds() -> frozenset[str]:
    with _REGISTRY_LOCK:
        return frozenset(_REGISTRY)


def _job_func(kind: str) -> JobFunc | None:
    with _REGISTRY_LOCK:
        return _REGISTRY.get(kind)


# --- operations for request handlers (always within one workspace) ---------------------------


def job_path(job_id: str) -> str:
    """The URL path of a job."""
    return f"/v1/jobs/{job_id}"


def enqueue_job(
    session: Session,
    workspace_id: str,
    kind: str,
    payload: Mapping[str, Any],
    *,
    on_commit: Callable[[], None] | None = None,
) -> Job:
    """Queue a job. ``on_commit`` (typically ``worker.wake``) runs once the session commits, so
    the worker starts it at once instead of at its next poll."""
    if kind not in registered_job_kinds():
        raise InvalidInput(f"Unknown job kind '{kind}'.")
    try:
        payload_dict = json.loads(json.dumps(dict(payload), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"The job payload is not plain JSON: {exc}.") from exc
    job = JobRepository(session, workspace_id).add(
        Job(kind=kind, status="queued", progress=0.0, payload=payload_dict, stage="queued")
    )
    request_id = current_request_id()
    if request_id is not None:
        _ORIGINS.remember(job.id, request_id)
    if on_commit is not None:
        event.listen(session, "after_commit", lambda _session: on_commit(), once=True)
    return job


def get_job(session: Session, workspace_id: str, job_id: str) -> Job:
    """A job of the workspace; :class:`NotFound` for unknown ids and other workspaces' jobs."""
    job = JobRepository(session, workspace_id).get(job_id)
    if job is None:
        raise NotFound(f"No job '{job_id}' in this workspace.")
    return job


def list_jobs(
    session: Session,
    workspace_id: str,
    *,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Sequence[Job]:
    """The workspace's jobs, newest first, optionally of one status and/or kind."""
    if status is not None and status not in JOB_STATUSES:
        raise InvalidInput(f"Unknown job status '{status}'.")
    conditions = []
    if status is not None:
        conditions.append(Job.status == status)
    if kind is not None:
        conditions.append(Job.kind == kind)
    return JobRepository(session, workspace_id).list(*conditions, limit=limit, offset=offset)


def cancel_job(session: Session, workspace_id: str, job_id: str) -> Job:
    """Cancel a queued or running job. A running job stops at its next progress report."""
    job = get_job(session, workspace_id, job_id)
    if job.status in FINISHED_STATUSES:
        raise Conflict(
            f"Job '{job_id}' already {job.status}; only queued or running jobs can be cancelled."
        )
    job.status = "cancelled"
    job.stage = "cancelled"
    job.finished_at = utcnow()
    session.flush()
    return job


# --- the worker ------------------------------------------------------------------------------


class _Reporter:
    """The ``report`` callable given to a running job (see :class:`ProgressReporter`)."""

    def __init__(self, worker: JobWorker, job_id: str, workspace_id: str) -> None:
        self.job_id = job_id
        self.workspace_id = workspace_id
        self.db = worker.db
        self.settings = worker.settings
        self._interrupt = worker.interrupt_event

    def __call__(self, progress: float, stage: str) -> None:
        if not (isinstance(progress, int | float) and math.isfinite(progress)):
            raise ValueError(f"progress must be a finite number, got {progress!r}")
        if self._interrupt.is_set():
            raise JobInterrupted(self.job_id)
        clamped = min(1.0, max(0.0, float(progress)))
        with self.db.session() as session:
            still_running = JobQueue(session).report(
                self.job_id, clamped, str(stage)[:MAX_STAGE_CHARS], utcnow()
            )
        if not still_running:
            raise JobCancelled(self.job_id)


class JobWorker:
    """Runs queued jobs on ``settings.worker_threads`` daemon threads of this process.

    Daemon threads (not a ``concurrent.futures`` pool, whose threads the interpreter waits for at
    exit), so a job that never returns cannot keep a stopped server alive.
    """

    def __init__(self, db: Database, settings: Settings, metrics: Metrics | None = None) -> None:
        self.db = db
        self.settings = settings
        self.metrics = metrics
        self.interrupt_event = threading.Event()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._running: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # lifecycle

    def start(self) -> None:
        """Fail jobs orphaned by a dead process, then start the job threads and the heartbeat."""
        if self._threads:
            raise RuntimeError("the job worker is already started")
        self.recover_orphans()
        for index in range(self.settings.worker_threads):
            self._spawn(self._work_loop, f"cltv-job-{index}")
        self._spawn(self._maintenance_loop, "cltv-job-heartbeat")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def wake(self) -> None:
        """Look for queued jobs now rather than at the next poll."""
        self._wake.set()

    def stop(self, grace_seconds: float | None = None) -> list[str]:
        """Stop taking jobs; let running ones finish within the grace period, then interrupt
        (re-queue) them. Returns the ids of jobs whose thread still had not returned."""
        grace = self.settings.job_shutdown_grace_seconds if grace_seconds is None else grace_seconds
        self._stopping.set()
        self._wake.set()
        self._join_all(grace)
        if self.running_job_ids():
            logger.info("interrupting running jobs at shutdown: %s", self.running_job_ids())
            self.interrupt_event.set()
            self._join_all(max(grace, 1.0))
        stuck = self.running_job_ids()
        if stuck:
            logger.warning(
                "jobs still running after shutdown, left to the restart check: %s", stuck
            )
        self._threads = []
        return stuck

    def _join_all(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def running_job_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._running)

    # restart handling

    def recover_orphans(self) -> int:
        """Mark failed the running jobs whose heartbeat is stale (their process died)."""
        now = utcnow()
        stale_before = now - timedelta(seconds=self.settings.job_stale_after_seconds)
        error = problem_from_error(JobInterruptedError(INTERRUPTED_DETAIL))
        with self.db.session() as session:
            failed = JobQueue(session).fail_stale(stale_before, error, now)
            for job in failed:
                with _REGISTRY_LOCK:
                    hook = _ON_INTERRUPTED.get(job.kind)
                if hook is not None:
                    hook(session, job, error)
            count = len(failed)
        if count:
            logger.warning("marked %d job(s) interrupted by a server restart as failed", count)
        return count

    # threads

    def _maintenance_loop(self) -> None:
        interval = self.settings.job_heartbeat_seconds
        while not self._stopping.wait(interval):
            try:
                with self.db.session() as session:
                    JobQueue(session).heartbeat(self.running_job_ids(), utcnow())
                self.recover_orphans()
            except Exception:
                logger.exception("job heartbeat failed; retrying")

    def _work_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                job_id = self._claim_next()
            except Exception:
                logger.exception("could not claim a job; retrying")
                job_id = None
            if job_id is None:
                self._wake.wait(self.settings.job_poll_interval_seconds)
                if not self._stopping.is_set():
                    self._wake.clear()
                continue
            try:
                self._run(job_id)
            except Exception:  # the database failed while recording the outcome
                logger.exception("job %s: could not record its outcome", job_id)

    def _claim_next(self) -> str | None:
        with self.db.session() as session:
            queue = JobQueue(session)
            for job_id in queue.queued_ids(limit=self.settings.worker_threads + 1):
                if queue.claim(job_id, utcnow()):
                    return job_id
        return None

    def _run(self, job_id: str) -> None:
        with self.db.session() as session:
            job = JobQueue(session).get(job_id)
            assert job is not None
            kind, workspace_id, payload = job.kind, job.workspace_id, dict(job.payload)
        with self._lock:
            self._running[job_id] = threading.current_thread()
        context = LogContext(
            request_id=_ORIGINS.pop(job_id),
            workspace_id=workspace_id,
            job_id=job_id,
            job_kind=kind,
        )
        metrics_token = current_metrics.set(self.metrics)
        try:
            with bind_context(context):
                self._observed_execute(job_id, kind, workspace_id, payload)
        finally:
            current_metrics.reset(metrics_token)
            with self._lock:
                self._running.pop(job_id, None)

    def _observed_execute(
        self, job_id: str, kind: str, workspace_id: str, payload: dict[str, Any]
    ) -> None:
        """Run the job, logging its start and end and recording its run time."""
        logger.info("job %s (%s) started", job_id, kind)
        start = time.perf_counter()
        outcome = "error"  # if recording the outcome itself fails
        try:
            outcome = self._execute(job_id, kind, workspace_id, payload)
        finally:
            seconds = time.perf_counter() - start
            record_job(kind, outcome, seconds)
            logger.info(
                "job %s (%s) ended: %s after %.3f s",
                job_id,
                kind,
                outcome,
                seconds,
                extra={"fields": {"outcome": outcome, "duration_ms": round(seconds * 1e3, 2)}},
            )

    def _execute(self, job_id: str, kind: str, workspace_id: str, payload: dict[str, Any]) -> str:
        """Run the job and record its end; returns its outcome (see :func:`job_outcome`)."""
        func = _job_func(kind)
        if func is None:
            self._fail(job_id, JobFailed(f"No handler is registered for job kind '{kind}'."))
            return job_outcome(JobFailed(""))
        try:
            result_ref = func(payload, _Reporter(self, job_id, workspace_id))
        except JobCancelled as exc:
            logger.info("job %s cancelled", job_id)
            return job_outcome(exc)
        except JobInterrupted as exc:
            self._requeue(job_id)
            return job_outcome(exc)
        except CLTVError as exc:
            self._fail(job_id, exc)
            return job_outcome(exc)
        except Exception as exc:
            logger.exception("job %s (%s) failed", job_id, kind)
            self._fail(job_id, JobFailed("The job failed because of an unexpected server error."))
            return job_outcome(exc)
        self._finish(job_id, status="succeeded", progress=1.0, stage="done", result_ref=result_ref)
        return job_outcome(None)

    def _finish(self, job_id: str, **values: Any) -> None:
        now = utcnow()
        with self.db.session() as session:
            JobQueue(session).finish(job_id, finished_at=now, heartbeat_at=now, **values)

    def _fail(self, job_id: str, error: CLTVError) -> None:
        self._finish(job_id, status="failed", error=problem_from_error(error))

    def _requeue(self, job_id: str) -> None:
        logger.info("job %s interrupted by shutdown; re-queued", job_id)
        with self.db.session() as session:
            JobQueue(session).finish(
                job_id,
                status="queued",
                progress=0.0,
                stage="re-queued after a server shutdown",
                started_at=None,
                heartbeat_at=None,
            )
