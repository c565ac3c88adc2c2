"""The ``provenance`` command: the library's commands plus the service's (serve, tokens, reverify).

The library's CLI (:mod:`provenance.cli`) knows nothing of the web or the database; this module adds
the commands that need them, on the same Typer app.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from provenance import isolation
from provenance.cli import EXIT_FAILED, app, err, out, run_command
from provenance.errors import InputError
from service.audit.reverify import progress, reverify, stale_count
from service.context import ServiceContext, build_context
from service.ingest.pipeline import ingest_article, ingest_asset
from service.ingest.schemas import Declaration
from service.jobs.engine import Jobs, QueuedJobs
from service.jobs.status import STATUSES, job_counts, recent_failures, run_progress, workers
from service.security.tokens import ROLES, create_token, revoke_tokens
from service.settings import Settings, load_settings
from service.store.errors import StorageError
from service.store.gc import Collection, collect

tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")

#: Seconds between two looks at a re-verification run's progress.
RUN_POLL = 0.5
#: Further runs `provenance reverify` queues while items stay stale after a run (see _reverify_in_workers).
SWEEPS = 3

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Database and blobs [env PROVENANCE_DATA_DIR; default ./var].")
]
KeysDirOpt = Annotated[
    Path | None, typer.Option("--keys-dir", help="Signing key and dev CA [env PROVENANCE_KEYS_DIR; default ./keys].")
]
Anchors = Annotated[
    list[Path] | None,
    typer.Option(
        "--trust-anchors", help="Extra trusted roots, repeatable [env PROVENANCE_TRUST_ANCHORS, colon-separated]."
    ),
]
Config = Annotated[Path | None, typer.Option("--config", help="TOML settings file.")]


def _settings(
    data_dir: Path | None, keys_dir: Path | None, anchors: list[Path] | None, config: Path | None
) -> Settings:
    try:
        return load_settings(config, data_dir=data_dir, keys_dir=keys_dir, trust_anchors=anchors or None)
    except ValidationError as exc:  # one line naming the setting and what is wrong with it
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "settings"
        raise InputError(f"invalid setting {where}: {first.get('msg', 'invalid value')}") from exc
    except Exception as exc:  # e.g. an unreadable TOML file
        raise InputError(f"invalid settings: {str(exc).splitlines()[0]}") from exc


@tokens_app.command("create")
def tokens_create(
    role: Annotated[str, typer.Option("--role", help=f"One of {', '.join(ROLES)}.")],
    name: Annotated[str, typer.Option("--name", help="Who or what holds the token.")],
    data_dir: DataDir = None,
    keys_dir: KeysDirOpt = None,
    config: Config = None,
) -> None:
    """Create an API token; prints only the token (shown once, stored as a hash)."""

    def run() -> None:
        if role not in ROLES:
            raise InputError(f"role must be one of {', '.join(ROLES)}")
        with closing(build_context(_settings(data_dir, keys_dir, None, config))) as ctx, ctx.session() as session:
            secret = create_token(session, name, role)
            session.commit()
        sys.stdout.write(secret + "\n")

    run_command(run)


@tokens_app.command("revoke")
def tokens_revoke(
    name: Annotated[str, typer.Option("--name", help="Revoke every live token with this name.")],
    data_dir: DataDir = None,
    keys_dir: KeysDirOpt = None,
    config: Config = None,
) -> None:
    """Revoke tokens by name (they stop working at once; the audit log keeps them)."""

    def run() -> None:
        with closing(build_context(_settings(data_dir, keys_dir, None, config))) as ctx, ctx.session() as session:
            count = revoke_tokens(session, name)
            session.commit()
        if not count:
            raise InputError(f"no live token named {name!r}")
        out.print(f"revoked {count} token(s) named {escape(name)}")

    run_command(run)


@app.command("reverify")
def reverify_command(
    data_dir: DataDir = None,
    keys_dir: KeysDirOpt = None,
    trust_anchors: Anchors = None,
    config: Config = None,
    force: Annotated[
        bool, typer.Option("--force", help="Re-inspect everything, not only items made under other trust.")
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="PostgreSQL with workers: follow the run to its end.")
    ] = True,
) -> None:
    """Recompute stored decisions under the current trust configuration.

    PostgreSQL with live workers: queued for them (``--wait``: a progress bar until done); otherwise in
    this process, batch after batch.
    """

    def run() -> str | None:
        with closing(build_context(_settings(data_dir, keys_dir, trust_anchors, config))) as ctx:
            jobs = ctx.jobs
            if jobs is not None and jobs.queued and jobs.workers_alive():
                return _reverify_in_workers(ctx, jobs, force=force, wait=wait)
            if jobs is not None and jobs.queued:
                err.print("no job worker is alive: re-verifying in this process")
            with _progress_bar() as advance:
                report = reverify(ctx, force=force, on_progress=advance)
        return f"checked {report.checked}, changed {report.changed}; trust {report.fingerprint[:16]}…"

    line = run_command(run)
    if line is not None:
        out.print(line)


@contextmanager
def _progress_bar() -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on standard error, told (done, total) items."""
    columns = (TextColumn("re-verifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=not err.is_terminal) as bar:
        task = bar.add_task("reverify", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _reverify_in_workers(ctx: ServiceContext, jobs: Jobs, *, force: bool, wait: bool) -> str | None:
    """Queue a run for the workers and (``wait``) follow it; then, while items are still stale (uploads that
    serve processes committed under the old trust while the run was planned), one more run, at most
    :data:`SWEEPS` times."""
    checked = changed = 0
    for sweep in range(SWEEPS + 1):
        run_id = uuid.uuid4().hex
        jobs.defer("reverify_all", {"force": force and sweep == 0, "run": run_id})
        if not wait:
            out.print(f"queued re-verification run {run_id} for the workers; follow it with `provenance jobs`")
            return None
        with _progress_bar() as advance:
            while True:
                with ctx.session() as session:
                    run = run_progress(session, run_id)
                advance(run.items_done, run.items_planned)
                if run.finished:
                    break
                time.sleep(RUN_POLL)
        if run.failed:
            _fail_run(f"re-verification run {run_id}: {run.failed} job(s) failed; see `provenance jobs`")
        checked, changed = checked + run.checked, changed + run.changed
        with ctx.session() as session:
            if not stale_count(session, ctx.trust.fingerprint):
                break
    return f"checked {checked}, changed {changed}; trust {ctx.trust.fingerprint[:16]}…"


def _fail_run(message: str) -> NoReturn:
    err.print(f"error: {escape(message)}")
    raise typer.Exit(EXIT_FAILED)


@app.command("worker")
def worker_command(
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Jobs this worker runs at once.")] = 1,
    data_dir: DataDir = None,
    keys_dir: KeysDirOpt = None,
    trust_anchors: Anchors = None,
    config: Config = None,
) -> None:
    """Run background jobs (PostgreSQL) until SIGTERM or SIGINT; the running jobs finish first."""
    from service.ops.logging import configure as configure_logging

    def prepare() -> ServiceContext:
        settings = _settings(data_dir, keys_dir, trust_anchors, config)
        if not settings.database.startswith("postgresql"):
            raise InputError(
                "jobs run inside `provenance serve` on SQLite; `provenance worker` needs PostgreSQL "
                "(PROVENANCE_DATABASE_URL)"
            )
        configure_logging(settings.log_level)
        return build_context(settings)

    ctx = run_command(prepare)
    with closing(ctx):
        jobs = ctx.jobs
        assert isinstance(jobs, QueuedJobs)
        isolation.pool(ctx.settings.limits).warm()
        asyncio.run(jobs.work(ctx, concurrency=concurrency))


@app.command("jobs")
def jobs_command(
    data_dir: DataDir = None,
    keys_dir: KeysDirOpt = None,
    trust_anchors: Anchors = None,
    config: Config = None,
) -> None:
    """Background jobs by task and status, recent failures, and how far re-verification has come."""

    def run() -> None:
        with closing(build_context(_settings(data_dir, keys_dir, trust_anchors, config))) as ctx:
            with ctx.session() as session:
                queued = ctx.jobs is not None and ctx.jobs.queued
                if queued:
                    _print_job_table(job_counts(session))
                    alive = [w for w in workers(session, ctx.settings.job_stalled_seconds) if w["alive"]]
                    out.print(f"workers alive: {len(alive)}")
                else:
                    out.print("jobs run inside `provenance serve` on SQLite (an in-memory queue: none listed)")
                failures = recent_failures(session)
                done, total = progress(session, ctx.trust.fingerprint)
            if failures:
                table = Table("at", "task", "attempt", "error", title="recent failures")
                for failure in failures:
                    table.add_row(failure.at, failure.task, str(failure.attempt), escape(failure.error))
                out.print(table)
            else:
                out.print("recent failures: none")
            out.print(f"re-verification: {done}/{total} items current under trust {ctx.trust.fingerprint[:16]}…")

    run_command(run)


def _print_job_table(counts: dict[str, dict[str, int]]) -> None:
    table = Table("task", *STATUSES, title="jobs")
    for task in sorted(counts):
        table.add_row(task, *(str(counts[task].get(status, 0)) for status in STATUSES))
    if not counts:
        table.add_row("(none)", *("0" for _ in STATUSES))
    out.print(table)


@app.command("gc")
def gc_command(
    data_dir: DataDir = None,
    keys_dir: KeysDirOpt = None,
    config: Config = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")] = False,
    wait: Annotated[
        float, typer.Option("--wait", min=0, help="Seconds to wait for uploads in progress before each batch.")
    ] = 10.0,
) -> None:
    """Remove blobs no row references and temporary files of interrupted uploads (safe while serving)."""

    def run() -> Collection | StorageError:
        with closing(build_context(_settings(data_dir, keys_dir, None, config))) as ctx:
            try:
                return collect(ctx.blobs, ctx.sessions, wait=wait, dry_run=dry_run)
            except StorageError as exc:  # the store refused a removal (read-only): the operator's to fix
                return exc

    result = run_command(run)
    if isinstance(result, StorageError):
        _gc_failed(f"{result.detail} ({result.cause})")
    if dry_run:
        for path in result.listed:
            out.print(f"would remove {escape(path)}")
    out.print(result.summary(dry_run))
    if not result.complete:
        _gc_failed(f"the blob store stayed busy for {wait:g} s (uploads in progress): stopped early; run gc again")


def _gc_failed(message: str) -> NoReturn:
    err.print(f"error: {escape(message)}")
    raise typer.Exit(EXIT_FAILED)


def _load_samples(ctx: ServiceContext, samples: Path) -> list[str]:
    """Ingest the samples through the same code as the API (idempotent); return badge refs."""
    index = json.loads((samples / "samples.json").read_text())
    refs = []
    for item in index["images"]:
        declaration = Declaration.model_validate(item["declaration"])
        result = ingest_asset(ctx, (samples / item["file"]).read_bytes(), declaration, None)
        refs.append(result.row.id)
    for path in index["articles"]:
        result_article = ingest_article(ctx, (samples / path).read_bytes(), None)
        if result_article.row.article_id not in refs:
            refs.append(result_article.row.article_id)
    return refs


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.")] = 1,
    samples: Annotated[
        Path | None, typer.Option("--samples", help="Load this samples folder first and print a newsroom token.")
    ] = None,
    data_dir: DataDir = None,
    keys_dir: KeysDirOpt = None,
    trust_anchors: Anchors = None,
    config: Config = None,
) -> None:
    """Run the HTTP service (uvicorn) on the embedded default: SQLite + local blobs + keys/."""
    import uvicorn

    from service.asgi import CONFIG_ENV
    from service.ops.logging import configure as configure_logging
    from service.server import configure_connections, uvicorn_options

    def prepare() -> tuple[Settings, Any]:
        settings = _settings(data_dir, keys_dir, trust_anchors, config)
        # JSON lines from here on (start-up work included); each worker of --workers N does the same in
        # service.asgi:app, from the same settings.
        configure_logging(settings.log_level)
        from service.app import create_app

        application = create_app(settings)  # refuses to start without keys, migrates the database
        # Where a browser on this machine reaches the server (a wildcard address is no URL to open).
        shown = "localhost" if host in ("", "0.0.0.0", "::") else f"[{host}]" if ":" in host else host  # noqa: S104
        base = escape(f"http://{shown}:{port}")
        if samples is not None:
            ctx = application.api.state.ctx
            refs = _load_samples(ctx, samples)
            with ctx.session() as session:
                token = create_token(session, "make run", "newsroom")
                session.commit()
            out.print(f"newsroom token: {escape(token)}")
            for ref in refs:
                out.print(f"badge: {base}/v1/badges/{ref}.svg  {base}/v1/badges/{ref}.json?lang=zh-Hans")
        out.print(f"demo news page: {base}/demo  ({base}/demo?lang=zh-Hans)")
        out.print(f"verify a file:  {base}/verify")
        out.print(f"API docs:       {base}/docs")
        return settings, application

    settings, application = run_command(prepare)
    options = uvicorn_options(settings)  # the same for one process and for N workers
    configure_connections(settings)  # this process: open-file limit (inherited by workers), cap, deadline
    if workers > 1:
        # Each worker builds its own app, and applies its connection settings, from the environment:
        # the flags given here, and the same TOML file.
        os.environ.update(
            PROVENANCE_DATA_DIR=str(settings.data_dir),
            PROVENANCE_KEYS_DIR=str(settings.keys_dir),
            PROVENANCE_TRUST_ANCHORS=":".join(str(p) for p in settings.trust_anchors),
        )
        if config is not None:
            os.environ[CONFIG_ENV] = str(config.resolve())
        uvicorn.run("service.asgi:app", factory=True, host=host, port=port, workers=workers, **options)
    else:
        uvicorn.run(application, host=host, port=port, **options)


@app.command("serve-badges")
def serve_badges_command(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8001,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.")] = 1,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """Run the badge tier alone (granian): the public badge lookups, from the service's database."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings

    from service.badges.tier import CONFIG_ENV

    def prepare() -> Settings:
        settings = _settings(data_dir, None, None, config)
        from service.context import open_database

        engine, _ = open_database(settings)  # migrated once here, before the workers start
        engine.dispose()
        return settings

    settings = run_command(prepare)
    # Every worker builds its app from the environment: the flags given here, and the same TOML file.
    os.environ["PROVENANCE_DATA_DIR"] = str(settings.data_dir)
    if config is not None:
        os.environ[CONFIG_ENV] = str(config.resolve())
    out.print(f"badges: http://{host}:{port}/v1/badges/{{ref}}.svg  (readiness: /readyz)")
    Granian(
        "service.badges.tier:app",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=workers,
        websockets=False,
        http1_settings=HTTP1Settings(header_read_timeout=max(1, int(settings.header_timeout * 1000))),
        log_access=False,  # the service's own request log (access_log) writes one line per request
        respawn_failed_workers=True,
    ).serve()


__all__ = ["app"]

if __name__ == "__main__":
    app()
