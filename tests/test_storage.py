"""Storage under stress: durable fan-out directories, collection of what interrupted uploads leave, and a
full or read-only disk under the blob store or the database.

Full and read-only disks are real small file systems (tmpfs, mounted for the test, remounted read-only
and back, always unmounted at the end): that needs root, or ``sudo -n``; without either these tests fail
and say so, they are never skipped. The only spy is on ``os.fsync`` (it calls through): which
directories were fsynced, and when, is visible nowhere else.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import pwd
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from service.cli import app
from service.store.blobs import BlobStore
from service.store.db import ArticleVersion, Asset
from service.store.errors import (
    StorageError,
    StorageFullError,
    StorageUnavailableError,
    from_database_error,
    from_os_error,
)
from service.store.gc import REFERENCES, Collection, collect

from . import images
from .databases import Database, PostgresCluster
from .service_support import Service, assert_problem, running, sample, service_settings, wait_logged

# --------------------------------------------------------------------------------------------------
# Helpers: real small file systems, stored state
# --------------------------------------------------------------------------------------------------


def _privileged(*command: str) -> None:
    """Run a mount command as root (directly, or through ``sudo -n``); fail the test if neither works."""
    argv = list(command) if os.geteuid() == 0 else ["sudo", "-n", *command]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(
            f"`{' '.join(argv)}` failed ({done.stderr.strip() or done.returncode}): these tests need a real small "
            "file system, so root or passwordless sudo for mount/umount"
        )


class Mounts:
    """tmpfs file systems mounted for one test; :meth:`unmount_all` runs at its end, whatever happened."""

    def __init__(self) -> None:
        self.points: list[Path] = []
        self.made: list[Path] = []  # mount points this made, removed after the unmount

    def tmpfs(self, where: Path, size: str, **options: str | int) -> Path:
        if not where.exists():
            where.mkdir(parents=True)
            self.made.append(where)
        flags = ",".join([f"size={size}", *(f"{key}={value}" for key, value in options.items())])
        _privileged("mount", "-t", "tmpfs", "-o", flags, "tmpfs", str(where))
        self.points.append(where)
        return where

    def read_only(self, where: Path) -> None:
        _privileged("mount", "-o", "remount,ro", str(where))

    def read_write(self, where: Path) -> None:
        _privileged("mount", "-o", "remount,rw", str(where))

    def unmount_all(self) -> None:
        for where in reversed(self.points):
            argv = ["umount", str(where)] if os.geteuid() == 0 else ["sudo", "-n", "umount", str(where)]
            if subprocess.run(argv, capture_output=True, check=False).returncode != 0:
                subprocess.run([*argv[:-1], "-l", str(where)], capture_output=True, check=False)  # busy: detach
        self.points.clear()
        for where in reversed(self.made):
            with contextlib.suppress(OSError):
                where.rmdir()
        self.made.clear()


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    made = Mounts()
    try:
        yield made
    finally:
        made.unmount_all()


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte with one file; return it (unlink it to free)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1):
            chunk = bytes(size)
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


def name(digest: str) -> str:
    return f"{digest[:2]}/{digest[2:]}"


def referenced(svc: Service) -> set[str]:
    """The blob files rows point at."""
    with svc.ctx.session() as session:
        return {name(digest) for column in REFERENCES for digest in session.scalars(select(column))}


def temp_files(svc: Service) -> set[str]:
    return {f for f in svc.blob_files() if Path(f).name.startswith(".incoming-")}


def assert_every_row_has_its_blobs(svc: Service) -> None:
    missing = referenced(svc) - svc.blob_files()
    assert not missing, f"rows point at removed blobs: {missing}"


def gc_cli(svc: Service, database: Database, *args: str) -> tuple[int, str, str]:
    """``provenance gc`` on the service's data, keys and database (in this process)."""
    settings = svc.ctx.settings
    where = ["--data-dir", str(settings.data_dir), "--keys-dir", str(settings.keys_dir)]
    result = CliRunner().invoke(app, ["gc", *where, *args], env=database.env(settings.data_dir))
    return result.exit_code, result.stdout, result.stderr


