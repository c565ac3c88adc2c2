"""The ASGI application: badge hot path in front, the FastAPI API behind it."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request, Response

from service import openapi, problems
from service.badges import BadgeApp, BadgeService
from service.context import ServiceContext, build_context
from service.metrics import Metrics
from service.reverify import reverify
from service.routes import articles, assets, audit, ops, pages
from service.settings import Settings

log = logging.getLogger("provenance.service")


def create_api(ctx: ServiceContext, metrics: Metrics, badges: BadgeService) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        report = reverify(ctx)  # a badge is never stale: decisions follow the current trust
        if report.checked:
            log.info(
                "re-verified %d stored items (%d changed) for trust %s",
                report.checked,
                report.changed,
                report.fingerprint,
            )
        badges.clear()
        yield
        ctx.engine.dispose()

    api = FastAPI(
        title="Newsroom provenance",
        version="0.1.0",
        summary="Signed C2PA provenance for news images and articles; badges only from verified claims.",
        lifespan=lifespan,
    )
    api.state.ctx = ctx
    api.state.metrics = metrics
    api.state.badges = badges
    problems.install(api)
    for module in (assets, articles, audit, ops, pages):
        api.include_router(module.router)
    openapi.install(api)

    @api.middleware("http")
    async def refuse_oversized(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # Refuse a body whose declared length is over the limit before anything parses it (multipart
        # framing gets 64 KiB of slack; the exact limit is enforced again while reading).
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > ctx.settings.max_upload_bytes + 64 * 1024:
            metrics.rejections.labels(reason="too_large").inc()
            limit = ctx.settings.max_upload_bytes
            return problems.Problem(
                413, "input-too-large", "Input too large", f"bodies are limited to {limit} bytes"
            ).response()
        return await call_next(request)

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


class BodyDeadline:
    """ASGI middleware: a request body must arrive within ``seconds`` (no slow-loris uploads).

    When the deadline passes, the application sees the client as gone, whatever it would have
    answered is dropped, and the client gets a 408 problem.
    """

    def __init__(self, app: Any, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = anyio.current_time() + self.seconds
        timed_out = started = False

        async def timed_receive() -> Any:
            nonlocal timed_out
            try:
                with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                    return await receive()
            except TimeoutError:
                timed_out = True
                return {"type": "http.disconnect"}

        async def guarded_send(message: Any) -> None:
            nonlocal started
            if timed_out:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, timed_receive, guarded_send)
        if timed_out and not started:
            await problems.Problem(
                408, "request-timeout", "Request timeout", "the request body arrived too slowly"
            ).response()(scope, receive, send)


def create_app(settings: Settings) -> Any:
    """The full service for ``settings``; raises :class:`~provenance.KeyMaterialError` without keys."""
    ctx = build_context(settings)
    metrics = Metrics()
    badges = BadgeService(ctx.sessions, settings.badge_cache_seconds, settings.badge_max_age)
    api = create_api(ctx, metrics, badges)
    api.add_middleware(BodyDeadline, seconds=settings.request_body_timeout)
    app = BadgeApp(badges, api, on_request=metrics.count_badge)
    app.api = api  # type: ignore[attr-defined]  # tests and the CLI reach the FastAPI app through it
    return app
