"""The stored record: an asset or article version by id, the public downloads of its bytes, the finders
(``GET /v1/assets``, ``GET /v1/articles``) and withdrawals (see :mod:`service.records.find` and
:mod:`service.records.withdraw`).

Public bytes are streamed, or with ``content_delivery = "redirect"`` answered by a 307 to a presigned URL of
the object store; either way only after the withdrawal check (a withdrawn item is a 410, never a redirect),
and with the CDN cache tags that name the item (:func:`service.cache.cache_tags`).
"""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from service import problems
from service.cache import CONTENT_TAG, cache_tags
from service.context import ServiceContext
from service.deps import ContextDep, PublicBaseDep
from service.records import withdraw as withdrawals
from service.records.find import (
    ArticlePageDep,
    AssetPageDep,
    Withdrawals,
    find_articles,
    find_assets,
    found_article,
    found_asset,
)
from service.records.lookup import (
    GONE,
    Version,
    asset_row,
    blob_response,
    published_asset_row,
    published_version_row,
    withdrawal_of,
)
from service.records.schemas import ArticleFound, ArticlePage, AssetFound, AssetPage, AssetPublic, WithdrawRequest
from service.security.deps import AdminDep, NewsroomDep, ReaderDep

router = APIRouter(tags=["records"])
NOT_FOUND = problems.responses(404)
PUBLIC_BYTES = {**problems.responses(404), **GONE}
READ_ERRORS = {**problems.responses(404, 422), **GONE}
FIND_ERRORS = problems.responses(401, 403, 422, 429)
DECIDE_ERRORS = {**problems.responses(401, 403, 404, 422, 429), **withdrawals.CONFLICT}
PUBLIC_CONTENT = {**PUBLIC_BYTES, 307: {"description": "With `content_delivery = redirect`: a presigned URL"}}
VERSION_CONTENT = {**READ_ERRORS, **PUBLIC_CONTENT}


def content_response(
    request: Request, ctx: ServiceContext, item_id: str, digest: str, media_type: str, **headers: str
) -> Response:
    """The blob ``digest`` of a published item: a 307 to the store's own URL when ``content_delivery`` is
    ``redirect`` (cacheable for half the URL's life, so a cached redirect still leads somewhere), otherwise
    the bytes. The caller has already refused a withdrawn item."""
    tags = cache_tags([item_id], CONTENT_TAG)
    seconds = ctx.settings.presigned_url_seconds
    url = ctx.blobs.download_url(digest, media_type, seconds) if ctx.settings.content_delivery == "redirect" else None
    if url is not None:
        cache = {"Cache-Control": f"public, max-age={seconds // 2}", "X-Content-Type-Options": "nosniff"}
        return RedirectResponse(url, status_code=307, headers={**cache, **tags, **headers})
    return blob_response(request, ctx.blobs.get(digest), media_type, digest, **tags, **headers)


@router.get(
    "/v1/assets",
    summary="Find stamped images (filters, newest first, cursor pages)",
    description=(
        "Every filter given must hold. `since`/`until` bound the stamping time, half-open: "
        "`since <= stamped_at < until` (ISO 8601; a time without an offset is UTC). Order: newest first, "
        "id descending among equal times. `next_cursor` (opaque) gives the next page; `null` on the last. "
        "For newsroom, auditor and admin tokens."
    ),
    responses=FIND_ERRORS,
)
def list_assets(ctx: ContextDep, base: PublicBaseDep, _reader: ReaderDep, page: AssetPageDep) -> AssetPage:
    return find_assets(ctx, base, page)


@router.get(
    "/v1/articles",
    summary="Find stamped article versions (filters, newest first, cursor pages)",
    description=(
        "One item per stamped version (a correction is a new version). Filters, order and pages as for "
        "`GET /v1/assets` (order: newest first, then article id and version descending). For newsroom, "
        "auditor and admin tokens."
    ),
    responses=FIND_ERRORS,
)
def list_articles(ctx: ContextDep, base: PublicBaseDep, _reader: ReaderDep, page: ArticlePageDep) -> ArticlePage:
    return find_articles(ctx, base, page)


@router.post(
    "/v1/assets/{asset_id}/withdraw",
    summary="Withdraw an asset: its content and manifest answer 410, its badge shows nothing",
    description="Newsroom or admin. The `reason` is recorded with the token and the time in the audit log.",
    responses=DECIDE_ERRORS,
)
def withdraw_asset(
    ctx: ContextDep, base: PublicBaseDep, caller: NewsroomDep, asset_id: str, body: WithdrawRequest
) -> AssetFound:
    row = withdrawals.withdraw_asset(ctx, asset_id, body.reason, caller)
    return found_asset(base, row, Withdrawals.of(ctx, [row.id]))


