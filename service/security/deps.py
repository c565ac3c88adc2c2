"""Role-checked callers, as typed dependency aliases for routes.

A route's dependencies run before its body is touched: a refused caller costs no upload parsing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service.deps import ContextDep
from service.problems import Problem
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
AdminDep = Annotated[Caller, Depends(require("admin"))]
