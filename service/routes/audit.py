"""Auditor endpoints: full verification reports (JSON or HTML) and stateless verification."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from provenance import Verdict, inspect
from provenance.articles import inspect_article, looks_like_payload, parse_payload
from service import problems
from service.deps import AuditorDep, ContextDep, form_body, read_form
from service.render import markup
from service.routes.articles import Version, version_row
from service.routes.assets import asset_row
from service.store.db import Token

router = APIRouter(tags=["audit"])
REPORT_ERRORS = problems.responses(401, 403, 404, 422, 429)
#: The verification form, documented by hand: the route reads it itself, after authentication.
VERIFY_BODY = form_body(
    files={"file": "The file to verify", "sidecar": "Detached manifest (.c2pa) of an article text or payload"},
    required=("file",),
)


def _stamped_by(ctx: ContextDep, token_id: int | None) -> dict[str, Any] | None:
    if token_id is None:
        return None
    with ctx.session() as session:
        token = session.get(Token, token_id)
    return {"token": token.name, "role": token.role} if token else None


def _render(request: Request, report: dict[str, Any]) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(html_report(report), headers=markup.security_headers(markup.DOCUMENT_CSP))
    return JSONResponse(report)


@router.get("/v1/assets/{asset_id}/report", summary="Full verification report of an asset", responses=REPORT_ERRORS)
def asset_report(request: Request, ctx: ContextDep, _auditor: AuditorDep, asset_id: str) -> Response:
    row = asset_row(ctx, asset_id)
    # The evidence as of now, not as stored.
    live = inspect(ctx.blobs.get(row.stamped_sha256), ctx.trust, limits=ctx.settings.limits)
    report = {
        "kind": "image",
        "id": row.id,
        "stored_decision": {"state": row.state, "labels": row.labels, "trust_fingerprint": row.trust_fingerprint},
        "verification": live.to_dict(),
        "upload": row.upstream,
        "declaration": row.declaration,
        "signer_chain": row.signer_chain,
        "stamped_at": row.created_at.isoformat(),
        "stamped_by": _stamped_by(ctx, row.token_id),
    }
    return _render(request, report)


@router.get(
    "/v1/articles/{article_id}/v{version}/report",
    summary="Full verification report of an article version",
    responses=REPORT_ERRORS,
)
def article_report(
    request: Request, ctx: ContextDep, _auditor: AuditorDep, article_id: str, version: Version
) -> Response:
    row = version_row(ctx, article_id, version)
    live = inspect(
        ctx.blobs.get(row.text_sha256),
        ctx.trust,
        sidecar=ctx.blobs.get(row.manifest_sha256),
        limits=ctx.settings.limits,
    )
    report = {
        "kind": "article",
        "id": row.article_id,
        "version": row.version,
        "external_id": row.external_id,
        "stored_decision": {"state": row.state, "labels": row.labels, "trust_fingerprint": row.trust_fingerprint},
        "verification": live.to_dict(),
        "signer_chain": row.signer_chain,
        "stamped_at": row.created_at.isoformat(),
        "stamped_by": _stamped_by(ctx, row.token_id),
    }
    return _render(request, report)


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


def verify_bytes(ctx: ContextDep, data: bytes, manifest: bytes | None, *, thumbnails: int = 0) -> Verdict:
    """Stateless verification of an upload: an article payload (with its manifest) or any file.

    With ``thumbnails`` > 0, a file's manifest-store thumbnails come with the verdict (one read).
    """
    limits = ctx.settings.limits
    if manifest is not None and looks_like_payload(data):
        return inspect_article(parse_payload(data), manifest, ctx.trust, limits=limits)
    return inspect(data, ctx.trust, sidecar=manifest, limits=limits, thumbnails=thumbnails)


def _rows(value: Any, depth: int = 0) -> str:
    if isinstance(value, dict):
        inner = "".join(f"<tr><th>{markup.text(k)}</th><td>{_rows(v, depth + 1)}</td></tr>" for k, v in value.items())
        return f"<table>{inner}</table>"
    if isinstance(value, list):
        return "<ol>" + "".join(f"<li>{_rows(v, depth + 1)}</li>" for v in value) + "</ol>" if value else "—"
    return markup.text("" if value is None else value)


def html_report(report: dict[str, Any]) -> str:
    """A plain, script-free HTML rendering of a report (every key and value through :func:`markup.text`)."""
    title = f"Verification report: {report.get('id', 'file')}"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{markup.text(title)}</title></head>'
        f"<body><h1>{markup.text(title)}</h1>{_rows(report)}</body></html>"
    )
