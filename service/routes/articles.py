"""Newsroom article hook, and the public canonical text and manifest downloads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from provenance.articles import MAX_PAYLOAD, MAX_VERSION
from service import problems
from service.badges import ARTICLE_ID
from service.deps import ContextDep, NewsroomDep, PublicBaseDep
from service.ingest import ingest_article
from service.problems import Problem
from service.routes.assets import blob_response
from service.store.db import ArticleVersion

router = APIRouter(prefix="/v1/articles", tags=["articles"])

#: A version number in a path: out of range (0, negative, beyond 32 bits) is a 422, never a database error.
Version = Annotated[int, Path(ge=1, le=MAX_VERSION, description="The version number (1, 2, …)")]
READ_ERRORS = problems.responses(404, 422)


def article_links(base: str, row: ArticleVersion) -> dict[str, str]:
    """The version's links under ``base`` (the public base URL, or empty for absolute paths)."""
    version = f"{base}/v1/articles/{row.article_id}/v{row.version}"
    return {
        "text": f"{version}.txt",
        "manifest": f"{version}.c2pa",
        "report": f"{version}/report",
        "badge_svg": f"{base}/v1/badges/{row.article_id}.svg",
        "badge_json": f"{base}/v1/badges/{row.article_id}.json",
    }


def article_public(base: str, row: ArticleVersion) -> dict[str, Any]:
    return {
        "id": row.article_id,
        "version": row.version,
        "external_id": row.external_id,
        "sha256": row.text_sha256,
        "state": row.state,
        "labels": row.labels,
        "created_at": row.created_at.isoformat(),
        "links": article_links(base, row),
    }


ARTICLE_BODY = {
    "requestBody": {
        "required": True,
        "description": f"The CMS article payload (JSON, at most {MAX_PAYLOAD} bytes)",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


@router.post(
    "",
    status_code=201,
    summary="Stamp an article payload (a new version becomes a correction)",
    openapi_extra=ARTICLE_BODY,
    responses=problems.responses(401, 403, 408, 409, 413, 422, 429, 503, 507),
)
async def post_article(
    request: Request, response: Response, ctx: ContextDep, base: PublicBaseDep, caller: NewsroomDep
) -> dict[str, Any]:
    # Bounded while it streams: the body guard (service.app) refuses past MAX_PAYLOAD with a 413.
    body = await request.body()
    result = await run_in_threadpool(ingest_article, ctx, body, caller)
    if result.created:
        for label in result.row.labels or ["none"]:
            request.app.state.metrics.stamps.labels(kind="article", label=label).inc()
    else:
        response.status_code = 200
    return article_public(base, result.row)


def version_row(ctx: ContextDep, article_id: str, version: int) -> ArticleVersion:
    """The stored version, or a 404 problem; an id of any other form than the service's never reaches the
    database (``version`` is bounded by :data:`Version`)."""
    if not ARTICLE_ID.fullmatch(article_id):
        raise Problem(404, "not-found", "Unknown article version", "not an article id (art_ and 24 hex digits)")
    with ctx.session() as session:
        row = session.get(ArticleVersion, (article_id, version))
    if row is None:
        raise Problem(404, "not-found", "Unknown article version", f"no version {version} of {article_id}")
    return row


@router.get(
    "/{article_id}/v{version}.txt",
    summary="Canonical text of a version",
    response_class=Response,
    responses=READ_ERRORS,
)
def get_text(request: Request, ctx: ContextDep, article_id: str, version: Version) -> Response:
    row = version_row(ctx, article_id, version)
    manifest = f"/v1/articles/{article_id}/v{version}.c2pa"
    return blob_response(
        request, ctx.blobs.get(row.text_sha256), "text/plain; charset=utf-8", row.text_sha256,
        Link=f'<{manifest}>; rel="c2pa-manifest"',
    )  # fmt: skip


@router.get(
    "/{article_id}/v{version}.c2pa",
    summary="Detached manifest of a version",
    response_class=Response,
    responses=READ_ERRORS,
)
def get_article_manifest(request: Request, ctx: ContextDep, article_id: str, version: Version) -> Response:
    row = version_row(ctx, article_id, version)
    return blob_response(request, ctx.blobs.get(row.manifest_sha256), "application/c2pa", row.manifest_sha256)
