"""The job engine: where background jobs are queued and who runs them.

PostgreSQL: jobs are rows of procrastinate's tables in the service's own database (no other broker).
Any number of ``provenance worker`` processes take them (each job by one worker at a time); a job that
raises is retried with exponential back-off up to ``job_attempts`` times; a worker that dies (``kill
-9``, a lost host) stops sending heartbeats, and after ``job_stalled_seconds`` the other workers put its
running jobs back in the queue. Every task is idempotent, so a job run twice leaves what one run leaves.
The serve processes only queue jobs, unless ``jobs_in_process`` makes each run a worker thread too.

SQLite: the same task functions run in a background thread of the serve process, from an in-memory
queue (lost with the process: what matters is redone at the next start: start-up re-verification and
garbage collection, and the periodic webhook delivery catches up on what was not delivered).

Either way a failed attempt is recorded in the audit log (``job_failed``: task, attempt, error) for
``provenance jobs``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from psycopg.conninfo import make_conninfo
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from service.store.db import AuditEvent

if TYPE_CHECKING:
    import procrastinate

    from service.context import ServiceContext
    from service.settings import Settings

log = logging.getLogger("provenance.jobs")

#: The queue every service job goes to (procrastinate's own maintenance tasks use "builtin").
QUEUE: Final = "provenance"
#: Periodic jobs: cron (minute hour day month weekday) per task.
PERIODIC: Final = {"deliver_webhooks": "* * * * *", "collect_garbage": "7 * * * *"}
#: Seconds between two periodic runs in the in-process runner (the same schedule as the crons above).
IN_PROCESS_PERIODS: Final = {"deliver_webhooks": 60.0, "collect_garbage": 3600.0}
#: The queueing lock of webhook delivery: at most one delivery job waits at a time.
WEBHOOK_LOCK: Final = "deliver_webhooks"
#: Seconds the in-process runner waits at shutdown for the job it is running.
STOP_WAIT: Final = 60.0
#: Hours the record of a succeeded job is kept (`provenance jobs` counts them); collect_garbage removes older.
KEEP_FINISHED_HOURS: Final = 7 * 24
#: Characters of an error message kept in the audit log.
MAX_ERROR: Final = 500


def worker_name() -> str:
    """This process, as job records name it (host and pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Jobs(Protocol):
    """What the service asks of a job engine."""

    #: True: jobs are rows in the database, run by any worker; False: by this process only.
    queued: bool

    def defer(self, task: str, args: Mapping[str, Any] | None = None, *, lock: str | None = None) -> bool:
        """Queue one job; with ``lock``, not if a job with that lock is already waiting (then False)."""
        ...

    def defer_many(self, task: str, args: Sequence[Mapping[str, Any]]) -> None:
        """Queue one job per argument set, at once."""
        ...

    def deliver_webhooks_soon(self) -> bool:
        """Queue a webhook delivery unless one is already waiting (call it when a change commits)."""
        ...

    def workers_alive(self) -> int:
        """Workers that sent a heartbeat within ``job_stalled_seconds`` (the in-process runner counts)."""
        ...

    def waiting(self, *tasks: str) -> int:
        """Jobs of these tasks queued or running."""
        ...

    def forget_finished(self, hours: int) -> None:
        """Remove the records of jobs that succeeded more than ``hours`` ago (failed ones are kept)."""
        ...

    def start(self, ctx: ServiceContext) -> None:
        """Run jobs in this process from now on (SQLite always; PostgreSQL with ``jobs_in_process``)."""
        ...

    def stop(self) -> None:
        """Stop running jobs in this process: the running job finishes (or, on PostgreSQL, is retried)."""
        ...

    def close(self) -> None: ...


def open_jobs(settings: Settings, engine: Engine) -> Jobs:
    """The job engine for this database (nothing is connected before the first use)."""
    if engine.dialect.name == "postgresql":
        return QueuedJobs(settings, engine)
    return InProcessJobs(settings.job_attempts)


def run_recorded(ctx: ServiceContext, task: str, args: Mapping[str, Any], attempt: int, job: int | None) -> None:
    """Run ``task`` with ``args``; record a failure in the audit log, then raise it (for the retry)."""
    from service.jobs.tasks import TASKS

    try:
        TASKS[task](ctx, **args)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
        log.warning("job %s (%s) attempt %d failed: %s", task, job, attempt + 1, error)
        try:
            with ctx.session() as session:
                detail = {"task": task, "job": job, "attempt": attempt + 1, "error": error, "worker": worker_name()}
                session.add(AuditEvent(kind="job_failed", subject=task, detail=detail))
                session.commit()
        except Exception:  # the database may be what failed: the log line above has it
            log.exception("could not record the failure of job %s", task)
        raise


# --------------------------------------------------------------------------------------------------
# SQLite: a thread of the serve process
# --------------------------------------------------------------------------------------------------


@dataclass(order=True)
class _Due:
    at: float
    order: int
    task: str = field(compare=False)
    args: dict[str, Any] = field(compare=False)
    lock: str | None = field(compare=False)
    attempt: int = field(compare=False, default=0)


class InProcessJobs:
    """Jobs run one at a time by a thread of this process, in the order deferred; failures retried with
    back-off (2, 4, 8… s) up to ``attempts`` runs; the periodic tasks on their period."""

    queued = False

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts
        self._ready: queue.Queue[_Due | None] = queue.Queue()
        self._locks: set[str] = set()
        self._guard = threading.Lock()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._ctx: ServiceContext | None = None

    def defer(self, task: str, args: Mapping[str, Any] | None = None, *, lock: str | None = None) -> bool:
        with self._guard:
            if lock is not None:
                if lock in self._locks:
                    return False
                self._locks.add(lock)
            self._ready.put(_Due(0.0, next(self._order), task, dict(args or {}), lock))
        return True

    def defer_many(self, task: str, args: Sequence[Mapping[str, Any]]) -> None:
        for one in args:
            self.defer(task, one)

    def deliver_webhooks_soon(self) -> bool:
        return self.defer("deliver_webhooks", lock=WEBHOOK_LOCK)

    def workers_alive(self) -> int:
        return int(self._thread is not None and self._thread.is_alive())

    def waiting(self, *tasks: str) -> int:
        with self._ready.mutex:
            return sum(1 for due in self._ready.queue if due is not None and due.task in tasks)

    def forget_finished(self, hours: int) -> None:
        pass  # nothing is recorded: a finished job is gone with its queue entry

    def start(self, ctx: ServiceContext) -> None:
        if self._thread is None:
            self._ctx = ctx
            self._thread = threading.Thread(target=self._run, name="provenance-jobs", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._ready.put(None)
            self._thread.join(STOP_WAIT)
            self._thread = None

    def close(self) -> None:
        self.stop()

    def _run(self) -> None:
        assert self._ctx is not None
        later: list[_Due] = []  # retries, by time
        now = time.monotonic()
        periodic = {task: now + period for task, period in IN_PROCESS_PERIODS.items()}
        while True:
            now = time.monotonic()
            for task, at in periodic.items():
                if at <= now:
                    self.defer(task, lock=f"periodic:{task}")
                    periodic[task] = now + IN_PROCESS_PERIODS[task]
            while later and later[0].at <= now:
                self._ready.put(heapq.heappop(later))
            wake = min([*periodic.values(), *(d.at for d in later[:1])])
            try:
                due = self._ready.get(timeout=max(0.0, wake - now))
            except queue.Empty:
                continue
            if due is None:
                return
            with self._guard:
                if due.lock is not None:
                    self._locks.discard(due.lock)  # a lock holds while waiting, as procrastinate's
            try:
                run_recorded(self._ctx, due.task, due.args, due.attempt, None)
            except Exception:
                if due.attempt + 1 < self.attempts:
                    due.attempt += 1
                    due.at = time.monotonic() + 2.0**due.attempt
                    heapq.heappush(later, due)


# --------------------------------------------------------------------------------------------------
# PostgreSQL: procrastinate
# --------------------------------------------------------------------------------------------------


def conninfo(url: str) -> str:
    """A libpq connection string for a SQLAlchemy PostgreSQL URL (``postgresql+psycopg://u:p@h:5432/db``)."""
    parsed = make_url(url)
    parts: dict[str, Any] = {
        "host": parsed.host,
        "port": parsed.port,
        "user": parsed.username,
        "password": parsed.password,
        "dbname": parsed.database,
        **{k: v for k, v in parsed.query.items() if isinstance(v, str)},
    }
    return make_conninfo(**{k: v for k, v in parts.items() if v is not None})


def procrastinate_app(settings: Settings) -> procrastinate.App:
    """A procrastinate App on the service's database with every service task (and the periodic ones)."""
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(settings.database)))
    from service.jobs.tasks import TASKS

    retry = procrastinate.RetryStrategy(max_attempts=settings.job_attempts - 1, exponential_wait=2)
    for name in TASKS:
        app.task(name=name, queue=QUEUE, pass_context=True, retry=retry)(_job_function(name))
    for name, cron in PERIODIC.items():
        app.periodic(cron=cron, periodic_id=name)(app.tasks[name])
    return app