def wait_ready(svc: Service, status: int) -> httpx.Response:
    """``/readyz`` once it answers ``status`` (its answer is reused for a second)."""
    deadline = time.monotonic() + 5
    while True:
        answer = svc.client.get("/readyz")
        if answer.status_code == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def article(external_id: str, headline: str = "Budget passes", pad: int = 0) -> bytes:
    """A CMS payload (the council sample under another external id); ``pad`` trailing spaces change its bytes
    and nothing else."""
    payload = json.loads(sample("council-human.json"))
    payload.update(external_id=external_id, headline=headline)
    return json.dumps(payload).encode() + b" " * pad


@dataclass
class Recorded:
    path: str
    rows: int  # asset + article rows when this fsync happened (counted only for the blob root)
    fan_out: frozenset[str]  # the fan-out directories present then (likewise)


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> Callable[[Service], list[Recorded]]:
    """A spy on ``os.fsync`` that calls through and records what was fsynced (and, for the blob root, the
    rows and directories that existed at that moment)."""
    calls: list[Recorded] = []
    real = os.fsync
    watched: list[Service] = []

    def spy(fd: Any) -> None:
        number = fd if isinstance(fd, int) else fd.fileno()
        path = os.readlink(f"/proc/self/fd/{number}")
        rows, dirs = -1, frozenset[str]()
        if watched and Path(path) == watched[0].ctx.blobs.root.resolve():
            svc = watched[0]
            rows = svc.rows(Asset) + svc.rows(ArticleVersion)
            dirs = frozenset(p.name for p in svc.ctx.blobs.root.iterdir() if p.is_dir())
        calls.append(Recorded(path, rows, dirs))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)

    def watch(svc: Service) -> list[Recorded]:
        watched.append(svc)
        return calls

    return watch


def fan_out_dirs(svc: Service) -> set[str]:
    return {p.name for p in svc.ctx.blobs.root.iterdir() if p.is_dir()}


# --------------------------------------------------------------------------------------------------
# 1. A fan-out directory is durable in the root before a row points into it
# --------------------------------------------------------------------------------------------------


def test_a_new_fan_out_directory_is_fsynced_into_the_root_before_the_row_commits(
    database: Database, tmp_path: Path, keys_dir: Path, fsyncs: Callable[[Service], list[Recorded]]
) -> None:
    with running(service_settings(tmp_path / "var", keys_dir, database)) as svc:
        root = str(svc.ctx.blobs.root.resolve())
        calls = fsyncs(svc)
        for upload in range(2):  # an image, then an article one of whose blobs goes into an existing directory
            before_dirs, before_rows = fan_out_dirs(svc), svc.rows(Asset) + svc.rows(ArticleVersion)
            calls.clear()
            if upload == 0:
                assert svc.upload(images.jpeg(seed=7)).status_code == 201
            else:  # its payload blob (the request's bytes) lands in a directory that exists
                payload = next(
                    body
                    for body in (article("fsync", pad=n) for n in range(10_000))
                    if hashlib.sha256(body).hexdigest()[:2] in before_dirs
                )
                assert svc.post_article(payload).status_code == 201
            new_dirs = fan_out_dirs(svc) - before_dirs
            at_root = [n for n, call in enumerate(calls) if call.path == root]
            # One root fsync per directory made, none for a directory that was there already; all of them
            # before the upload's row exists.
            assert len(at_root) == len(new_dirs), (new_dirs, calls)
            assert [calls[n].rows for n in at_root] == [before_rows] * len(at_root)
            for directory in new_dirs:
                first_blob_fsync = next(n for n, c in enumerate(calls) if c.path == f"{root}/{directory}")
                synced = [n for n in at_root if directory in calls[n].fan_out]
                assert synced, f"{directory} was never fsynced into the root"
                assert synced[0] < first_blob_fsync  # before the blob's rename is made durable
            assert svc.rows(Asset) + svc.rows(ArticleVersion) == before_rows + 1


