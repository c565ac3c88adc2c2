"""The one body guard: every request body is bounded in size and in time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio

from service import problems

log = logging.getLogger("provenance.service")


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
