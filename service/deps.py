"""FastAPI dependencies: the service context and role-checked callers (typed aliases for routes), and the
bounded reading of multipart uploads.

Order matters for uploads: a route's dependencies (authentication, role, rate limit) run before its
body is touched, so routes that take files declare no ``File``/``Form`` parameters (FastAPI would parse
those first) and call :func:`read_form` themselves.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import Depends, Header, Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from service.auth import Caller, audit_subject, authenticate
from service.context import ServiceContext
from service.problems import Problem
from service.store.db import AuditEvent

#: Bytes of one text field of a multipart form, held in memory (Starlette's default; a declaration is a few
#: hundred bytes, and its JSON is validated and bounded field by field afterwards).
MAX_FORM_FIELD_BYTES: Final = 1024 * 1024


log = logging.getLogger("provenance.service")


def get_context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ServiceContext, Depends(get_context)]


def _audit_refusal(request: Request, session: Session, caller: Caller | None, reason: str, role: str) -> None:
    """One audit row for this refusal, unless this minute's quota is spent (then it is only counted)."""
    record, closed = request.app.state.refusals.admit(reason)
    events = [closed.event()] if closed else []
    if record:
        events.append(
            AuditEvent(
                kind="auth_failure",
                token_id=caller.token_id if caller else None,
                subject=audit_subject(f"{request.method} {request.url.path}"),  # a path has any length
                detail={"reason": reason, "needed": role},
            )
        )
    if events:
        session.add_all(events)
        try:
            session.commit()
        except SQLAlchemyError as exc:  # a full or read-only database: the refusal is still answered
            session.rollback()
            request.app.state.metrics.audit_write_failures.inc()
            log.warning("could not write the audit row of a refusal (%s): %s", reason, type(exc).__name__)


def require(role: str) -> Callable[..., Caller]:
    """A dependency that admits callers with ``role`` (or admin) and records every refusal (bounded)."""

    def dependency(request: Request, ctx: ContextDep, authorization: Annotated[str | None, Header()] = None) -> Caller:
        with ctx.session() as session:
            caller = authenticate(session, authorization)
            if caller is None or not caller.may(role):
                reason = "missing token" if not authorization else ("bad token" if caller is None else "wrong role")
                request.app.state.metrics.rejections.labels(reason=reason.replace(" ", "_")).inc()  # exact
                _audit_refusal(request, session, caller, reason, role)
                if caller is None:
                    problem = Problem(
                        401, "unauthorized", "Unauthorized", f"{reason}: send Authorization: Bearer <token>"
                    )
                    problem.headers["WWW-Authenticate"] = "Bearer"
                    raise problem
                raise Problem(403, "forbidden", "Forbidden", f"this needs the {role} role")
        wait = ctx.rate_limiter.allow(caller.token_id)
        if wait:
            request.app.state.metrics.rejections.labels(reason="rate_limited").inc()
            problem = Problem(429, "rate-limited", "Too many requests", "slow down: per-token rate limit reached")
            problem.headers["Retry-After"] = str(max(1, math.ceil(min(wait, 86400))))
            raise problem
        return caller

    return dependency


NewsroomDep = Annotated[Caller, Depends(require("newsroom"))]
AuditorDep = Annotated[Caller, Depends(require("auditor"))]


@dataclass(frozen=True)
class UploadForm:
    """The parts of a multipart upload: file contents and text fields by part name."""

    files: dict[str, bytes]
    fields: dict[str, str]


def _missing(name: str, message: str = "Field required") -> Problem:
    return Problem(
        422,
        "invalid-request",
        "Invalid request",
        "the request does not match the API",
        errors=[{"loc": ["body", name], "msg": message}],
    )


async def _read_limited(upload: UploadFile, limit: int, what: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await upload.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            raise Problem(413, "input-too-large", "Input too large", f"{what} are limited to {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(
    request: Request,
    max_file_bytes: int,
    *,
    files: tuple[str, ...],
    fields: tuple[str, ...] = (),
    optional: frozenset[str] = frozenset(),
) -> UploadForm:
    """Read a multipart form with bounds: only the named parts, each once, each file at most
    ``max_file_bytes`` and each text field at most :data:`MAX_FORM_FIELD_BYTES`.

    Parts in ``optional`` may be missing; an optional file part with an empty file name is a file input
    left empty (browsers send those) and counts as missing. The whole body is bounded by the body guard
    (``service.app.BodyGuard``). Raises :class:`Problem`: 422 ``invalid-request`` for a missing,
    repeated or mistyped part, 413 for a file over the limit; malformed framing or parts beyond the
    expected number are 400 (Starlette's parser stops at the first one).
    """
    read_files: dict[str, bytes] = {}
    read_fields: dict[str, str] = {}
    # A text field may come as a file part (curl -F name=@file), so it counts towards both caps.
    caps = {"max_files": len(files) + len(fields), "max_fields": len(fields), "max_part_size": MAX_FORM_FIELD_BYTES}
    async with request.form(**caps) as form:
        for name in (*files, *fields):
            values = form.getlist(name)
            if len(values) > 1:
                raise _missing(name, "given more than once")
            value = values[0] if values else None
            if isinstance(value, UploadFile) and name in optional and not value.filename:
                value = None
            if value is None:
                if name not in optional:
                    raise _missing(name)
            elif name in files:
                if not isinstance(value, UploadFile):
                    raise _missing(name, "expected a file part")
                read_files[name] = await _read_limited(value, max_file_bytes, "uploads")
            elif isinstance(value, UploadFile):  # a text field sent as a file (curl -F name=@file)
                data = await _read_limited(value, MAX_FORM_FIELD_BYTES, "form fields")
                try:
                    read_fields[name] = data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _missing(name, "expected UTF-8 text") from exc
            else:
                read_fields[name] = value
    return UploadForm(read_files, read_fields)


def form_body(
    *, files: dict[str, str], fields: dict[str, str] | None = None, required: tuple[str, ...]
) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a form that a route reads itself with :func:`read_form`
    (parts by name, with their descriptions), for ``openapi_extra``."""
    binary = {"type": "string", "contentMediaType": "application/octet-stream"}
    properties: dict[str, Any] = {name: {**binary, "description": text} for name, text in files.items()}
    properties.update({name: {"type": "string", "description": text} for name, text in (fields or {}).items()})
    schema = {"type": "object", "required": list(required), "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


def public_base(ctx: ContextDep) -> str:
    """The base of the links in responses: the configured public URL, never the request's ``Host``
    (empty when unset: links are then absolute paths)."""
    return (ctx.settings.public_base_url or "").rstrip("/")


PublicBaseDep = Annotated[str, Depends(public_base)]
