"""Per-request observation: the request id, the timing and the one log line of every HTTP request.

:class:`RequestLog` is the outermost ASGI app (in front of the badge hot path and the API), so every
request is seen, badges included. Invariants:

- **Request id.** An incoming ``X-Request-ID`` is kept only when it is 1 to :data:`MAX_REQUEST_ID`
  characters of ``A-Z a-z 0-9 . _ : = + / -``; anything else (too long, spaces, quotes, control
  characters, non-ASCII) is replaced by a new id and never echoed nor logged. The id in force is sent
  back as ``X-Request-ID`` on every response and is the ``request_id`` of the request's line and of
  every line logged while it is served (:data:`current`).
- **One line per request**, after the application returns: ``request_id, method, route, path, status,
  duration_ms, token_name``. ``route`` is the route's template (``/v1/assets/{asset_id}``), ``path`` the
  request path cut to :data:`MAX_LOGGED_PATH` characters (never the query string), ``token_name`` the
  *name* of the API token the auth dependency admitted or refused (``scope["state"]["token_name"]``),
  never the token itself nor any header.
- **Cheap:** the serving task hands the sink a tuple of five values (the scope among them) and nothing
  else; route names, quoting, formatting and writing happen on the log writer's thread
  (:mod:`service.ops.logging`).
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any, Final

from service.badges.app import PREFIX as BADGE_PREFIX

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Longest incoming ``X-Request-ID`` kept (characters); a longer one is replaced.
MAX_REQUEST_ID: Final = 128
#: Characters of the request path kept in its log line.
MAX_LOGGED_PATH: Final = 256
#: Accepted ids: none of these characters needs escaping in JSON or in a header.
_REQUEST_ID: Final = re.compile(rb"[A-Za-z0-9._:=+/-]{1,%d}" % MAX_REQUEST_ID)
_HEADER: Final = b"x-request-id"

#: One request, as handed to the log writer: time (epoch seconds), duration (seconds), status, request id,
#: and the request's ASGI scope itself (method, path, route and ``state["token_name"]`` are read from it
#: on the writer's thread, after the response: nothing changes a scope then).
AccessEntry = tuple[float, float, int, str, Scope]


class RequestContext:
    """What the code serving one request knows of it (the value of :data:`current`)."""

    __slots__ = ("rejected", "request_id")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        #: A rejection of this request has been counted (it is counted once, see Metrics.reject).
        self.rejected = False


#: The request being served in this task (and the threads it starts through anyio), or ``None``.
current: ContextVar[RequestContext | None] = ContextVar("provenance_request", default=None)


def incoming_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The request's own ``X-Request-ID`` when it is acceptable (see the module docstring), else ``None``."""
    for name, value in headers:
        if name == _HEADER:
            return value.decode("ascii") if _REQUEST_ID.fullmatch(value) else None
    return None


_BADGE_BATCH: Final = (BADGE_PREFIX, BADGE_PREFIX + "/")
_BADGE_ONE: Final = BADGE_PREFIX + "/{ref}.{format}"


def route_name(scope: Scope) -> str:
    """The route template that answered (set by the router in ``scope``), the badge routes' own names
    (answered in front of the router), or ``unmatched``."""
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", "unmatched"))
    path: str = scope["path"]
    if path.startswith(BADGE_PREFIX):
        return BADGE_PREFIX if path in _BADGE_BATCH else _BADGE_ONE
    return "unmatched"


class RequestLog:
    """ASGI: gives every HTTP request an id (echoed as ``X-Request-ID``) and hands one
    :data:`AccessEntry` per request to ``access`` (``None``: no request lines, ids still set and echoed).

    Ids made here are this instance's random prefix and a counter (unique per process and start, and
    cheaper than 16 random bytes per request; a request id is no secret)."""

    def __init__(self, app: ASGIApp, access: Callable[[AccessEntry], None] | None) -> None:
        self.app = app
        self.access = access
        self._prefix = os.urandom(8).hex() + "-"
        self._counter = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = incoming_id(scope["headers"]) or f"{self._prefix}{next(self._counter):x}"
        header = (_HEADER, rid.encode("ascii"))
        context = RequestContext(rid)
        reset = current.set(context)
        if "state" not in scope:  # the auth dependency writes the token name here (Request.state)
            scope["state"] = {}
        status = 0

        def send_with_id(message: Message) -> Awaitable[None]:  # no coroutine of its own: send's is awaited
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # A copy: the badge path sends the same cached message to every request.
                message = {**message, "headers": [*message.get("headers", ()), header]}
            return send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            status = status or 500  # the server answers 500 when nothing was sent
            raise
        finally:
            current.reset(reset)
            if self.access is not None:
                self.access((time.time(), time.perf_counter() - start, status, rid, scope))
