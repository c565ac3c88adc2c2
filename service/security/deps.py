"""Role-checked callers, as typed dependency aliases for routes.

A route's dependencies run before its body is touched: a refused caller costs no upload parsing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Header, Query, Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service.context import ServiceContext
from service.deps import ContextDep
from service.problems import Problem
from service.security import sessions
from service.security.public import enforce
from service.security.sessions import Viewer
from service.security.tokens import Caller, audit_subject, authenticate
from service.store.db import AuditEvent

log = logging.getLogger("provenance.service")


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


def _within_rate(request: Request, ctx: ServiceContext, caller: Caller) -> None:
    """Raise the 429 problem when ``caller``'s token is over its rate limit (counted across every process)."""
    enforce(request, ctx.rate_limiter, caller.token_id, "slow down: per-token rate limit reached")


def require(role: str, *others: str) -> Callable[..., Caller]:
    """A dependency that admits callers with ``role`` or one of ``others`` (or admin) and records every
    refusal (bounded)."""
    roles = (role, *others)

    def dependency(request: Request, ctx: ContextDep, authorization: Annotated[str | None, Header()] = None) -> Caller:
        with ctx.session() as session:
            caller = authenticate(session, authorization)
            request.state.token_name = caller.name if caller else None  # the request's log line names it
            if caller is None or not any(caller.may(r) for r in roles):
                reason = "missing token" if not authorization else ("bad token" if caller is None else "wrong role")
                request.app.state.metrics.reject(reason.replace(" ", "_"))  # the exact reason, counted once
                _audit_refusal(request, session, caller, reason, ",".join(roles))
                if caller is None:
                    problem = Problem(
                        401, "unauthorized", "Unauthorized", f"{reason}: send Authorization: Bearer <token>"
                    )
                    problem.headers["WWW-Authenticate"] = "Bearer"
                    raise problem
                needed = f"the {role} role" if not others else f"one of the roles {', '.join(roles)}"
                raise Problem(403, "forbidden", "Forbidden", f"this needs {needed}")
        _within_rate(request, ctx, caller)
        return caller

    return dependency


NewsroomDep = Annotated[Caller, Depends(require("newsroom"))]
AuditorDep = Annotated[Caller, Depends(require("auditor"))]
AdminDep = Annotated[Caller, Depends(require("admin"))]
#: Any token holder: newsroom, auditor or admin (the finders).
ReaderDep = Annotated[Caller, Depends(require("newsroom", "auditor"))]


def record_refusal(request: Request, ctx: ServiceContext, caller: Caller | None, reason: str, role: str) -> None:
    """Count and audit (bounded) a refusal decided outside :func:`require` (a browser sign-in, a session)."""
    request.app.state.metrics.reject(reason.replace(" ", "_"))
    with ctx.session() as session:
        _audit_refusal(request, session, caller, reason, role)


def _sign_in_first(request: Request, why: str) -> Problem:
    """A browser without (valid) credentials is sent to the sign-in form, which brings it back here."""
    problem = Problem(303, "sign-in-required", "Sign in required", "sign in at /signin to open this page")
    query = urlencode({"next": request.url.path, **({"why": why} if why else {})})
    problem.headers["Location"] = f"/signin?{query}"
    return problem


def require_view(role: str) -> Callable[..., Viewer]:
    """A dependency for pages an auditor opens in a browser: a bearer token (exactly as :func:`require`),
    else a signed link for this very path (``?link=``), else a session cookie. Refusals are counted and
    audited; a browser (``Accept: text/html``) is sent to ``/signin`` (303), an API client gets 401."""
    bearer = require(role)

    def dependency(
        request: Request,
        ctx: ContextDep,
        authorization: Annotated[str | None, Header()] = None,
        link: Annotated[
            str | None, Query(max_length=200, description="A signed link's value (POST …/report-link mints one)")
        ] = None,
    ) -> Viewer:
        if authorization:
            return Viewer(bearer(request, ctx, authorization), "bearer")
        cookie = sessions.session_cookie(request.cookies)
        with ctx.session() as session:
            if link is not None:
                viewer = sessions.link_viewer(ctx.settings, session, request.url.path, link, role)
                reason, why = "bad link", "link"
            elif cookie is not None:
                viewer = sessions.session_viewer(ctx.settings, session, cookie, role)
                reason, why = "bad session", "expired"
            else:
                viewer, reason, why = None, "missing token", ""
        if viewer is None:
            record_refusal(request, ctx, None, reason, role)
            if "text/html" in request.headers.get("accept", ""):
                raise _sign_in_first(request, why)
            problem = Problem(401, "unauthorized", "Unauthorized", f"{reason}: send Authorization: Bearer <token>")
            problem.headers["WWW-Authenticate"] = "Bearer"
            raise problem
        _within_rate(request, ctx, viewer.caller)
        return viewer

    return dependency


#: An auditor (or admin) by bearer token, signed report link or browser session.
AuditorViewDep = Annotated[Viewer, Depends(require_view("auditor"))]