def test_readiness_probes_cost_at_most_one_fsync_a_second(
    database: Database, tmp_path: Path, keys_dir: Path, fsyncs: Callable[[Service], list[Recorded]]
) -> None:
    with running(service_settings(tmp_path / "var", keys_dir, database)) as svc:
        calls = fsyncs(svc)
        start = time.monotonic()
        for _ in range(40):
            assert svc.client.get("/readyz").status_code == 200
        elapsed = time.monotonic() - start
        probes = [c for c in calls if Path(c.path).name.startswith(".probe-")]
        assert 1 <= len(probes) <= 1 + int(elapsed)
        assert not [p for p in svc.ctx.blobs.root.iterdir() if p.name.startswith(".probe-")]  # each removed


# --------------------------------------------------------------------------------------------------
# 2. Collection: what interrupted and refused uploads leave goes, nothing a row references does
# --------------------------------------------------------------------------------------------------


def plant_interrupted_uploads(svc: Service, seed: int) -> set[str]:
    """What a process killed mid-upload leaves (written by the real writer, then abandoned): a temporary
    file (killed while stamping) and a blob no row points at (killed before its commit)."""
    root = svc.ctx.blobs.root
    with svc.ctx.blobs.writing() as blobs:
        staged = blobs.stage(f"killed while stamping {seed}".encode())
        orphan = blobs.put(f"killed before the commit {seed}".encode())
    assert staged.temp is not None
    return {str(staged.temp.relative_to(root)), name(orphan)}


def test_gc_removes_what_interrupted_and_refused_uploads_leave_and_nothing_else(
    database: Database, tmp_path: Path, keys_dir: Path
) -> None:
    settings = service_settings(tmp_path / "var", keys_dir, database, rate_limit_per_minute=1_000_000)
    with running(settings, raise_server_exceptions=False) as svc:
        assert svc.upload(images.jpeg(seed=11)).status_code == 201
        assert svc.post_article(article("gc/kept")).status_code == 201
        leftovers = plant_interrupted_uploads(svc, 1)
        # A refused upload that lost a race: two bodies under one Idempotency-Key, one wins; the loser's
        # original is content-addressed (another request could share it), so it is left to the collector.
        racing = [images.jpeg(seed=12), images.jpeg(seed=13)]
        barrier = threading.Barrier(len(racing))

        def race(data: bytes) -> int:
            barrier.wait()
            return svc.upload(data, headers={"Idempotency-Key": "gc-race"}).status_code

        with ThreadPoolExecutor(len(racing)) as pool:
            assert sorted(pool.map(race, racing)) == [201, 422]
        root = svc.ctx.blobs.root
        stale = root / ".probe-stale"  # a readiness probe killed before it removed its file
        stale.write_bytes(b"x")
        os.utime(stale, (time.time() - 3600,) * 2)
        fresh = root / ".probe-fresh"  # a probe still running, perhaps
        fresh.write_bytes(b"x")
        foreign = {"notes.txt", "ab/README"}  # not the store's: never touched
        for path in foreign:
            (root / path).parent.mkdir(exist_ok=True)
            (root / path).write_text("keep me")
        orphans = svc.blob_files() - referenced(svc) - foreign - {fresh.name}
        originals = {name(hashlib.sha256(data).hexdigest()) for data in racing}
        assert leftovers | {stale.name} <= orphans <= leftovers | {stale.name} | originals
        sizes = sum((root / f).stat().st_size for f in orphans)
        temps = {f for f in orphans if Path(f).name.startswith((".incoming-", ".probe-"))}
        what = (
            f"{len(orphans)} files, {sizes} bytes ({len(orphans) - len(temps)} unreferenced blobs, 2 temporary files)"
        )
        rows_before = svc.stored()[:2]

        with svc.ctx.blobs.writing():  # an upload in flight: gc waits a bounded time, then gives way
            code, out, err = gc_cli(svc, database, "--wait", "0.2")
        assert code == 1
        assert out.strip() == "removed 0 files, 0 bytes (0 unreferenced blobs, 0 temporary files)"
        assert err.startswith("error: the blob store stayed busy for 0.2 s")
        assert orphans <= svc.blob_files()

        code, out, err = gc_cli(svc, database, "--dry-run")
        assert (code, err) == (0, "")
        lines = out.splitlines()
        assert {line.removeprefix("would remove ") for line in lines[:-1]} == orphans
        assert lines[-1] == f"would remove {what}"
        assert orphans <= svc.blob_files()  # a dry run removes nothing

        code, out, err = gc_cli(svc, database)
        assert (code, err) == (0, "")
        assert out.splitlines() == [f"removed {what}"]
        assert svc.blob_files() == referenced(svc) | foreign | {fresh.name}
        assert svc.stored()[:2] == rows_before
        code, out, _ = gc_cli(svc, database)  # nothing left to do
        assert (code, out.strip()) == (0, "removed 0 files, 0 bytes (0 unreferenced blobs, 0 temporary files)")
        for answer in (svc.upload(images.jpeg(seed=11)), svc.post_article(article("gc/kept"))):
            assert answer.status_code == 200  # what was stored is intact
        # Its queries are index lookups: every column that points at a blob is indexed by the migrations.
        schema = sa.inspect(svc.ctx.engine)
        tables = {column.class_.__tablename__ for column in REFERENCES}
        indexed = {(t, ix["column_names"][0]) for t in tables for ix in schema.get_indexes(t)}
        assert {(column.class_.__tablename__, column.key) for column in REFERENCES} <= indexed


