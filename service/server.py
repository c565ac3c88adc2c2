"""The HTTP server under the service: uvicorn, with connections that slow or idle clients cannot exhaust.

Invariants kept per service process by :class:`GuardedHttpToolsProtocol` (and :class:`GuardedH11Protocol`):

- **Request-head deadline.** A connection must deliver a complete request line and headers within
  ``header_timeout`` seconds of connecting, or of the end of its previous response (keep-alive);
  otherwise it is closed, silently (no response, no log line per connection). The deadline is for
  the whole head, so a client trickling one byte at a time gains nothing. A head longer than
  :data:`MAX_REQUEST_HEAD_BYTES` is answered 431 and closed.
- **Connection cap.** At most ``max_connections`` connections are open (lower when the open-file
  limit cannot hold that many sockets next to the service's own files). A new connection at the cap
  closes the connection that has waited longest for its request head (slow-loris victims and idle
  keep-alive connections go first, and a real client, whose head follows its connect at once, is
  almost never the oldest); when every open connection is busy with a request, the new one is
  answered 503 and closed.
- **Proxy headers.** ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed only from the
  addresses in ``trusted_proxies``; with none configured they are ignored and the peer address is
  the client (:func:`uvicorn_options`).

Both checks ride on what uvicorn does per request anyway: one dict insert when a response ends,
one dict delete when the next head is complete, and a single timer per process that wakes only
while connections are waiting. Counters of what was closed are logged as one summary line at most
once a minute.

Configuration reaches the protocol through :func:`configure_connections`, called in every serving
process: by ``provenance serve`` itself, and by the ``service.asgi:app`` factory in each spawned
worker of ``serve --workers N``.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass, field
from typing import Any, Protocol

from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from service.settings import Settings

#: Longest request line plus headers accepted (bytes); nginx's default buffers hold 32 KiB.
MAX_REQUEST_HEAD_BYTES = 64 * 1024
#: File descriptors kept free for the service's own use (database, blobs, parse workers, temp files).
RESERVED_FILES = 256
#: The protocol ``provenance serve`` runs (an import string, so spawned workers can load it).
HTTP_PROTOCOL = "service.server:GuardedHttpToolsProtocol"
#: Longest and shortest pause of the deadline timer (seconds): deadlines are met to within this.
_TICK_MAX, _TICK_MIN = 1.0, 0.05
_REPORT_EVERY = 60.0  # seconds between summary log lines

_REFUSED = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nretry-after: 1\r\nconnection: close\r\n\r\n"
_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"

logger = logging.getLogger("uvicorn.error")  # formatted and levelled like the server's own lines


@dataclass(frozen=True)
class ConnectionLimits:
    """What one service process enforces on its connections."""

    header_timeout: float  # seconds
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(header_timeout=settings.header_timeout, max_connections=settings.max_connections)


# Until configure_connections runs, the settings' defaults (model_construct reads no environment).
_limits = ConnectionLimits.from_settings(Settings.model_construct())


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword options for ``uvicorn.run`` (one process or ``workers=N``): the guarded protocol, the
    keep-alive timeout, proxy headers only from ``settings.trusted_proxies``; logging left as
    :func:`service.ops.logging.configure` set it (no logging config and no level of uvicorn's own), and
    uvicorn's access log off (``service.ops.requests.RequestLog`` writes the request lines, as JSON, on a
    writer thread); no ``Server`` header."""
    options: dict[str, Any] = {
        "http": HTTP_PROTOCOL,
        "timeout_keep_alive": settings.keep_alive_timeout,
        "log_config": None,
        "log_level": None,
        "access_log": False,
        "server_header": False,
        # uvicorn's default believes X-Forwarded-For from 127.0.0.1: behind any local process that
        # forwards requests, every client could pick its own address (and reset per-address limits).
        "proxy_headers": bool(settings.trusted_proxies),
    }
    if settings.trusted_proxies:
        options["forwarded_allow_ips"] = list(settings.trusted_proxies)
    return options


