"""Operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from service import problems
from service.deps import ContextDep
from service.problems import Problem

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Storage and keys are usable", responses=problems.responses(503))
def readyz(ctx: ContextDep) -> dict[str, str]:
    try:
        with ctx.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise Problem(503, "not-ready", "Not ready", "the database is not reachable") from exc
    if not ctx.settings.blob_dir.is_dir():
        raise Problem(503, "not-ready", "Not ready", "the blob directory is missing")
    return {"status": "ready", "trust_fingerprint": ctx.trust.fingerprint}


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    return PlainTextResponse(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