def test_gc_concurrent_with_uploads_never_removes_a_blob_a_row_references(
    database: Database, tmp_path: Path, keys_dir: Path
) -> None:
    settings = service_settings(tmp_path / "var", keys_dir, database, rate_limit_per_minute=1_000_000)
    with running(settings, raise_server_exceptions=False) as svc:
        planted = plant_interrupted_uploads(svc, 2)
        stop = threading.Event()
        runs: list[tuple[float, float, Collection]] = []
        failures: list[BaseException] = []

        def collector() -> None:
            while not stop.is_set():
                try:
                    started = time.monotonic()
                    report = collect(svc.ctx.blobs, svc.ctx.sessions, wait=0.5, batch=2)  # many short holds
                    runs.append((started, time.monotonic(), report))
                except BaseException as exc:  # reported by the test, not lost in a thread
                    failures.append(exc)
                    return

        def images_of(n: int) -> list[httpx.Response]:
            return [svc.upload(images.jpeg(seed=40 + 8 * n + k)) for k in range(6)]

        def articles() -> list[httpx.Response]:
            return [svc.post_article(article(f"gc/concurrent/{k}")) for k in range(6)]

        thread = threading.Thread(target=collector)
        thread.start()
        try:
            first = time.monotonic()
            with ThreadPoolExecutor(3) as pool:
                batches = [pool.submit(images_of, 0), pool.submit(images_of, 1), pool.submit(articles)]
                answers = [a for batch in batches for a in batch.result()]
            last = time.monotonic()
        finally:
            stop.set()
            thread.join()
        assert not failures
        assert [a.status_code for a in answers] == [201] * len(answers), [a.text for a in answers]
        assert_every_row_has_its_blobs(svc)
        for answer in answers:
            links = answer.json()["links"]
            for link in ("content", "manifest") if "content" in links else ("text", "manifest"):
                assert svc.client.get(links[link]).status_code == 200
        assert not temp_files(svc)
        assert not planted & svc.blob_files()  # the collector did run, and removed the leftovers
        during = [report for started, ended, report in runs if started > first and ended < last and report.complete]
        assert during, "no collection ran to completion while the uploads were in flight"
        assert svc.blob_files() == referenced(svc)


def test_startup_collects_leftovers_unless_busy_or_switched_off(
    database: Database, tmp_path: Path, keys_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="provenance.service")
    data = tmp_path / "var"
    with running(service_settings(data, keys_dir, database)) as svc:
        assert svc.upload(images.jpeg(seed=21)).status_code == 201
        leftovers = plant_interrupted_uploads(svc, 3)
        kept = referenced(svc)
    with running(service_settings(data, keys_dir, database, gc_at_startup=False)) as svc:
        assert leftovers <= svc.blob_files()  # switched off: left for `provenance gc`
        with svc.ctx.blobs.writing():  # an upload of another process in flight the whole start-up
            caplog.clear()
            with running(service_settings(data, keys_dir, database)) as busy:
                assert busy.client.get("/readyz").status_code == 200  # skipping is not failing
                assert leftovers <= busy.blob_files()
            assert "start-up gc stopped: the blob store stayed busy" in caplog.text
    caplog.clear()
    with running(service_settings(data, keys_dir, database)) as svc:
        assert svc.blob_files() == kept
        assert "start-up gc: removed 2 files" in caplog.text


