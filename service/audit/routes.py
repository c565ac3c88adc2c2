"""Auditor endpoints: full verification reports (JSON or HTML) and stateless verification."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from service import markup, problems
from service.audit import reports
from service.audit.verify import VERIFY_BODY, verify_bytes
from service.deps import ContextDep
from service.ingest.forms import read_form
from service.records.lookup import Version, asset_row, version_row
from service.security.deps import AuditorDep

router = APIRouter(tags=["audit"])
REPORT_ERRORS = problems.responses(401, 403, 404, 422, 429)


def _render(request: Request, report: dict[str, Any]) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(reports.html_report(report), headers=markup.security_headers(markup.DOCUMENT_CSP))
    return JSONResponse(report)


@router.get("/v1/assets/{asset_id}/report", summary="Full verification report of an asset", responses=REPORT_ERRORS)
def asset_report(request: Request, ctx: ContextDep, _auditor: AuditorDep, asset_id: str) -> Response:
    return _render(request, reports.asset_report(ctx, asset_row(ctx, asset_id)))


@router.get(
    "/v1/articles/{article_id}/v{version}/report",
    summary="Full verification report of an article version",
    responses=REPORT_ERRORS,
)
def article_report(
    request: Request, ctx: ContextDep, _auditor: AuditorDep, article_id: str, version: Version
) -> Response:
    return _render(request, reports.article_report(ctx, version_row(ctx, article_id, version)))


@router.post(
    "/v1/verify",
    summary="Verify any file (optionally with a detached manifest); nothing is stored",
    openapi_extra=VERIFY_BODY,
    responses=problems.responses(400, 401, 403, 408, 413, 415, 422, 429),
)
async def verify(request: Request, ctx: ContextDep, _auditor: AuditorDep) -> Response:
    form = await read_form(
        request, ctx.settings.max_upload_bytes, files=("file", "sidecar"), optional=frozenset({"sidecar"})
    )
    data, manifest = form.files["file"], form.files.get("sidecar")
    verdict = await run_in_threadpool(verify_bytes, ctx, data, manifest)
    return _render(request, verdict.to_dict())
