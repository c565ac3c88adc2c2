"""Operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from service import problems
from service.deps import ContextDep
from service.problems import Problem
from service.store.errors import StorageError

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Storage and keys are usable", responses=problems.responses(503))
def readyz(ctx: ContextDep) -> dict[str, str]:
    """Ready when the database answers and the blob store takes a write (not ready while it is full or
    read-only: uploads would fail)."""
    try:
        with ctx.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise Problem(503, "not-ready", "Not ready", "the database is not reachable") from exc
    try:
        ctx.blobs.check_writable()  # a probe write, its answer reused for a second
    except StorageError as exc:
        problem = Problem(503, "not-ready", "Not ready", exc.detail)
        problem.headers["Retry-After"] = str(problems.STORAGE_RETRY_AFTER)
        raise problem from exc
    return {"status": "ready", "trust_fingerprint": ctx.trust.fingerprint}


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    return PlainTextResponse(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