# --------------------------------------------------------------------------------------------------
# 3. A full or read-only blob store: 507 / 503, nothing stored, the service keeps answering
# --------------------------------------------------------------------------------------------------


@contextmanager
def on_small_blob_store(
    database: Database, tmp_path: Path, keys_dir: Path, mounts: Mounts, size: str = "4m"
) -> Iterator[Service]:
    data = tmp_path / "var"
    mounts.tmpfs(data / "blobs", size)
    with running(service_settings(data, keys_dir, database), raise_server_exceptions=False) as svc:
        assert svc.upload(images.jpeg(seed=31)).status_code == 201  # it works, to begin with
        yield svc


def assert_refused_storing_nothing(
    svc: Service, answer: httpx.Response, status: int, kind: str, before: tuple[int, int, frozenset[str]]
) -> dict[str, Any]:
    body = assert_problem(answer, status, kind)
    assert "nothing was stored" in body["detail"]
    rows, articles, files = svc.stored()
    assert (rows, articles) == before[:2]
    assert not temp_files(svc) - before[2]  # the refused write left no temporary file
    assert not (files - before[2]) & referenced(svc)  # anything new is an orphan, for gc
    assert svc.client.get("/healthz").status_code == 200
    return body


def test_a_full_blob_store_answers_507_and_stores_nothing(
    database: Database, tmp_path: Path, keys_dir: Path, mounts: Mounts
) -> None:
    with on_small_blob_store(database, tmp_path, keys_dir, mounts) as svc:
        filler = fill(svc.ctx.blobs.root)
        before, stamps = svc.stored(), len(svc.events("stamp"))
        data, payload = images.jpeg(seed=32), article("full/1")
        for answer in (svc.upload(data), svc.post_article(payload)):
            body = assert_refused_storing_nothing(svc, answer, 507, "insufficient-storage", before)
            assert "blob store is full" in body["detail"]
        assert len(svc.events("stamp")) == stamps
        ready = assert_problem(wait_ready(svc, 503), 503, "not-ready")
        assert "full" in ready["detail"]

        filler.unlink()
        assert wait_ready(svc, 200).status_code == 200
        assert svc.upload(data).status_code == 201  # the same upload, now that there is room
        assert svc.post_article(payload).status_code == 201
        assert gc_cli(svc, database)[0] == 0
        assert svc.blob_files() == referenced(svc)
        assert_every_row_has_its_blobs(svc)


def test_a_read_only_blob_store_answers_503_and_stores_nothing(
    database: Database, tmp_path: Path, keys_dir: Path, mounts: Mounts
) -> None:
    with on_small_blob_store(database, tmp_path, keys_dir, mounts) as svc:
        root = svc.ctx.blobs.root
        leftovers = plant_interrupted_uploads(svc, 4)
        mounts.read_only(root)
        before, stamps = svc.stored(), len(svc.events("stamp"))
        data, payload = images.jpeg(seed=33), article("read-only/1")
        for answer in (svc.upload(data), svc.post_article(payload)):
            body = assert_refused_storing_nothing(svc, answer, 503, "storage-unavailable", before)
            assert "not writable" in body["detail"]
            assert answer.headers["retry-after"] == "30"
        assert svc.stored() == before  # a read-only store cannot even hold an orphan
        assert len(svc.events("stamp")) == stamps
        ready = assert_problem(wait_ready(svc, 503), 503, "not-ready")
        assert "not writable" in ready["detail"]
        code, _, err = gc_cli(svc, database)  # nor can gc remove anything: it says so
        assert code == 1
        assert err.startswith("error: the blob store is not writable (blob store: [Errno 30]")

        mounts.read_write(root)
        assert wait_ready(svc, 200).status_code == 200
        assert svc.upload(data).status_code == 201
        assert svc.post_article(payload).status_code == 201
        assert leftovers <= svc.blob_files()
        assert gc_cli(svc, database)[0] == 0
        assert svc.blob_files() == referenced(svc)