def configure_connections(settings: Settings) -> ConnectionLimits:
    """Apply ``settings``' connection limits to this process's guarded protocols, raising the soft
    open-file limit to the hard one first. Returns the limits in force: ``max_connections`` is lowered
    (with a warning) when the open-file limit cannot hold that many sockets plus :data:`RESERVED_FILES`
    (a quarter of a smaller limit), so that the cap, not the operating system, decides who is turned away."""
    global _limits
    files = raise_open_file_limit()
    limits = ConnectionLimits.from_settings(settings)
    room = max(files - min(RESERVED_FILES, files // 4), 1)
    if limits.max_connections > room:
        logger.warning(
            "open-file limit %d leaves room for %d connections, not max_connections=%d; raise `ulimit -n`",
            files,
            room,
            limits.max_connections,
        )
        limits = ConnectionLimits(limits.header_timeout, room)
    _limits = limits
    return limits


def raise_open_file_limit() -> int:
    """Raise this process's soft ``RLIMIT_NOFILE`` to its hard limit (inherited by worker processes);
    return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    infinite = resource.RLIM_INFINITY
    # An unlimited hard limit (macOS) still caps the soft one (at OPEN_MAX there): try large, then less.
    for target in [hard] if hard != infinite else [1 << 20, 10240]:
        if soft == infinite or soft >= target:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            continue
        soft = target
        break
    return soft if soft != infinite else 1 << 20


class _Connection(Protocol):
    """What the guard needs of a protocol instance."""

    transport: asyncio.Transport
    #: Bytes of the request head received so far while waiting for one; -1 while not waiting.
    head_bytes: int


@dataclass
class ConnectionGuard:
    """Per server (one per process): the connections waiting for a request head, oldest first, and
    their deadlines; closes the expired ones and picks who goes at the cap."""

    limits: ConnectionLimits
    connections: set[Any]  # uvicorn's own set of open connections (ServerState.connections)
    loop: asyncio.AbstractEventLoop
    #: connection -> deadline (loop time). Insertion order is deadline order: every entry gets the same
    #: timeout, and a connection that waits again is removed and re-added at the end.
    waiting: dict[_Connection, float] = field(default_factory=dict)
    timed_out: int = field(default=0, init=False)  # closed: no complete request head in time
    evicted: int = field(default=0, init=False)  # closed at the cap while waiting for a head
    refused: int = field(default=0, init=False)  # new connections turned away (503) at the cap
    too_large: int = field(default=0, init=False)  # heads over MAX_REQUEST_HEAD_BYTES (431)
    header_timeout: float = field(default=0.0, init=False, repr=False)  # limits.header_timeout (read per request)
    _timer: asyncio.TimerHandle | None = field(default=None, init=False, repr=False)
    _tick: float = field(default=_TICK_MAX, init=False, repr=False)
    _reported: tuple[int, int, int, int] = field(default=(0, 0, 0, 0), init=False, repr=False)
    _report_at: float | None = field(default=None, init=False, repr=False)
    _last_report: float = field(default=float("-inf"), init=False, repr=False)

    def __post_init__(self) -> None:
        self.header_timeout = self.limits.header_timeout
        self._tick = min(max(self.header_timeout / 10, _TICK_MIN), _TICK_MAX)

    @classmethod
    def of(cls, server_state: ServerState, loop: asyncio.AbstractEventLoop) -> ConnectionGuard:
        """The guard of this uvicorn server, created at its first connection."""
        guard: ConnectionGuard | None = getattr(server_state, "connection_guard", None)
        if guard is None:
            guard = cls(_limits, server_state.connections, loop)
            server_state.connection_guard = guard  # type: ignore[attr-defined]
        return guard

    def admit(self, conn: _Connection) -> bool:
        """A new connection (already in ``connections``): make room at the cap, start its deadline.
        False when it was refused."""
        if len(self.connections) > self.limits.max_connections:
            if self.waiting:
                victim = next(iter(self.waiting))
                del self.waiting[victim]
                victim.head_bytes = -1
                self.connections.discard(victim)  # gone now, so the next arrival counts right
                victim.transport.close()
                self.evicted += 1
            else:
                self.connections.discard(conn)
                conn.transport.write(_REFUSED)
                conn.transport.close()
                self.refused += 1
                self._note()
                return False
            self._note()
        self.wait(conn)
        return True

    def wait(self, conn: _Connection) -> None:
        """``conn`` now waits for a request head: its deadline starts (once per request: kept lean)."""
        if conn.head_bytes >= 0:  # already waiting: move to the end
            del self.waiting[conn]
        self.waiting[conn] = self.loop.time() + self.header_timeout
        conn.head_bytes = 0
        if self._timer is None:
            self._timer = self.loop.call_later(self.header_timeout, self._expire)

    def done(self, conn: _Connection) -> None:
        """``conn`` has its request head (or is closed): its deadline ends."""
        if conn.head_bytes >= 0:
            conn.head_bytes = -1
            del self.waiting[conn]

    def head_too_large(self, conn: _Connection) -> None:
        self.done(conn)
        conn.transport.write(_TOO_LARGE)
        conn.transport.close()
        self.too_large += 1
        self._note()

    def _expire(self) -> None:
        self._timer = None
        now = self.loop.time()
        waiting = self.waiting
        expired = []
        for conn, deadline in waiting.items():
            if deadline > now:
                break
            expired.append(conn)
        for conn in expired:
            del waiting[conn]
            conn.head_bytes = -1
            conn.transport.close()
        if expired:
            self.timed_out += len(expired)
            self._note()
        if waiting:
            first = next(iter(waiting.values()))
            self._timer = self.loop.call_later(max(first - now, self._tick), self._expire)

    def _note(self) -> None:
        """Something was closed: log a summary soon, at most once per minute."""
        if self._report_at is None:
            self._report_at = max(self._last_report + _REPORT_EVERY, self.loop.time())
            self.loop.call_at(self._report_at, self._report)

    def _report(self) -> None:
        self._last_report, self._report_at = self.loop.time(), None
        now = (self.timed_out, self.evicted, self.refused, self.too_large)
        timed_out, evicted, refused, too_large = (a - b for a, b in zip(now, self._reported, strict=True))
        self._reported = now
        if timed_out:  # also idle pre-connects of browsers: normal, so not a warning
            logger.info("closed %d connections without a request head in %gs", timed_out, self.limits.header_timeout)
        cap = self.limits.max_connections
        parts = [
            f"{evicted} waiting for a request head closed at the cap of {cap}" if evicted else "",
            f"{refused} new refused (503) at the cap of {cap}, none waiting" if refused else "",
            f"{too_large} request heads over {MAX_REQUEST_HEAD_BYTES} bytes refused (431)" if too_large else "",
        ]
        if any(parts):
            logger.warning("connections: %s", "; ".join(p for p in parts if p))


# Base methods called directly rather than through super(): these run once or twice per request.
_httptools_data_received = HttpToolsProtocol.data_received
_httptools_response_complete = HttpToolsProtocol.on_response_complete
_h11_handle_events = H11Protocol.handle_events
_h11_response_complete = H11Protocol.on_response_complete


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request-head deadline, a head size limit and the connection
    cap of :class:`ConnectionGuard`."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = ConnectionGuard.of(server_state, self.loop)
        self.head_bytes = -1

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.guard.admit(self)

    def data_received(self, data: bytes) -> None:
        if self.head_bytes < 0:  # not waiting for a head: a body, or a pipelined request
            _httptools_data_received(self, data)
            return
        cycle = self.cycle
        _httptools_data_received(self, data)
        if self.cycle is not cycle:  # on_headers_complete started a request: the head is complete
            self.guard.done(self)
        elif self.head_bytes >= 0:  # still waiting: all of this chunk was head
            self.head_bytes += len(data)
            if self.head_bytes > MAX_REQUEST_HEAD_BYTES and not self.transport.is_closing():
                self.guard.head_too_large(self)

    def handle_websocket_upgrade(self) -> None:
        self.guard.done(self)  # the transport is handed to the WebSocket protocol
        super().handle_websocket_upgrade()

    def on_response_complete(self) -> None:
        # A pipelined request already has its head; otherwise the next one's deadline starts now.
        if not self.pipeline and not self.transport.is_closing():
            self.guard.wait(self)
        _httptools_response_complete(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.done(self)
        super().connection_lost(exc)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the request-head deadline and connection cap of
    :class:`ConnectionGuard` (h11 itself limits the head to ``h11_max_incomplete_event_size``)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = ConnectionGuard.of(server_state, self.loop)
        self.head_bytes = -1

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.guard.admit(self)

    def handle_events(self) -> None:
        cycle = self.cycle
        _h11_handle_events(self)
        if self.cycle is not cycle:  # a request head arrived
            self.guard.done(self)

    def handle_websocket_upgrade(self, event: Any) -> None:
        self.guard.done(self)  # the transport is handed to the WebSocket protocol
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        # Before uvicorn's own: it handles a pipelined request at once (handle_events ends the wait).
        if not self.transport.is_closing():
            self.guard.wait(self)
        _h11_response_complete(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.done(self)
        super().connection_lost(exc)
