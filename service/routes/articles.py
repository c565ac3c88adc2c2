"""Newsroom article hook, and the public canonical text and manifest downloads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from service.deps import ContextDep, NewsroomDep
from service.ingest import ingest_article
from service.problems import Problem
from service.routes.assets import blob_response
from service.store.db import ArticleVersion

router = APIRouter(prefix="/v1/articles", tags=["articles"])

MAX_ARTICLE_BYTES = 5 * 1024 * 1024


def article_links(request: Request, row: ArticleVersion) -> dict[str, str]:
    base = f"{str(request.base_url).rstrip('/')}/v1/articles/{row.article_id}/v{row.version}"
    return {
        "text": f"{base}.txt",
        "manifest": f"{base}.c2pa",
        "report": f"{base}/report",
        "badge_svg": f"{str(request.base_url).rstrip('/')}/v1/badges/{row.article_id}.svg",
        "badge_json": f"{str(request.base_url).rstrip('/')}/v1/badges/{row.article_id}.json",
    }


def article_public(request: Request, row: ArticleVersion) -> dict[str, Any]:
    return {
        "id": row.article_id,
        "version": row.version,
        "external_id": row.external_id,
        "sha256": row.text_sha256,
        "state": row.state,
        "labels": row.labels,
        "created_at": row.created_at.isoformat(),
        "links": article_links(request, row),
    }


@router.post("", status_code=201, summary="Stamp an article payload (a new version becomes a correction)")
async def post_article(request: Request, response: Response, ctx: ContextDep, caller: NewsroomDep) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_ARTICLE_BYTES:
        raise Problem(
            413, "input-too-large", "Input too large", f"article payloads are limited to {MAX_ARTICLE_BYTES} bytes"
        )
    result = await run_in_threadpool(ingest_article, ctx, body, caller)
    if result.created:
        for label in result.row.labels or ["none"]:
            request.app.state.metrics.stamps.labels(kind="article", label=label).inc()
    else:
        response.status_code = 200
    return article_public(request, result.row)


def version_row(ctx: ContextDep, article_id: str, version: int) -> ArticleVersion:
    with ctx.session() as session:
        row = session.get(ArticleVersion, (article_id, version))
    if row is None:
        raise Problem(404, "not-found", "Unknown article version", f"no version {version} of {article_id}")
    return row


@router.get("/{article_id}/v{version}.txt", summary="Canonical text of a version", response_class=Response)
def get_text(request: Request, ctx: ContextDep, article_id: str, version: int) -> Response:
    row = version_row(ctx, article_id, version)
    manifest = f"/v1/articles/{article_id}/v{version}.c2pa"
    return blob_response(
        request, ctx.blobs.get(row.text_sha256), "text/plain; charset=utf-8", row.text_sha256,
        Link=f'<{manifest}>; rel="c2pa-manifest"',
    )  # fmt: skip


@router.get("/{article_id}/v{version}.c2pa", summary="Detached manifest of a version", response_class=Response)
def get_article_manifest(request: Request, ctx: ContextDep, article_id: str, version: int) -> Response:
    row = version_row(ctx, article_id, version)
    return blob_response(request, ctx.blobs.get(row.manifest_sha256), "application/c2pa", row.manifest_sha256)