# --------------------------------------------------------------------------------------------------
# 4. A full or read-only database: the same answers
# --------------------------------------------------------------------------------------------------


def assert_refusals_answered_unaudited(svc: Service) -> None:
    """While the database takes no write, refused callers are still answered 401/403 (their audit rows
    cannot be written: they are counted and logged instead)."""
    audited = len(svc.events("auth_failure"))
    upload = {"files": {"file": ("x.jpg", b"x")}, "data": {"declaration": "{}"}}
    assert_problem(svc.client.post("/v1/assets", **upload), 401, "unauthorized")
    assert_problem(
        svc.client.post("/v1/assets", headers={"Authorization": "Bearer pv_wrong"}, **upload), 401, "unauthorized"
    )
    assert_problem(
        svc.client.get(f"/v1/assets/img_{'0' * 24}/report", headers=svc.bearer("newsroom")), 403, "forbidden"
    )
    assert len(svc.events("auth_failure")) == audited
    assert "provenance_audit_write_failures_total 3.0" in svc.client.get("/metrics").text


def test_a_full_sqlite_disk_answers_507_and_stores_nothing(tmp_path: Path, keys_dir: Path, mounts: Mounts) -> None:
    embedded = Database("sqlite")
    data = mounts.tmpfs(tmp_path / "var", "8m")  # the database file's file system
    mounts.tmpfs(data / "blobs", "8m")  # the blobs elsewhere, with room
    with running(service_settings(data, keys_dir, embedded), raise_server_exceptions=False) as svc:
        assert svc.upload(images.jpeg(seed=34)).status_code == 201
        with svc.ctx.engine.connect() as connection:  # an empty write-ahead log: the next commit must grow it
            busy, _, _ = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        assert busy == 0
        filler = fill(data)
        before, stamps = svc.stored(), len(svc.events("stamp"))
        upload = images.jpeg(seed=35)
        body = assert_refused_storing_nothing(svc, svc.upload(upload), 507, "insufficient-storage", before)
        assert "database is full" in body["detail"]
        assert len(svc.events("stamp")) == stamps
        assert_refusals_answered_unaudited(svc)
        # The refused upload's own stamped file is gone at once; its original (content-addressed) is gc's.
        assert svc.blob_files() - before[2] <= {name(hashlib.sha256(upload).hexdigest())}

        filler.unlink()
        assert svc.upload(upload).status_code == 201
        assert svc.blob_files() == referenced(svc)


def test_a_full_postgresql_disk_answers_507_and_stores_nothing(
    postgres: PostgresCluster, tmp_path: Path, keys_dir: Path, mounts: Mounts
) -> None:
    database = Database("postgresql", postgres)
    owner = pwd.getpwnam(postgres.user) if postgres.user else pwd.getpwuid(os.geteuid())
    # Outside tmp_path, whose parents the postgres user cannot enter.
    space = mounts.tmpfs(Path(tempfile.gettempdir()) / f"provenance-tablespace-{os.getpid()}-{tmp_path.name}", "2m")
    os.chown(space, owner.pw_uid, owner.pw_gid)
    data = tmp_path / "var"
    settings = service_settings(data, keys_dir, database)
    assert settings.database_url is not None
    dbname = settings.database_url.rsplit("/", 1)[1]
    dsn = f"host=127.0.0.1 port={postgres.port} user=postgres"
    tablespace = f"ts_{dbname}"
    with running(settings, raise_server_exceptions=False) as svc:
        with psycopg.connect(f"{dsn} dbname={dbname}", autocommit=True) as admin:
            admin.execute(f"CREATE TABLESPACE {tablespace} LOCATION '{space}'")
            try:
                for table in ("assets", "article_versions"):  # empty: the first row must extend a file there
                    admin.execute(f"ALTER TABLE {table} SET TABLESPACE {tablespace}")
                filler = fill(space)
                before, stamps = svc.stored(), len(svc.events("stamp"))
                upload = images.jpeg(seed=36)
                for answer in (svc.upload(upload), svc.post_article(article("pg-full/1"))):
                    body = assert_refused_storing_nothing(svc, answer, 507, "insufficient-storage", before)
                    assert "database is full" in body["detail"]
                assert len(svc.events("stamp")) == stamps

                filler.unlink()
                assert svc.upload(upload).status_code == 201
                assert svc.post_article(article("pg-full/1")).status_code == 201
            finally:
                for table in ("assets", "article_versions"):
                    admin.execute(f"ALTER TABLE {table} SET TABLESPACE pg_default")
                admin.execute(f"DROP TABLESPACE {tablespace}")
        assert gc_cli(svc, database)[0] == 0
        assert svc.blob_files() == referenced(svc)