@router.post(
    "/v1/assets/{asset_id}/reinstate",
    summary="Publish a withdrawn asset again",
    description="Admin only. The `reason` is recorded with the token and the time in the audit log.",
    responses=DECIDE_ERRORS,
)
def reinstate_asset(
    ctx: ContextDep, base: PublicBaseDep, caller: AdminDep, asset_id: str, body: WithdrawRequest
) -> AssetFound:
    row = withdrawals.reinstate_asset(ctx, asset_id, body.reason, caller)
    return found_asset(base, row, Withdrawals.of(ctx, [row.id]))


@router.post(
    "/v1/articles/{article_id}/withdraw",
    summary="Withdraw an article (every version): texts and manifests answer 410, its badge shows nothing",
    description="Newsroom or admin. Answers with the latest version. The `reason` is recorded in the audit log.",
    responses=DECIDE_ERRORS,
)
def withdraw_article(
    ctx: ContextDep, base: PublicBaseDep, caller: NewsroomDep, article_id: str, body: WithdrawRequest
) -> ArticleFound:
    row = withdrawals.withdraw_article(ctx, article_id, body.reason, caller)
    return found_article(base, row, Withdrawals.of(ctx, [row.article_id]))


@router.post(
    "/v1/articles/{article_id}/reinstate",
    summary="Publish a withdrawn article again",
    description="Admin only. Answers with the latest version. The `reason` is recorded in the audit log.",
    responses=DECIDE_ERRORS,
)
def reinstate_article(
    ctx: ContextDep, base: PublicBaseDep, caller: AdminDep, article_id: str, body: WithdrawRequest
) -> ArticleFound:
    row = withdrawals.reinstate_article(ctx, article_id, body.reason, caller)
    return found_article(base, row, Withdrawals.of(ctx, [row.article_id]))


@router.get("/v1/assets/{asset_id}", summary="The stored asset and its decision", responses=NOT_FOUND)
def get_asset(ctx: ContextDep, base: PublicBaseDep, asset_id: str) -> AssetPublic:
    row = asset_row(ctx, asset_id)
    return AssetPublic.of(base, row, withdrawal_of(ctx, row.id))  # a withdrawn one says since when


@router.get(
    "/v1/assets/{asset_id}/content", summary="The stamped bytes", response_class=Response, responses=PUBLIC_CONTENT
)
def get_content(request: Request, ctx: ContextDep, asset_id: str) -> Response:
    row = published_asset_row(ctx, asset_id)
    return content_response(request, ctx, row.id, row.stamped_sha256, row.media_type)


@router.get(
    "/v1/assets/{asset_id}/manifest.c2pa",
    summary="The embedded C2PA manifest store",
    response_class=Response,
    responses=PUBLIC_BYTES,
)
def get_manifest(request: Request, ctx: ContextDep, asset_id: str) -> Response:
    row = published_asset_row(ctx, asset_id)
    digest = hashlib.sha256(row.manifest).hexdigest()  # kept in the row, not in the blob store: always streamed
    return blob_response(request, row.manifest, "application/c2pa", digest, **cache_tags([row.id], CONTENT_TAG))


@router.get(
    "/v1/articles/{article_id}/v{version}.txt",
    summary="Canonical text of a version",
    response_class=Response,
    responses=VERSION_CONTENT,
)
def get_text(request: Request, ctx: ContextDep, article_id: str, version: Version) -> Response:
    row = published_version_row(ctx, article_id, version)
    manifest = f"/v1/articles/{article_id}/v{version}.c2pa"
    return content_response(
        request, ctx, row.article_id, row.text_sha256, "text/plain; charset=utf-8",
        Link=f'<{manifest}>; rel="c2pa-manifest"',
    )  # fmt: skip


@router.get(
    "/v1/articles/{article_id}/v{version}.c2pa",
    summary="Detached manifest of a version",
    response_class=Response,
    responses=VERSION_CONTENT,
)
def get_article_manifest(request: Request, ctx: ContextDep, article_id: str, version: Version) -> Response:
    row = published_version_row(ctx, article_id, version)
    return content_response(request, ctx, row.article_id, row.manifest_sha256, "application/c2pa")
