"""Rate limits as 429 answers: the per-token one of :mod:`service.security.deps`, and the public lookups'
per client address (no token involved); both counted across every process."""

from __future__ import annotations

import logging
import math
import zlib
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.exc import SQLAlchemyError

from service.deps import ContextDep
from service.problems import Problem
from service.security.limits import RateLimiter

log = logging.getLogger("provenance.service")


def enforce(request: Request, limiter: RateLimiter, key: int | str, detail: str) -> None:
    """Raise the 429 problem (with ``Retry-After``) when ``key`` is over ``limiter``'s rate (counted across
    every process; a counter the database cannot update admits the request, logged)."""
    try:
        wait = limiter.allow(key)
    except SQLAlchemyError as exc:
        log.warning("rate limit not checked: the counter could not be updated (%s)", type(exc).__name__)
        return
    if wait:
        request.app.state.metrics.reject("rate_limited")
        problem = Problem(429, "rate-limited", "Too many requests", detail)
        problem.headers["Retry-After"] = str(max(1, math.ceil(min(wait, 86400))))
        raise problem


def public_match_limit(request: Request, ctx: ContextDep) -> None:
    """The 429 problem when this client address is over ``match_per_minute`` (before the body is read)."""
    client = request.client.host if request.client else "unknown"
    enforce(request, ctx.match_limiter, zlib.crc32(client.encode()), "slow down: fingerprint lookups per address")


#: A public fingerprint lookup, rate-limited per client address (``match_per_minute``).
MatchLimitDep = Annotated[None, Depends(public_match_limit)]
