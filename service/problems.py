"""RFC 9457 problem details: the one place where errors become HTTP responses.

Every problem has a stable ``type`` (``/problems/<kind>``), a short ``title``, the HTTP ``status`` and a
human ``detail``. Library errors map by class; nothing internal (tracebacks, paths) is ever sent.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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

log = logging.getLogger("provenance.service")

MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error the service answers with a problem document."""

    def __init__(self, status: int, kind: str, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail, self.extra = status, kind, title, detail, extra
        self.headers: dict[str, str] = {}

    def response(self) -> JSONResponse:
        body = {"type": f"/problems/{self.kind}", "title": self.title, "status": self.status, "detail": self.detail}
        return JSONResponse(
            {**body, **self.extra}, status_code=self.status, media_type=MEDIA_TYPE, headers=self.headers
        )


# Most specific first.
_LIBRARY: list[tuple[type[ProvenanceError], int, str]] = [
    (UpstreamConflictError, 409, "Declaration contradicts an upstream AI claim"),
    (InputTooLargeError, 413, "Input too large"),
    (UnsupportedMediaError, 415, "Unsupported media type"),
    (InputError, 422, "Input rejected"),
    (ManifestError, 422, "Malformed C2PA manifest"),
    (SigningError, 500, "Signing failed"),
    (VerificationError, 500, "Signed result did not verify"),
    (KeyMaterialError, 500, "Signing key unavailable"),
]


def from_library(exc: ProvenanceError) -> Problem:
    for cls, status, title in _LIBRARY:
        if isinstance(exc, cls):
            return Problem(status, exc.kind, title, exc.diagnostics())
    return Problem(500, exc.kind, "Provenance error", exc.diagnostics())


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

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return Problem(
            422, "invalid-request", "Invalid request", "the request does not match the API", errors=errors
        ).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return Problem(exc.status_code, kind, str(exc.detail), str(exc.detail)).response()

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return Problem(500, "internal-error", "Internal error", "an unexpected error occurred").response()
