"""Public lookups' rate limit: per client address, counted across every process (no token involved)."""

from __future__ import annotations

import logging
import math
import zlib
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.exc import SQLAlchemyError

from service.deps import ContextDep
from service.problems import Problem

log = logging.getLogger("provenance.service")


def public_match_limit(request: Request, ctx: ContextDep) -> None:
    """Raise the 429 problem when this client address is over ``match_per_minute`` (counted across every
    process, before the body is read; a counter the database cannot update admits the request, logged)."""
    client = request.client.host if request.client else "unknown"
    try:
        wait = ctx.match_limiter.allow(zlib.crc32(client.encode()))
    except SQLAlchemyError as exc:
        log.warning("rate limit not checked: the counter could not be updated (%s)", type(exc).__name__)
        return
    if wait:
        request.app.state.metrics.reject("rate_limited")
        problem = Problem(429, "rate-limited", "Too many requests", "slow down: fingerprint lookups per address")
        problem.headers["Retry-After"] = str(max(1, math.ceil(min(wait, 86400))))
        raise problem


#: A public fingerprint lookup, rate-limited per client address (``match_per_minute``).
MatchLimitDep = Annotated[None, Depends(public_match_limit)]
