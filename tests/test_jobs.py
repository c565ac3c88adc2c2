"""Background jobs: re-verification spread over real `provenance worker` processes on PostgreSQL (in
parallel, surviving a worker killed with SIGKILL), the same tasks in-process on SQLite, `provenance jobs`.

Items are seeded as copies of a few really stamped images (each copy's re-verification is real SDK work),
marked as decided under another trust ("untrusted", no label): re-verified, each must become exactly
what its stamped bytes say ("trusted", ``ai_generated``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from service.context import ServiceContext, build_context
from service.ingest.pipeline import ingest_asset
from service.ingest.schemas import Declaration
from service.store.db import Asset, AuditEvent
from tests import images
from tests.databases import Database
from tests.server_support import CLI
from tests.service_support import service_settings

STALE = "0" * 64  # a trust fingerprint no configuration has
JOB_ENV = {
    "PROVENANCE_JOB_HEARTBEAT_SECONDS": "0.5",
    "PROVENANCE_JOB_STALLED_SECONDS": "3",
    "PROVENANCE_LOG_LEVEL": "info",
}


def seed(ctx: ServiceContext, copies: int, originals: int = 2) -> None:
    """``originals`` stamped images, and ``copies`` rows pointing at their bytes, decided under stale trust."""
    rows = [
        ingest_asset(ctx, images.jpeg(seed=900 + i), Declaration.model_validate({"source": "ai_generated"}), None).row
        for i in range(originals)
    ]
    columns = ("upload_sha256", "stamped_sha256", "manifest", "media_type", "declaration", "verdict", "upstream")
    values: list[dict[str, Any]] = []
    for i in range(copies):
        row = rows[i % originals]
        values.append(
            {
                **{c: getattr(row, c) for c in columns},
                "id": f"copy-{i:06d}",
                "signer_chain": row.signer_chain,
                "state": "untrusted",
                "labels": [],
                "trust_fingerprint": STALE,
                "source": "ai_generated",
            }
        )
    with ctx.session() as session:
        session.execute(insert(Asset), values)
        session.commit()


def states(ctx: ServiceContext) -> dict[tuple[str, tuple[str, ...], bool], int]:
    """How many assets have each (state, labels, decided under this trust)."""
    found: dict[tuple[str, tuple[str, ...], bool], int] = {}
    with ctx.session() as session:
        for row in session.scalars(select(Asset)):
            key = (row.state, tuple(row.labels), row.trust_fingerprint == ctx.trust.fingerprint)
            found[key] = found.get(key, 0) + 1
    return found


def eventually(condition: Callable[[], bool], what: str, seconds: float = 180.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.1)


@contextmanager
def context(database: Database, tmp_path: Path, keys_dir: Path, **overrides: Any) -> Iterator[ServiceContext]:
    with closing(build_context(service_settings(tmp_path / "var", keys_dir, database, **overrides))) as ctx:
        yield ctx


@contextmanager
def workers(ctx: ServiceContext, count: int, tmp_path: Path, **env: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` real `provenance worker` processes on ``ctx``'s data (their logs beside it)."""
    procs = [start_worker(ctx, tmp_path / f"worker-{i}.log", **env) for i in range(count)]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)


def start_worker(ctx: ServiceContext, log: Path, **env: str) -> subprocess.Popen[bytes]:
    where = ["--data-dir", str(ctx.settings.data_dir), "--keys-dir", str(ctx.settings.keys_dir)]
    full = {**os.environ, **JOB_ENV, "PROVENANCE_DATABASE_URL": ctx.settings.database, **env}
    with log.open("wb") as sink:
        return subprocess.Popen([*CLI, "worker", *where], stdout=sink, stderr=subprocess.STDOUT, env=full)


