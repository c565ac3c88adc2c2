"""RFC 9457 problem details: the one place where errors become HTTP responses.

Every problem has a stable ``type`` (``/problems/<kind>``), a short ``title``, the HTTP ``status`` and a
human ``detail``. Library errors map by class; nothing internal (tracebacks, paths) is ever sent, and a
5xx problem never carries the library's diagnostics (they are hints for the operator, who gets them in
the log). :class:`ProblemDetails` and :func:`responses` document the same answers in the OpenAPI.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from provenance import (
    InputError,
    InputTooLargeError,
    KeyMaterialError,
    ManifestError,
    ProvenanceError,
    SigningError,
    UnsupportedMediaError,
    UpstreamConflictError,
    VerificationError,
)
from provenance.display import visible
from provenance.errors import (
    ConfigurationError,
    InputTooComplexError,
    ParserBusyError,
    ParserUnavailableError,
    VersionConflictError,
)
from service.store.errors import StorageError, from_database_error

log = logging.getLogger("provenance.service")

MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error the service answers with a problem document."""

    def __init__(self, status: int, kind: str, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail, self.extra = status, kind, title, detail, extra
        self.headers: dict[str, str] = {}

    def response(self) -> ProblemResponse:
        body = {"type": f"/problems/{self.kind}", "title": self.title, "status": self.status, "detail": self.detail}
        response = ProblemResponse(
            {**body, **self.extra},
            status_code=self.status,
            media_type=MEDIA_TYPE,
            headers={"X-Content-Type-Options": "nosniff", **self.headers},
        )
        response.kind = self.kind
        return response


class ProblemResponse(JSONResponse):
    """A problem document, its ``kind`` kept for the rejection counters."""

    kind: str = "http-error"


class FieldError(BaseModel):
    """One part of a request that does not match the API."""

    loc: list[str | int] = Field(description="Where: body, query, path, header or declaration, then the field")
    msg: str
    allowed: list[str] | None = Field(
        default=None, description="The values (or, for an unknown field, the field names) that are accepted"
    )


class ProblemDetails(BaseModel):
    """RFC 9457 problem details: every error answer, as ``application/problem+json``."""

    model_config = ConfigDict(title="Problem", extra="allow")

    type: str = Field(
        description="Stable problem type, e.g. /problems/input-too-large", examples=["/problems/not-found"]
    )
    title: str = Field(description="Short summary of the problem type")
    status: int = Field(description="The HTTP status code")
    detail: str = Field(description="What went wrong with this request")
    errors: list[FieldError] | None = Field(default=None, description="For /problems/invalid-request: each mismatch")


_SCHEMA_REF = f"#/components/schemas/{ProblemDetails.__name__}"
_WHEN: dict[int, str] = {
    400: "Malformed request (bad multipart framing, unsupported parameter value)",
    401: "Missing or unknown token (`/problems/unauthorized`)",
    403: "The token lacks the role (`/problems/forbidden`)",
    404: "Unknown resource (`/problems/not-found`)",
    405: "Method not allowed (the `Allow` header lists the methods)",
    408: "The request body arrived too slowly (`/problems/request-timeout`)",
    409: "The declaration contradicts an AI claim upstream (`/problems/upstream-conflict`), or this article "
    "version is stored with other text (`/problems/version-conflict`)",
    413: "Body or file over its limit (`/problems/input-too-large`)",
    415: "Unsupported media type (`/problems/unsupported-media`)",
    422: "Invalid request or input (`/problems/invalid-request`, `input-error`, `manifest-error`, …)",
    429: "Rate limit reached (`Retry-After` says when to retry)",
    500: "Server-side failure (signing, key, internal); the operator has the details",
    503: "Not ready (database or blob storage unavailable), storage not writable (`/problems/storage-unavailable`: "
    "nothing was stored), or every parser busy (`Retry-After` says when to retry)",
    507: "The blob store or the database is full (`/problems/insufficient-storage`); nothing was stored",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries: each status answered with a :class:`ProblemDetails` document."""
    return {
        status: {"description": _WHEN[status], "content": {MEDIA_TYPE: {"schema": {"$ref": _SCHEMA_REF}}}}
        for status in statuses
    }


def openapi_schemas() -> dict[str, Any]:
    """The component schemas :func:`responses` refers to."""
    schema = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    nested: dict[str, Any] = schema.pop("$defs", {})
    return {ProblemDetails.__name__: schema, **nested}


# Most specific first.
_LIBRARY: list[tuple[type[ProvenanceError], int, str]] = [
    (UpstreamConflictError, 409, "Declaration contradicts an upstream AI claim"),
    (VersionConflictError, 409, "Version conflict"),
    (InputTooLargeError, 413, "Input too large"),
    (InputTooComplexError, 422, "Input too complex"),
    (UnsupportedMediaError, 415, "Unsupported media type"),
    (InputError, 422, "Input rejected"),
    (ManifestError, 422, "Malformed C2PA manifest"),
    (SigningError, 500, "Signing failed"),
    (VerificationError, 500, "Signed result did not verify"),
    (KeyMaterialError, 500, "Signing key unavailable"),
    (ConfigurationError, 500, "Service misconfigured"),
    (ParserBusyError, 503, "Parsers busy"),
    (ParserUnavailableError, 503, "Parsers unavailable"),
]

#: Seconds a client is told to wait when every isolated parser is busy.
BUSY_RETRY_AFTER = 5
#: Seconds a client is told to wait when storage does not accept writes (an operator has to act).
STORAGE_RETRY_AFTER = 30


def from_library(exc: ProvenanceError) -> Problem:
    """The problem answering ``exc``: 4xx with its diagnostics for the client's errors, 5xx without them."""
    status, title = next(((s, t) for cls, s, t in _LIBRARY if isinstance(exc, cls)), (500, "Provenance error"))
    if isinstance(exc, ParserBusyError):
        problem = Problem(status, exc.kind, title, "every parser is busy; try again shortly")
        problem.headers["Retry-After"] = str(BUSY_RETRY_AFTER)
        return problem
    if status >= 500:  # the diagnostics of a server-side failure are for the operator (logged), not the client
        return Problem(
            status, exc.kind, title, "the service could not complete this request; it is not a fault of the request"
        )
    return Problem(status, exc.kind, title, client_diagnostics(exc))


#: What an API client sends where the library's hints name a command-line flag (``provenance …``).
API_NAMES: Final = {
    "override-upstream": "`override_upstream` (in the declaration or the article payload)",
    "sidecar": "a `sidecar` part",
}
_FLAG: Final = re.compile(r"--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")


def client_diagnostics(exc: ProvenanceError) -> str:
    """``exc.diagnostics()`` in the API's words: no command-line flag, which an API client cannot pass.

    The library's hints are written for its command line (``--override-upstream``); a flag with an API
    counterpart (:data:`API_NAMES`) is named by it, a hint naming any other flag is left out, and a flag
    in the message itself becomes the field it stands for (``--x-y`` -> ``x_y``).
    """
    message = _FLAG.sub(lambda m: API_NAMES.get(m[1], f"`{m[1].replace('-', '_')}`"), exc.message)
    hint = exc.hint
    if hint and all(flag in API_NAMES for flag in _FLAG.findall(hint)):
        return f"{message} ({_FLAG.sub(lambda m: API_NAMES[m[1]], hint)})"
    return message


#: Mismatches listed in one problem, and named in its ``detail`` (a request can mismatch in many places).
MAX_FIELD_ERRORS: Final = 20
_NAMED_IN_DETAIL: Final = 3
_MAX_LOC_PART: Final = 80  # characters of one path element shown (a field name is the client's text)
_QUOTED: Final = re.compile(r"'((?:[^'\\]|\\.)*)'")
_WHERE: Final = {"query": "query parameter", "path": "path parameter", "header": "header", "body": "body field"}


def _loc_part(part: object) -> str | int:
    return part if isinstance(part, int) else visible(str(part))[:_MAX_LOC_PART]


def _allowed(error: Mapping[str, Any], fields: Collection[str]) -> list[str] | None:
    """The accepted values of an enum or literal mismatch; the known fields for an unknown one."""
    if error.get("type") in ("enum", "literal_error"):
        return _QUOTED.findall(str((error.get("ctx") or {}).get("expected", ""))) or None
    if error.get("type") == "extra_forbidden" and fields:
        return list(fields)
    return None


def _named(loc: list[str | int]) -> str:
    """``query parameter 'lang'``, ``declaration field 'source'``, ``body field 'file'``, …"""
    if not loc:
        return "the request"
    head, rest = loc[0], ".".join(str(part) for part in loc[1:])
    where = _WHERE.get(str(head), f"{head} field")
    return f"{where} '{rest}'" if rest else str(head)


def invalid(
    errors: Iterable[Mapping[str, Any]],
    *,
    kind: str = "invalid-request",
    title: str = "Invalid request",
    where: tuple[str, ...] = (),
    fields: Collection[str] = (),
) -> Problem:
    """A 422 naming each mismatch: where (``loc``, prefixed by ``where``), what is wrong, and the allowed
    values of an enum (or the known ``fields`` for an unknown field), in ``errors`` and, for the first few,
    in ``detail``. The client's input is never echoed (only field names, hidden characters named, cut);
    at most :data:`MAX_FIELD_ERRORS` are listed."""
    entries: list[dict[str, Any]] = []
    named: list[str] = []
    total = 0
    for error in errors:
        total += 1
        if len(entries) == MAX_FIELD_ERRORS:
            continue
        entry: dict[str, Any] = {
            "loc": [*where, *(_loc_part(part) for part in error.get("loc", ()))],
            "msg": str(error.get("msg", "")),
        }
        allowed = _allowed(error, fields)
        if allowed is not None:
            entry["allowed"] = allowed
        entries.append(entry)
        if len(named) < _NAMED_IN_DETAIL:
            said = f"{_named(entry['loc'])}: {entry['msg']}"
            named.append(f"{said} (allowed: {', '.join(allowed)})" if allowed else said)
    detail = "; ".join(named) or "the request does not match the API"
    if total > len(named):
        detail += f"; and {total - len(named)} more"
    return Problem(422, kind, title, detail, errors=entries)


def from_storage(exc: StorageError) -> Problem:
    """The problem answering a refused write: 507 when storage is full, 503 (with ``Retry-After``) otherwise."""
    problem = Problem(exc.status, exc.kind, exc.title, exc.detail)
    if exc.status == 503:
        problem.headers["Retry-After"] = str(STORAGE_RETRY_AFTER)
    return problem


def count_rejections(app: FastAPI, on_rejected: Callable[[str], None]) -> None:
    """Wrap every registered handler: each 4xx problem it answers calls ``on_rejected(kind)``, which counts a
    request once (a refusal already counted under a finer reason where it was decided, such as
    ``bad_token`` in service/security/deps.py, is not counted again). Call after the handlers are registered."""
    for key, handler in list(app.exception_handlers.items()):
        app.exception_handlers[key] = _counting(handler, on_rejected)


def _counting(handler: Callable[..., Any], on_rejected: Callable[[str], None]) -> Callable[..., Any]:
    async def counted(request: Request, exc: Exception) -> Any:
        response = handler(request, exc)
        if inspect.isawaitable(response):
            response = await response
        if isinstance(response, ProblemResponse) and 400 <= response.status_code < 500:
            on_rejected(response.kind)
        return response

    return counted


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""

    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> JSONResponse:
        return exc.response()

    @app.exception_handler(ProvenanceError)
    async def _library(_request: Request, exc: ProvenanceError) -> JSONResponse:
        problem = from_library(exc)
        if problem.status >= 500:
            log.error("provenance error: %s", exc.diagnostics())
        return problem.response()

    @app.exception_handler(StorageError)
    async def _storage(_request: Request, exc: StorageError) -> JSONResponse:
        log.error("storage refused a write: %s", exc.cause)  # the path and the system's words: operator only
        return from_storage(exc).response()

    @app.exception_handler(OperationalError)
    async def _database(_request: Request, exc: OperationalError) -> JSONResponse:
        # The database is unreachable, full, read-only or gave up a transaction (deadlock, serialization):
        # the request may be retried; it is not a fault of the request.
        storage = from_database_error(exc)
        if storage is not None:
            log.error("the database refused a write: %s", storage.cause)
            return from_storage(storage).response()
        log.error("database unavailable: %s", type(exc.orig).__name__)
        problem = Problem(503, "database-unavailable", "Database unavailable", "the database did not answer; retry")
        problem.headers["Retry-After"] = str(STORAGE_RETRY_AFTER)
        return problem.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid(exc.errors()).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {400: "bad-request", 404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        problem = Problem(exc.status_code, kind, str(exc.detail), str(exc.detail))
        problem.headers.update(exc.headers or {})  # 405 carries Allow
        return problem.response()

    @app.exception_handler(ClientDisconnect)
    async def _gone(_request: Request, _exc: ClientDisconnect) -> JSONResponse:
        # The client left mid-body (or the body guard cut it off): nobody reads this answer, and a
        # dropped upload must not cost a traceback in the log.
        return Problem(400, "client-disconnected", "Client disconnected", "the request body did not arrive").response()

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return Problem(500, "internal-error", "Internal error", "an unexpected error occurred").response()
