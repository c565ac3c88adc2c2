"""The ASGI application: badge hot path in front, the FastAPI API behind it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

from fastapi import FastAPI

from provenance import isolation
from provenance.articles import MAX_PAYLOAD
from service import openapi, problems
from service.audit import routes as audit
from service.badges.app import BadgeApp, BadgeService, Preload
from service.context import ServiceContext, build_context
from service.ingest import routes as ingest
from service.jobs.tasks import reverify_at_startup
from service.log import routes as log_routes
from service.log.sequencer import Sequencer
from service.ops import routes as ops
from service.ops.logging import access
from service.ops.logging import flush as flush_log
from service.ops.metrics import Measure, Metrics, MetricsListener
from service.ops.requests import RequestLog
from service.pages import demo
from service.pages import routes as pages
from service.records import routes as records
from service.renditions import routes as renditions
from service.resolver import routes as resolver
from service.security.bodies import BodyGuard
from service.security.limits import RefusalAudit
from service.settings import Settings
from service.store.changes import Changed, ChangeListener, on_committed
from service.store.gc import collect

log = logging.getLogger("provenance.service")


MULTIPART_FRAMING: Final = 64 * 1024  # bytes of boundaries and part headers around an upload's files
SMALL_BODY: Final = 64 * 1024  # bytes: the body limit of every route that takes no upload


#: Seconds the start-up collection waits for the blob store's exclusive lock (uploads of other processes
#: hold it shared); then it gives up until the next start or ``provenance gc``.
STARTUP_GC_WAIT: Final = 1.0


def collect_at_startup(ctx: ServiceContext) -> None:
    """Collect orphan blobs and leftover temporary files once, best-effort: a busy store or a failure is
    logged and start-up goes on. Only the local store: listing a shared bucket from every process at every
    start would delay each start by the bucket's size; it is collected by ``provenance gc`` (or the gc job)."""
    if ctx.settings.blob_store != "local":
        log.info("start-up gc skipped: object storage is collected by `provenance gc`, not at every start")
        return
    try:
        report = collect(ctx.blobs, ctx.sessions, wait=STARTUP_GC_WAIT)
    except Exception as exc:  # never fatal: the store works with orphans in it
        log.warning("start-up gc failed (%s: %s); run `provenance gc`", type(exc).__name__, exc)
        return
    if report.complete:
        log.info("start-up gc: %s", report.summary())
    else:
        log.warning(
            "start-up gc stopped: the blob store stayed busy (uploads of another process) for %s s; %s so far",
            STARTUP_GC_WAIT,
            report.summary(),
        )


#: Seconds between reads of the change feed when badges are not cached (``badge_cache_seconds = 0``): the
#: feed still carries trust changes, which every process must follow.
FEED_PERIOD: Final = 1.0


def follow_changes(ctx: ServiceContext, badges: BadgeService) -> ChangeListener:
    """Start this process's change listener: a trust change reloads the trust configuration, every change
    reaches the badge cache; this process's own commits of changes wake it (and queue the purge webhook)."""

    def apply(changed: Changed, started: float) -> None:
        if changed.trust:
            ctx.reload_trust()
        badges.apply(changed, started)

    period = ctx.settings.badge_cache_seconds or FEED_PERIOD
    listener = ChangeListener(ctx.engine, ctx.sessions, period, apply, failed=badges.clear)
    listener.start()
    on_committed(ctx.sessions, listener.wake)
    jobs = ctx.jobs
    if jobs is not None and ctx.settings.webhook_url:

        def purge_soon() -> None:  # at most one delivery job waits at a time
            jobs.deliver_webhooks_soon()

        on_committed(ctx.sessions, purge_soon)
    return listener


def body_limits(settings: Settings) -> Callable[[str, str], int]:
    """The body limit of each route (method, path), in bytes: uploads, article payloads, everything else."""
    upload = settings.max_upload_bytes + MULTIPART_FRAMING
    table = {
        ("POST", "/v1/assets"): upload,
        ("POST", "/v1/verify"): upload,
        ("POST", "/verify"): upload,
        ("POST", "/v1/articles"): MAX_PAYLOAD,
        ("POST", "/matches/byContent"): settings.match_max_bytes,
        ("POST", "/v1/badges/match"): settings.match_max_bytes,
    }
    return lambda method, path: table.get((method, path), SMALL_BODY)