def command(ctx: ServiceContext, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    where = ["--data-dir", str(ctx.settings.data_dir), "--keys-dir", str(ctx.settings.keys_dir)]
    full = {**os.environ, **JOB_ENV, "PROVENANCE_DATABASE_URL": ctx.settings.database, **env}
    return subprocess.run([*CLI, *args, *where], capture_output=True, text=True, timeout=300, env=full, check=False)


def batch_workers(ctx: ServiceContext) -> dict[str, int]:
    """Worker (host:pid) -> items it checked, from the audit events the batches committed."""
    done: dict[str, int] = {}
    with ctx.session() as session:
        for event in session.scalars(select(AuditEvent).where(AuditEvent.kind == "reverify")):
            if event.detail.get("step") == "batch":
                done[event.detail["worker"]] = done.get(event.detail["worker"], 0) + event.detail["checked"]
    return done


def alive_workers(ctx: ServiceContext) -> int:
    assert ctx.jobs is not None
    return ctx.jobs.workers_alive()


def test_two_workers_reverify_in_parallel(postgres: Any, tmp_path: Path, keys_dir: Path) -> None:
    database = Database("postgresql", postgres)
    with context(database, tmp_path, keys_dir) as ctx:
        seed(ctx, copies=120)
        assert states(ctx) == {("untrusted", (), False): 120, ("trusted", ("ai_generated",), True): 2}
        with workers(ctx, 2, tmp_path, PROVENANCE_REVERIFY_BATCH_SIZE="6"):
            eventually(lambda: alive_workers(ctx) == 2, "two workers alive")
            done = command(ctx, "reverify")
            assert done.returncode == 0, done.stderr
            assert "checked 120, changed 120; trust" in done.stdout
            jobs = command(ctx, "jobs")
        assert jobs.returncode == 0, jobs.stderr
        assert "reverify_batch" in jobs.stdout
        assert "workers alive: 2" in jobs.stdout
        assert "re-verification: 122/122 items current" in jobs.stdout
        assert states(ctx) == {("trusted", ("ai_generated",), True): 122}
        by_worker = batch_workers(ctx)
        assert sum(by_worker.values()) == 120  # each item checked once: no batch done twice with an effect
        assert len(by_worker) == 2, by_worker  # both workers did some
        assert min(by_worker.values()) > 0, by_worker


def test_a_killed_workers_job_is_retried_by_another(postgres: Any, tmp_path: Path, keys_dir: Path) -> None:
    database = Database("postgresql", postgres)
    with context(database, tmp_path, keys_dir) as ctx:
        seed(ctx, copies=160)
        env = {"PROVENANCE_REVERIFY_BATCH_SIZE": "40"}
        first = start_worker(ctx, tmp_path / "first.log", **env)
        try:
            eventually(lambda: alive_workers(ctx) == 1, "the first worker alive")
            queued = command(ctx, "reverify", "--no-wait", **env)
            assert queued.returncode == 0, queued.stderr
            assert "queued re-verification run" in queued.stdout

            def doing() -> list[int]:
                query = text(
                    "SELECT id FROM procrastinate_jobs WHERE status = 'doing' AND task_name = 'reverify_batch'"
                )
                with ctx.engine.connect() as connection:
                    return list(connection.execute(query).scalars())

            eventually(lambda: bool(doing()), "a batch running in the first worker")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            orphaned = doing()  # its jobs stay "doing" with nobody running them
            assert orphaned
        finally:
            if first.poll() is None:
                first.kill()
        with workers(ctx, 1, tmp_path, **env) as (second,):
            eventually(lambda: states(ctx) == {("trusted", ("ai_generated",), True): 162}, "every item re-verified")
            query = text("SELECT status::text, attempts FROM procrastinate_jobs WHERE id = ANY(:ids)")
            with ctx.engine.connect() as connection:
                outcome = list(connection.execute(query, {"ids": orphaned}))
            assert outcome
            assert all(status == "succeeded" and attempts >= 1 for status, attempts in outcome), outcome
            assert f":{second.pid}" in "".join(batch_workers(ctx))
        assert sum(batch_workers(ctx).values()) == 160  # the killed worker's batch had committed nothing


def test_sqlite_runs_the_same_tasks_in_process(tmp_path: Path, keys_dir: Path) -> None:
    with context(Database("sqlite"), tmp_path, keys_dir, reverify_batch_size=7) as ctx:
        seed(ctx, copies=30)
        assert ctx.jobs is not None
        assert not ctx.jobs.queued
        ctx.jobs.start(ctx)
        try:
            assert ctx.jobs.defer("reverify_all", {"run": "in-process"})
            eventually(lambda: states(ctx) == {("trusted", ("ai_generated",), True): 32}, "every item re-verified")
        finally:
            ctx.jobs.stop()
        assert batch_workers(ctx) == {next(iter(batch_workers(ctx))): 30}
        jobs = command(ctx, "jobs")
        assert "jobs run inside `provenance serve` on SQLite" in jobs.stdout
        assert "re-verification: 32/32 items current" in jobs.stdout


def test_provenance_worker_refuses_sqlite(tmp_path: Path, keys_dir: Path) -> None:
    where = ["--data-dir", str(tmp_path / "var"), "--keys-dir", str(keys_dir)]
    env = {k: v for k, v in os.environ.items() if k not in ("PROVENANCE_DATABASE_URL", "DATABASE_URL")}
    proc = subprocess.run([*CLI, "worker", *where], capture_output=True, text=True, timeout=60, env=env, check=False)
    assert proc.returncode == 2
    assert "jobs run inside `provenance serve` on SQLite" in proc.stderr


@pytest.mark.parametrize("force", [False, True], ids=["stale only", "force"])
def test_reverify_in_this_process_when_no_worker_is_alive(
    database: Database, tmp_path: Path, keys_dir: Path, force: bool
) -> None:
    with context(database, tmp_path, keys_dir) as ctx:
        seed(ctx, copies=5)
        done = command(ctx, "reverify", *(["--force"] if force else []))
        assert done.returncode == 0, done.stderr
        assert f"checked {7 if force else 5}, changed 5; trust" in done.stdout
        assert states(ctx) == {("trusted", ("ai_generated",), True): 7}


def test_gc_removes_the_records_of_jobs_that_succeeded_long_ago(postgres: Any, tmp_path: Path, keys_dir: Path) -> None:
    database = Database("postgresql", postgres)
    with context(database, tmp_path, keys_dir, jobs_in_process=True) as ctx:
        assert ctx.jobs is not None
        ctx.jobs.start(ctx)  # its periodic deferrer may queue an hourly gc of its own too: counted below
        try:
            assert ctx.jobs.defer("collect_garbage")
            eventually(lambda: done(gc_jobs(ctx)), "the first gc succeeded")
            old = set(gc_jobs(ctx))
            with ctx.session() as session:  # as if they had succeeded eight days ago
                session.execute(text("UPDATE procrastinate_events SET at = at - interval '8 days'"))
                session.commit()
            assert ctx.jobs.defer("collect_garbage")
            eventually(lambda: done(gc_jobs(ctx)) and not old & set(gc_jobs(ctx)), "the old records removed", 30)
            with ctx.session() as session:
                fresh = session.execute(text("SELECT min(at) FROM procrastinate_events")).scalar_one()
            assert fresh is not None
            assert fresh.timestamp() > time.time() - 3600  # the new record is kept
        finally:
            ctx.jobs.stop()


def gc_jobs(ctx: ServiceContext) -> dict[int, str]:
    """The gc jobs' records: id -> status."""
    query = text("SELECT id, status FROM procrastinate_jobs WHERE task_name = 'collect_garbage'")
    with ctx.session() as session:
        return {int(ident): str(status) for ident, status in session.execute(query)}


def done(jobs: dict[int, str]) -> bool:
    """At least one gc succeeded and none is waiting or running."""
    return "succeeded" in jobs.values() and not {"todo", "doing"} & set(jobs.values())