def test_a_read_only_postgresql_database_answers_503_and_stores_nothing(
    postgres: PostgresCluster, tmp_path: Path, keys_dir: Path
) -> None:
    database = Database("postgresql", postgres)
    # The log's sequencer idle (it runs at start and after this process's commits): the pool is disposed
    # below, and a connection a background thread has checked out then would outlive its pool, never closed.
    settings = service_settings(tmp_path / "var", keys_dir, database, log_sequence_seconds=60)
    assert settings.database_url is not None
    dbname = settings.database_url.rsplit("/", 1)[1]
    dsn = f"host=127.0.0.1 port={postgres.port} user=postgres dbname=postgres"
    with running(settings, raise_server_exceptions=False) as svc:
        wait_logged(svc.client.get, 0)  # its first round is done
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on')
            svc.ctx.engine.dispose()  # new connections, read-only
            try:
                before = svc.stored()
                upload = images.jpeg(seed=37)
                answer = svc.upload(upload)
                body = assert_refused_storing_nothing(svc, answer, 503, "storage-unavailable", before)
                assert "database is not writable" in body["detail"]
                assert answer.headers["retry-after"] == "30"
                assert_refusals_answered_unaudited(svc)
            finally:
                admin.execute(f'ALTER DATABASE "{dbname}" RESET default_transaction_read_only')
                svc.ctx.engine.dispose()
        assert svc.upload(upload).status_code == 201


def test_an_unreachable_database_is_503_database_unavailable_and_the_service_recovers(
    postgres: PostgresCluster, tmp_path: Path, keys_dir: Path
) -> None:
    database = Database("postgresql", postgres)
    settings = service_settings(tmp_path / "var", keys_dir, database)
    assert settings.database_url is not None
    dbname = settings.database_url.rsplit("/", 1)[1]
    dsn = f"host=127.0.0.1 port={postgres.port} user=postgres dbname=postgres"
    with running(settings, raise_server_exceptions=False) as svc:
        asset = svc.upload(images.jpeg(seed=38)).json()
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{dbname}" WITH ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (dbname,))
            try:
                for answer in (
                    svc.client.get(f"/v1/assets/{asset['id']}"),
                    svc.upload(images.jpeg(seed=39)),
                ):
                    body = assert_problem(answer, 503, "database-unavailable")
                    assert answer.headers["retry-after"] == "30"
                    assert dbname not in body["detail"]
                assert_problem(svc.client.get("/readyz"), 503, "not-ready")
            finally:
                admin.execute(f'ALTER DATABASE "{dbname}" WITH ALLOW_CONNECTIONS true')
        assert svc.client.get(f"/v1/assets/{asset['id']}").status_code == 200
        assert svc.client.get("/readyz").status_code == 200


# --------------------------------------------------------------------------------------------------
# 5. The mapping is narrow: only these errnos and codes are storage refusals
# --------------------------------------------------------------------------------------------------

OS_ERRORS: dict[str, tuple[int, type[StorageError] | None]] = {
    "no space left": (errno.ENOSPC, StorageFullError),
    "quota exceeded": (errno.EDQUOT, StorageFullError),
    "read-only file system": (errno.EROFS, StorageUnavailableError),
    "permission denied": (errno.EACCES, StorageUnavailableError),
    "operation not permitted": (errno.EPERM, StorageUnavailableError),
    "I/O error (a failing disk: a 500, not a storage answer)": (errno.EIO, None),
    "no such file": (errno.ENOENT, None),
}


