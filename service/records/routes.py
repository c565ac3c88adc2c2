"""The stored record: an asset or article version by id, and the public downloads of its bytes."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request, Response

from service import problems
from service.deps import ContextDep, PublicBaseDep
from service.records.lookup import Version, asset_row, blob_response, version_row
from service.records.schemas import AssetPublic

router = APIRouter(tags=["records"])
NOT_FOUND = problems.responses(404)
READ_ERRORS = problems.responses(404, 422)


@router.get("/v1/assets/{asset_id}", summary="The stored asset and its decision", responses=NOT_FOUND)
def get_asset(ctx: ContextDep, base: PublicBaseDep, asset_id: str) -> AssetPublic:
    return AssetPublic.of(base, asset_row(ctx, asset_id))


@router.get("/v1/assets/{asset_id}/content", summary="The stamped bytes", response_class=Response, responses=NOT_FOUND)
def get_content(request: Request, ctx: ContextDep, asset_id: str) -> Response:
    row = asset_row(ctx, asset_id)
    return blob_response(request, ctx.blobs.get(row.stamped_sha256), row.media_type, row.stamped_sha256)


@router.get(
    "/v1/assets/{asset_id}/manifest.c2pa",
    summary="The embedded C2PA manifest store",
    response_class=Response,
    responses=NOT_FOUND,
)
def get_manifest(request: Request, ctx: ContextDep, asset_id: str) -> Response:
    row = asset_row(ctx, asset_id)
    return blob_response(request, row.manifest, "application/c2pa", hashlib.sha256(row.manifest).hexdigest())


@router.get(
    "/v1/articles/{article_id}/v{version}.txt",
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
    "/v1/articles/{article_id}/v{version}.c2pa",
    summary="Detached manifest of a version",
    response_class=Response,
    responses=READ_ERRORS,
)
def get_article_manifest(request: Request, ctx: ContextDep, article_id: str, version: Version) -> Response:
    row = version_row(ctx, article_id, version)
    return blob_response(request, ctx.blobs.get(row.manifest_sha256), "application/c2pa", row.manifest_sha256)
