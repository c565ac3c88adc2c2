"""The ASGI application: badge hot path in front, the FastAPI API behind it."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

import anyio
from fastapi import FastAPI, Request, Response

from provenance import isolation
from provenance.articles import MAX_PAYLOAD
from service import openapi, problems
from service.auth import RefusalAudit
from service.badges import BadgeApp, BadgeService
from service.context import ServiceContext, build_context
from service.metrics import Metrics
from service.reverify import reverify
from service.routes import articles, assets, audit, ops, pages
from service.settings import Settings
from service.store.gc import collect

log = logging.getLogger("provenance.service")


MULTIPART_FRAMING: Final = 64 * 1024  # bytes of boundaries and part headers around an upload's files
SMALL_BODY: Final = 64 * 1024  # bytes: the body limit of every route that takes no upload


#: Seconds the start-up collection waits for the blob store's exclusive lock (uploads of other processes
#: hold it shared); then it gives up until the next start or ``provenance gc``.
STARTUP_GC_WAIT: Final = 1.0


def collect_at_startup(ctx: ServiceContext) -> None:
    """Collect orphan blobs and leftover temporary files once, best-effort: a busy store or a failure is
    logged and start-up goes on."""
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


def body_limits(settings: Settings) -> Callable[[str, str], int]:
    """The body limit of each route (method, path), in bytes: uploads, article payloads, everything else."""
    upload = settings.max_upload_bytes + MULTIPART_FRAMING
    table = {
        ("POST", "/v1/assets"): upload,
        ("POST", "/v1/verify"): upload,
        ("POST", "/verify"): upload,
        ("POST", "/v1/articles"): MAX_PAYLOAD,
    }
    return lambda method, path: table.get((method, path), SMALL_BODY)


def create_api(ctx: ServiceContext, metrics: Metrics, badges: BadgeService) -> FastAPI:
    refusals = RefusalAudit(ctx.settings.audit_refusals_per_minute)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        isolation.pool(ctx.settings.limits).warm()  # parsing workers started now, not by the first uploads
        report = reverify(ctx)  # a badge is never stale: decisions follow the current trust
        if report.checked:
            log.info(
                "re-verified %d stored items (%d changed) for trust %s",
                report.checked,
                report.changed,
                report.fingerprint,
            )
        if ctx.settings.gc_at_startup:
            collect_at_startup(ctx)
        badges.clear()
        yield
        suppressed = refusals.flush()  # refusals counted since the last summary are not lost at shutdown
        if suppressed is not None:
            with ctx.session() as session:
                session.add(suppressed.event())
                session.commit()
        badges.close()
        ctx.close()

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
    for module in (assets, articles, audit, ops, pages):
        api.include_router(module.router)
    openapi.install(api)

    def refused(reason: str) -> None:
        metrics.rejections.labels(reason=reason).inc()

    # Inside `measure`, so refused bodies are counted as requests too.
    api.add_middleware(
        BodyGuard, limit=body_limits(ctx.settings), seconds=ctx.settings.request_body_timeout, on_refused=refused
    )

    @api.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        metrics.requests.labels(route=name, status=str(response.status_code)).inc()
        metrics.latency.labels(route=name).observe(time.perf_counter() - start)
        return response

    return api


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyGuard:
    """ASGI middleware: every request body is bounded in size and in time (the one body guard).

    - A declared ``Content-Length`` over the route's limit is refused (413) before anything is read.
    - Bytes are counted as they arrive, chunked bodies included: past the limit, the application's next
      read fails with the 413 problem and nothing more is read; past a declared ``Content-Length`` (a
      server that does not enforce framing), with a 400.
    - The body must arrive within ``seconds`` (no slow-loris uploads), or the read fails with 408.

    Once a body is refused, whatever the application would have answered is dropped and the client gets
    the refusal (413 ``/problems/input-too-large`` or 408 ``/problems/request-timeout``).
    """

    def __init__(
        self,
        app: Any,
        limit: Callable[[str, str], int],
        seconds: float,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.seconds = seconds
        self.on_refused = on_refused or (lambda _reason: None)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, root = scope["path"], scope.get("root_path", "")
        limit = self.limit(scope["method"], path[len(root) :] if root and path.startswith(root) else path)
        declared = _declared_length(scope["headers"])
        if declared is not None and declared > limit:
            self.on_refused("too_large")
            await _too_large(limit).response()(scope, receive, send)
            return
        deadline = anyio.current_time() + self.seconds
        received = 0
        complete = started = False
        refusal: problems.Problem | None = None

        def refuse(problem: problems.Problem, reason: str) -> problems.Problem:
            nonlocal refusal
            refusal = problem
            self.on_refused(reason)
            return problem

        async def guarded_receive() -> Any:
            nonlocal received, complete
            if refusal is not None:
                raise refusal
            if complete:  # the body is in: waiting for a disconnect has no deadline
                return await receive()
            try:
                with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                    message = await receive()
            except TimeoutError:
                raise refuse(_too_slow(), "body_timeout") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > limit:
                    raise refuse(_too_large(limit), "too_large")
                if declared is not None and received > declared:
                    raise refuse(_longer_than_declared(declared), "bad_framing")
            return message

        async def guarded_send(message: Any) -> None:
            nonlocal started
            if refusal is not None and not started:
                return  # the application's answer to a refused body is replaced by the refusal
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if refusal is None:
                raise
            log.debug("the application gave up on a refused body", exc_info=True)
        if refusal is not None and not started:
            await refusal.response()(scope, receive, send)


def _too_large(limit: int) -> problems.Problem:
    return problems.Problem(
        413, "input-too-large", "Input too large", f"this request's body is limited to {limit} bytes"
    )


def _longer_than_declared(declared: int) -> problems.Problem:
    return problems.Problem(
        400, "bad-request", "Bad request", f"the body is longer than its Content-Length ({declared})"
    )


def _too_slow() -> problems.Problem:
    return problems.Problem(408, "request-timeout", "Request timeout", "the request body arrived too slowly")


def create_app(settings: Settings) -> Any:
    """The full service for ``settings``; raises :class:`~provenance.KeyMaterialError` without keys."""
    ctx = build_context(settings)
    metrics = Metrics()
    badges = BadgeService(ctx.sessions, settings.badge_cache_seconds, settings.badge_max_age)
    api = create_api(ctx, metrics, badges)
    app = BadgeApp(badges, api, on_request=metrics.count_badge)
    app.api = api  # type: ignore[attr-defined]  # tests and the CLI reach the FastAPI app through it
    return app
