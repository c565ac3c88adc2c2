"""Operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from service import problems
from service.deps import ContextDep
from service.ops.metrics import Metrics, scrape_allowed
from service.problems import Problem
from service.store import queries
from service.store.errors import StorageError

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Storage and keys are usable", responses=problems.responses(503))
def readyz(request: Request, ctx: ContextDep) -> dict[str, str | int]:
    """Ready when the database answers and the blob store takes a write (not ready while it is full or
    read-only: uploads would fail). Says how many badge decisions this process holds (see ``badge_preload``)."""
    try:
        with ctx.session() as session:
            queries.ping(session)
    except Exception as exc:
        raise Problem(503, "not-ready", "Not ready", "the database is not reachable") from exc
    try:
        ctx.blobs.check_writable()  # a probe write, its answer reused for a second
    except StorageError as exc:
        problem = Problem(503, "not-ready", "Not ready", exc.detail)
        problem.headers["Retry-After"] = str(problems.STORAGE_RETRY_AFTER)
        raise problem from exc
    return {
        "status": "ready",
        "trust_fingerprint": ctx.trust.fingerprint,
        "cached_decisions": len(request.app.state.badges),
    }


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **problems.responses(401, 404)},
)
def metrics(request: Request, ctx: ContextDep, authorization: Annotated[str | None, Header()] = None) -> Response:
    """The metrics of this process: public, or only to ``Authorization: Bearer <metrics_token>`` when that is
    set; 404 when ``metrics_bind`` serves them on a separate address instead."""
    settings = ctx.settings
    if settings.metrics_bind:
        raise Problem(404, "not-found", "Not Found", "metrics are served on a separate address")
    registry: Metrics = request.app.state.metrics
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if not scrape_allowed(token, authorization):
        registry.reject("missing_token" if authorization is None else "bad_token")
        problem = Problem(401, "unauthorized", "Unauthorized", "send Authorization: Bearer <metrics_token>")
        problem.headers["WWW-Authenticate"] = "Bearer"
        raise problem
    return Response(registry.exposition(), media_type=CONTENT_TYPE_LATEST)
