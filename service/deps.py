"""FastAPI dependencies: the service context and role-checked callers (typed aliases for routes)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request

from service.auth import Caller, authenticate
from service.context import ServiceContext
from service.problems import Problem
from service.store.db import AuditEvent


def get_context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ServiceContext, Depends(get_context)]


def require(role: str) -> Callable[..., Caller]:
    """A dependency that admits callers with ``role`` (or admin) and records every refusal."""

    def dependency(request: Request, ctx: ContextDep, authorization: Annotated[str | None, Header()] = None) -> Caller:
        with ctx.session() as session:
            caller = authenticate(session, authorization)
            if caller is None or not caller.may(role):
                reason = "missing token" if not authorization else ("bad token" if caller is None else "wrong role")
                session.add(
                    AuditEvent(
                        kind="auth_failure",
                        token_id=caller.token_id if caller else None,
                        subject=f"{request.method} {request.url.path}",
                        detail={"reason": reason, "needed": role},
                    )
                )
                session.commit()
                request.app.state.metrics.rejections.labels(reason=reason.replace(" ", "_")).inc()
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