def create_api(ctx: ServiceContext, metrics: Metrics, badges: BadgeService) -> FastAPI:
    refusals = RefusalAudit(ctx.settings.audit_refusals_per_minute)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        isolation.pool(ctx.settings.limits).warm()  # parsing workers started now, not by the first uploads
        # A badge is never stale: decisions follow the current trust (here, or queued for the workers).
        report = reverify_at_startup(ctx)
        if report is not None and report.checked:
            log.info(
                "re-verified %d stored items (%d changed) for trust %s",
                report.checked,
                report.changed,
                report.fingerprint,
            )
        if ctx.settings.gc_at_startup:
            collect_at_startup(ctx)
        listener = follow_changes(ctx, badges)  # from the feed's end, on an empty cache
        preload = Preload(badges, ctx.settings.badge_preload)  # known before they are asked for
        sequencer = Sequencer(
            ctx.engine,
            ctx.sessions,
            ctx.log_key,
            ctx.settings.log_sequence_seconds,
            ctx.settings.log_batch,
            ctx.settings.log_gather_seconds,
        )
        sequencer.start()
        on_committed(ctx.sessions, sequencer.wake)  # this process's events are logged within log_gather_seconds
        if ctx.jobs is not None:
            ctx.jobs.start(ctx)  # SQLite: the job thread; PostgreSQL: a worker thread with jobs_in_process
        yield
        if ctx.jobs is not None:
            ctx.jobs.stop()  # the running job finishes first
        suppressed = refusals.flush()  # refusals counted since the last summary are not lost at shutdown
        if suppressed is not None:
            with ctx.session() as session:
                session.add(suppressed.event())
                session.commit()
        preload.stop()
        listener.stop()
        sequencer.stop()
        ctx.close()
        flush_log()  # queued request lines, before uvicorn ends the process by its signal

    api = FastAPI(
        title="Newsroom provenance",
        version="0.1.0",
        summary="Signed C2PA provenance for news images and articles; badges only from verified claims.",
        lifespan=lifespan,
        docs_url=None,  # served by service.openapi, with a Content-Security-Policy
        redoc_url=None,
        responses=problems.responses(500),
    )
    api.state.ctx = ctx
    api.state.metrics = metrics
    api.state.badges = badges
    api.state.refusals = refusals
    problems.install(api)
    for module in (ingest, records, renditions, resolver, audit, log_routes, ops, pages, demo):
        api.include_router(module.router)
    openapi.install(api)

    # Each rejected request counted once, under one reason (service.ops.metrics.Metrics.reject).
    problems.count_rejections(api, metrics.reject_problem)
    # Inside `Measure`, so refused bodies are counted as requests too.
    api.add_middleware(
        BodyGuard, limit=body_limits(ctx.settings), seconds=ctx.settings.request_body_timeout, on_refused=metrics.reject
    )
    api.add_middleware(Measure, metrics=metrics)

    return api


def create_app(settings: Settings) -> Any:
    """The full service for ``settings``; raises :class:`~provenance.KeyMaterialError` without keys."""
    ctx = build_context(settings)
    metrics = Metrics()
    badges = BadgeService(
        ctx.sessions, settings.badge_cache_seconds, settings.badge_max_age, settings.badge_cache_entries
    )
    api = create_api(ctx, metrics, badges)
    # Outermost: every request, badges included, gets its id and its log line.
    badge_app = BadgeApp(badges, api, on_request=metrics.count_badge)
    app: Any = RequestLog(badge_app, access if settings.access_log else None)
    if settings.metrics_address is not None:
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        app = MetricsListener(app, metrics, settings.metrics_address, token)
    app.api = api  # tests and the CLI reach the FastAPI app through it
    return app