@pytest.mark.parametrize(("code", "expected"), OS_ERRORS.values(), ids=list(OS_ERRORS))
def test_os_errors_that_are_storage_refusals(code: int, expected: type[StorageError] | None) -> None:
    found = from_os_error(OSError(code, os.strerror(code), "/srv/blobs/ab/.incoming-x"))
    assert type(found) is (expected or type(None))
    if found is not None:
        assert "/srv" not in found.detail  # paths are for the operator's log
        assert "/srv/blobs" in found.cause


@contextmanager
def sqlite(url: str) -> Iterator[sa.Connection]:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def _sqlite_full(tmp: Path) -> None:
    with sqlite(f"sqlite:///{tmp / 'full.sqlite3'}") as connection:
        connection.exec_driver_sql("CREATE TABLE t (b BLOB)")
        connection.exec_driver_sql("PRAGMA max_page_count = 8")  # SQLite's own "database or disk is full"
        connection.exec_driver_sql("INSERT INTO t VALUES (randomblob(200000))")


def _sqlite_read_only(tmp: Path) -> None:
    path = tmp / "ro.sqlite3"
    with sqlite(f"sqlite:///{path}") as connection:
        connection.exec_driver_sql("CREATE TABLE t (i INTEGER)")
    with sqlite(f"sqlite:///file:{path}?mode=ro&uri=true") as connection:
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")


def _sqlite_cannot_open(tmp: Path) -> None:
    with sqlite(f"sqlite:///{tmp / 'missing' / 'x.sqlite3'}"):
        pass


def _sqlite_other(tmp: Path) -> None:
    with sqlite(f"sqlite:///{tmp / 'other.sqlite3'}") as connection:
        connection.exec_driver_sql("SELECT * FROM no_such_table")


SQLITE_ERRORS: dict[str, tuple[Callable[[Path], None], type[StorageError] | None]] = {
    "database or disk is full": (_sqlite_full, StorageFullError),
    "attempt to write a readonly database": (_sqlite_read_only, StorageUnavailableError),
    "unable to open database file": (_sqlite_cannot_open, StorageUnavailableError),
    "any other error": (_sqlite_other, None),
}


@pytest.mark.parametrize(("fail", "expected"), SQLITE_ERRORS.values(), ids=list(SQLITE_ERRORS))
def test_sqlite_errors_that_are_storage_refusals(
    tmp_path: Path, fail: Callable[[Path], None], expected: type[StorageError] | None
) -> None:
    with pytest.raises(DBAPIError) as raised:
        fail(tmp_path)
    assert type(from_database_error(raised.value)) is (expected or type(None))


POSTGRES_ERRORS: dict[str, tuple[str, type[StorageError] | None]] = {
    "read_only_sql_transaction (25006)": ("CREATE TABLE t (i integer)", StorageUnavailableError),
    "division_by_zero (22012)": ("SELECT 1 / 0", None),
}


@pytest.mark.parametrize(("statement", "expected"), POSTGRES_ERRORS.values(), ids=list(POSTGRES_ERRORS))
def test_postgresql_errors_that_are_storage_refusals(
    postgres: PostgresCluster, statement: str, expected: type[StorageError] | None
) -> None:
    engine = sa.create_engine(postgres.url("postgres"))

    def fail() -> None:
        with engine.connect() as connection:
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            connection.exec_driver_sql(statement)

    try:
        with pytest.raises(DBAPIError) as raised:
            fail()
    finally:
        engine.dispose()
    assert type(from_database_error(raised.value)) is (expected or type(None))


def test_the_lock_file_lives_beside_the_store(tmp_path: Path) -> None:
    """The store's tree holds only blobs (the lock is ``blobs.lock`` next to ``blobs/``)."""
    store = BlobStore(tmp_path / "blobs")
    with store.writing() as blobs:
        blobs.put(b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blobs", "blobs.lock"]
    assert [p.name for p in store.root.iterdir()] == [name(hashlib.sha256(b"x").hexdigest())[:2]]
