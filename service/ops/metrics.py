"""Prometheus metrics: requests, latencies, stamps by label, rejections by reason, isolated parsing
(one registry per app), and who may read them.

``/metrics`` is served on the main port (public, or only to ``Authorization: Bearer <metrics_token>``)
or, with ``metrics_bind``, only by :class:`MetricsListener` on a separate address (the main port then
answers 404). With ``serve --workers N`` each process keeps its own counters and a scrape reads the one
process that answers it (the separate listener's port is shared by the workers, ``SO_REUSEPORT``).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Iterator, MutableMapping
from typing import Any, Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from provenance import isolation
from service.ops.requests import ASGIApp, Message, Receive, Scope, Send, current

log = logging.getLogger("provenance.service")

#: Reasons of the problem kinds whose name alone would not say it (the rest are the kind, ``-`` -> ``_``).
REASONS: Final = {
    "invalid-request": "validation_error",
    "input-too-large": "too_large",
    "request-timeout": "body_timeout",
}


class IsolationCollector(Collector):
    """The isolated parsers' counters, read from :func:`provenance.isolation.stats` at scrape time."""

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = isolation.stats()
        yield CounterMetricFamily("provenance_parse_calls", "Isolated SDK calls", value=stats.calls)
        yield CounterMetricFamily(
            "provenance_parse_workers_replaced",
            "Parsing workers killed or dead (memory cap, deadline, crash) and replaced",
            value=stats.replaced,
        )
        yield CounterMetricFamily(
            "provenance_parse_timeouts", "Isolated SDK calls past their deadline", value=stats.timeouts
        )
        yield GaugeMetricFamily(
            "provenance_parse_worker_peak_rss_bytes",
            "Largest resident set of any parsing worker",
            value=stats.peak_worker_rss,
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "provenance_http_requests", "HTTP requests", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "provenance_http_request_seconds", "Request latency", ["route"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip
        self.stamps = Counter(
            "provenance_stamps", "Stamped assets and articles", ["kind", "label"], registry=self.registry
        )
        self.rejections = Counter("provenance_rejections", "Rejected requests", ["reason"], registry=self.registry)
        for reason in ("missing_token", "bad_token", "wrong_role", "rate_limited", "too_large", "body_timeout"):
            self.rejections.labels(reason=reason)  # listed at 0 from the start: a rate() needs a first sample
        self.audit_write_failures = Counter(
            "provenance_audit_write_failures", "Audit rows that could not be written", registry=self.registry
        )
        self.badges = Counter("provenance_badge_responses", "Badge responses", ["status"], registry=self.registry)
        # Label lookups cost more than the increment: the hot path uses children bound once.
        self._badge_children = {status: self.badges.labels(status=str(status)) for status in (200, 304, 400, 404)}
        self.registry.register(IsolationCollector())

    def count_badge(self, status: int) -> None:
        child = self._badge_children.get(status)
        if child is None:
            child = self._badge_children[status] = self.badges.labels(status=str(status))
        child.inc()

    def reject(self, reason: str) -> None:
        """Count one rejection of the current request under ``reason``. A request is counted once: a body
        refused by the body guard is also the exception the API's handler answers, and only the first
        count stands (outside a request, every call counts)."""
        context = current.get()
        if context is not None:
            if context.rejected:
                return
            context.rejected = True
        self.rejections.labels(reason=reason).inc()

    def reject_problem(self, kind: str) -> None:
        """Count a refusal answered with the problem ``kind`` (see :data:`REASONS`)."""
        self.reject(REASONS.get(kind) or kind.replace("-", "_"))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class Measure:
    """ASGI, inside the API: counts every request by route template and status and times it. A plain ASGI
    layer: Starlette's ``@app.middleware("http")`` ran each body chunk of an upload through a task group of
    its own. A request whose handler raised before answering counts as the 500 the server answers."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        def send_status(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            name = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route=name, status=str(status)).inc()
            self.metrics.latency.labels(route=name).observe(time.perf_counter() - start)


def scrape_allowed(token: str | None, authorization: str | bytes | None) -> bool:
    """Whether a scrape with this ``Authorization`` value may read the metrics: always without a
    ``metrics_token``, else only ``Bearer <metrics_token>`` (compared in constant time)."""
    if token is None:
        return True
    if authorization is None:
        return False
    value = authorization if isinstance(authorization, bytes) else authorization.encode("latin-1", "replace")
    scheme, _, credential = value.strip().partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(credential.strip(), token.encode())


#: Bytes of a request head the separate listener reads at most, and seconds it waits for one.
LISTENER_MAX_HEAD: Final = 8 * 1024
LISTENER_TIMEOUT: Final = 5.0
#: Connections the separate listener serves at once; more are closed at once.
LISTENER_CONNECTIONS: Final = 16


def _response(status: bytes, body: bytes, content_type: bytes, head: bool, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: " + content_type
        + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n"
        + b"x-content-type-options: nosniff\r\n" + extra + b"\r\n" + (b"" if head else body)
    )  # fmt: skip


class MetricsListener:
    """ASGI wrapper: while ``app`` runs (between its lifespan's start-up and shutdown), a second listener
    on ``address`` answers ``GET /metrics`` with ``metrics`` and anything else with 404 (one request per
    connection, its head within :data:`LISTENER_MAX_HEAD` bytes and :data:`LISTENER_TIMEOUT` seconds)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, address: tuple[str, int], token: str | None) -> None:
        self.app = app
        self.metrics = metrics
        self.address = address
        self.token = token
        self._server: asyncio.Server | None = None
        self._open = 0

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def started(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                try:
                    await self.start()
                except OSError as exc:  # the address is taken or not ours: the service does not start
                    message = {"type": "lifespan.startup.failed", "message": f"metrics_bind {self.address}: {exc}"}
            await send(message)

        async def stopping() -> MutableMapping[str, Any]:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.stop()
            return message

        await self.app(scope, stopping, started)

    async def start(self) -> None:
        host, port = self.address
        self._server = await asyncio.start_server(self._serve, host, port, limit=LISTENER_MAX_HEAD, reuse_port=True)
        log.info("metrics served on %s:%d", host, port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open += 1
        try:
            if self._open <= LISTENER_CONNECTIONS:
                async with asyncio.timeout(LISTENER_TIMEOUT):
                    head = await reader.readuntil(b"\r\n\r\n")
                    writer.write(self.answer(head))
                    await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a slow, oversized or vanished request gets no answer
        finally:
            self._open -= 1
            writer.close()

    def answer(self, head: bytes) -> bytes:
        """The whole response to one request head."""
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        method, target = (parts[0], parts[1]) if len(parts) == 3 else (b"", b"")
        text = b"text/plain; charset=utf-8"
        if target.partition(b"?")[0] != b"/metrics":
            return _response(b"404 Not Found", b"only /metrics is served here\n", text, False)
        if method not in (b"GET", b"HEAD"):
            return _response(b"405 Method Not Allowed", b"GET or HEAD\n", text, False, b"allow: GET, HEAD\r\n")
        authorization = next(
            (value for name, _, value in (line.partition(b":") for line in lines[1:])
             if name.strip().lower() == b"authorization"),
            None,
        )  # fmt: skip
        if not scrape_allowed(self.token, authorization):
            self.metrics.reject("missing_token" if authorization is None else "bad_token")
            challenge = b"www-authenticate: Bearer\r\n"
            return _response(
                b"401 Unauthorized", b"send Authorization: Bearer <metrics_token>\n", text, False, challenge
            )
        return _response(b"200 OK", self.metrics.exposition(), CONTENT_TYPE_LATEST.encode(), method == b"HEAD")