def _job_function(task: str) -> Callable[..., None]:
    def run(context: procrastinate.JobContext, **args: Any) -> None:
        args.pop("timestamp", None)  # what a periodic job is given: when it was due
        ctx: ServiceContext = context.additional_context["ctx"]
        run_recorded(ctx, task, args, context.job.attempts, context.job.id)

    run.__name__ = run.__qualname__ = task
    return run


class QueuedJobs:
    """Jobs in procrastinate's tables; run by ``provenance worker`` (or this process's worker thread)."""

    queued = True

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.app = procrastinate_app(settings)
        self._open = False  # self.app: opened synchronously, for deferring from any thread of this process
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: Any = None

    def _opened(self) -> procrastinate.App:
        with self._guard:
            if not self._open:
                self.app.open()
                self._open = True
        return self.app

    def defer(self, task: str, args: Mapping[str, Any] | None = None, *, lock: str | None = None) -> bool:
        from procrastinate.exceptions import AlreadyEnqueued

        try:
            self._opened().tasks[task].configure(queueing_lock=lock).defer(**dict(args or {}))
        except AlreadyEnqueued:
            return False
        return True

    def defer_many(self, task: str, args: Sequence[Mapping[str, Any]]) -> None:
        for start in range(0, len(args), 1000):  # one statement per thousand jobs
            self._opened().tasks[task].batch_defer(*(dict(a) for a in args[start : start + 1000]))

    def deliver_webhooks_soon(self) -> bool:
        return self.defer("deliver_webhooks", lock=WEBHOOK_LOCK)

    def workers_alive(self) -> int:
        query = text(
            "SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > now() - make_interval(secs => :s)"
        )
        with self.engine.connect() as connection:
            return int(connection.execute(query, {"s": self.settings.job_stalled_seconds}).scalar_one())

    def waiting(self, *tasks: str) -> int:
        query = text(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing') AND task_name = ANY(:tasks)"
        )
        with self.engine.connect() as connection:
            return int(connection.execute(query, {"tasks": list(tasks)}).scalar_one())

    def forget_finished(self, hours: int) -> None:
        # procrastinate's own "delete_old_jobs" (its JobManager has it only async), on this process's engine
        query = text(
            "DELETE FROM procrastinate_jobs WHERE queue_name = :queue AND status = 'succeeded' AND id IN"
            " (SELECT job_id FROM procrastinate_events GROUP BY job_id"
            "  HAVING max(at) < now() - make_interval(hours => :hours))"
        )
        with self.engine.begin() as connection:
            connection.execute(query, {"queue": QUEUE, "hours": hours})

    def start(self, ctx: ServiceContext) -> None:
        if not self.settings.jobs_in_process or self._thread is not None:
            return
        started = threading.Event()

        def run() -> None:
            asyncio.run(self.work(ctx, concurrency=1, on_started=started.set, signals=False))

        self._thread = threading.Thread(target=run, name="provenance-worker", daemon=True)
        self._thread.start()
        started.wait(30)

    def stop(self) -> None:
        if self._thread is not None:
            if self._worker is not None:
                self._worker.stop()  # thread-safe: wakes the worker's loop
            self._thread.join(STOP_WAIT)
            self._thread = None

    def close(self) -> None:
        self.stop()
        with self._guard:
            if self._open:
                self.app.close()
                self._open = False

    async def work(
        self,
        ctx: ServiceContext,
        *,
        concurrency: int = 1,
        on_started: Callable[[], None] | None = None,
        signals: bool = True,
    ) -> None:
        """Run a worker until it is stopped (SIGTERM/SIGINT with ``signals``; :meth:`stop`): the jobs it runs
        finish first. Beside it, jobs of workers silent for ``job_stalled_seconds`` are put back in the queue."""
        from procrastinate.worker import Worker

        app = procrastinate_app(self.settings)  # its own App: its pool belongs to this event loop
        async with app.open_async():
            worker = Worker(
                app=app,
                queues=[QUEUE],
                name=worker_name(),
                concurrency=concurrency,
                additional_context={"ctx": ctx},
                install_signal_handlers=signals,
                update_heartbeat_interval=self.settings.job_heartbeat_seconds,
                stalled_worker_timeout=self.settings.job_stalled_seconds,
                fetch_job_polling_interval=min(5.0, self.settings.job_heartbeat_seconds),
            )
            self._worker = worker
            reaper = asyncio.create_task(self._retry_stalled(app))
            if on_started is not None:
                on_started()
            try:
                await worker.run()  # type: ignore[no-untyped-call]
            finally:
                reaper.cancel()
                self._worker = None

    async def _retry_stalled(self, app: procrastinate.App) -> None:
        """Every third of ``job_stalled_seconds``, put the running jobs of dead workers back in the queue."""
        from procrastinate.exceptions import ProcrastinateException

        seconds = self.settings.job_stalled_seconds
        manager = app.job_manager
        while True:
            await asyncio.sleep(max(0.5, seconds / 3))
            try:
                stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=seconds)
                for job in stalled:
                    try:
                        await manager.retry_job(job)
                    except ProcrastinateException:  # another worker retried it first
                        continue
                    log.warning("job %s (%s) of a dead worker put back in the queue", job.id, job.task_name)
            except Exception:  # the database is away: try again next round
                log.exception("could not look for stalled jobs")


__all__ = ["InProcessJobs", "Jobs", "QueuedJobs", "conninfo", "open_jobs", "worker_name"]
