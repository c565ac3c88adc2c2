"""Newsroom upload hooks for images, and the public content and manifest downloads."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from provenance.articles import MAX_EXTERNAL_ID
from provenance.stamp import Source
from service import problems
from service.badges import ASSET_ID
from service.deps import ContextDep, NewsroomDep, PublicBaseDep, form_body, read_form
from service.ingest import Declaration, ingest_asset
from service.problems import Problem
from service.render import markup
from service.store.db import MAX_IDEMPOTENCY_KEY, Asset

router = APIRouter(prefix="/v1/assets", tags=["assets"])

DECLARATION_HELP = "JSON: source, title?, credit?, external_id?, override_upstream?"
#: The upload form, documented by hand: the route reads it itself, after authentication.
UPLOAD_BODY = form_body(
    files={"file": "The image"}, fields={"declaration": DECLARATION_HELP}, required=("file", "declaration")
)


class DeclarationIn(BaseModel):
    """The ``declaration`` part of an upload."""

    model_config = {"extra": "forbid"}

    source: Source
    title: str | None = Field(default=None, max_length=512)
    credit: str | None = Field(default=None, max_length=512)
    external_id: str | None = Field(default=None, max_length=MAX_EXTERNAL_ID)  # pairs the image with an article
    override_upstream: str | None = Field(default=None, max_length=2000)


#: The ``Idempotency-Key`` header, stored with the asset: it must fit ``assets.idempotency_key`` and hold no
#: control character (PostgreSQL cannot store a NUL). A key that does not is refused before the body is read
#: with 422 ``/problems/invalid-request`` whose ``errors`` name the header, like every other value that does
#: not match the API (400 is kept for requests that cannot even be parsed, such as broken multipart framing).
IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=MAX_IDEMPOTENCY_KEY,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description=f"Replays the first answer for the same key (at most {MAX_IDEMPOTENCY_KEY} characters)",
    ),
]


def links(base: str, asset_id: str) -> dict[str, str]:
    """The asset's links under ``base`` (the public base URL, or empty for absolute paths)."""
    return {
        "self": f"{base}/v1/assets/{asset_id}",
        "content": f"{base}/v1/assets/{asset_id}/content",
        "manifest": f"{base}/v1/assets/{asset_id}/manifest.c2pa",
        "badge_svg": f"{base}/v1/badges/{asset_id}.svg",
        "badge_json": f"{base}/v1/badges/{asset_id}.json",
        "report": f"{base}/v1/assets/{asset_id}/report",
    }


def asset_public(base: str, row: Asset) -> dict[str, Any]:
    return {
        "id": row.id,
        "sha256": row.upload_sha256,
        "stamped_sha256": row.stamped_sha256,
        "media_type": row.media_type,
        "state": row.state,
        "labels": row.labels,
        "declaration": row.declaration,
        "created_at": row.created_at.isoformat(),
        "links": links(base, row.id),
    }


@router.post(
    "",
    status_code=201,
    summary="Upload an image: inspect, stamp, store",
    openapi_extra=UPLOAD_BODY,
    responses=problems.responses(400, 401, 403, 408, 409, 413, 415, 422, 429, 503, 507),
)
async def upload_asset(
    request: Request,
    response: Response,
    ctx: ContextDep,
    base: PublicBaseDep,
    caller: NewsroomDep,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    form = await read_form(request, ctx.settings.max_upload_bytes, files=("file",), fields=("declaration",))
    try:
        declared = DeclarationIn.model_validate(json.loads(form.fields["declaration"]))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise Problem(422, "invalid-declaration", "Invalid declaration", str(exc).splitlines()[0]) from exc
    except RecursionError as exc:
        raise Problem(
            422, "invalid-declaration", "Invalid declaration", "the declaration is nested too deeply"
        ) from exc
    result = await run_in_threadpool(
        ingest_asset, ctx, form.files["file"], Declaration(**declared.model_dump()), caller, idempotency_key
    )
    metrics = request.app.state.metrics
    if result.created:
        for label in result.row.labels or ["none"]:
            metrics.stamps.labels(kind="image", label=label).inc()
    else:
        response.status_code = 200
    response.headers["Location"] = links(base, result.row.id)["self"]
    return asset_public(base, result.row)


def asset_row(ctx: ContextDep, asset_id: str) -> Asset:
    """The stored asset, or a 404 problem; an id of any other form than the service's never reaches the database."""
    if not ASSET_ID.fullmatch(asset_id):
        raise Problem(404, "not-found", "Unknown asset", "not an asset id (img_ and 24 hex digits)")
    with ctx.session() as session:
        row = session.get(Asset, asset_id)
    if row is None:
        raise Problem(404, "not-found", "Unknown asset", f"no asset {asset_id}")
    return row


def blob_response(request: Request, data: bytes, media_type: str, digest: str, **headers: str) -> Response:
    """Stored bytes, immutable by digest; never run as a document (:data:`markup.DOWNLOAD_CSP`, nosniff)."""
    etag = f'"{digest}"'
    common = {"ETag": etag, "Cache-Control": "public, max-age=31536000, immutable",
              **markup.security_headers(markup.DOWNLOAD_CSP)}  # fmt: skip
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers={**common, **headers})
    return Response(data, media_type=media_type, headers={**common, **headers})


NOT_FOUND = problems.responses(404)


@router.get("/{asset_id}", summary="The stored asset and its decision", responses=NOT_FOUND)
def get_asset(ctx: ContextDep, base: PublicBaseDep, asset_id: str) -> dict[str, Any]:
    return asset_public(base, asset_row(ctx, asset_id))


@router.get("/{asset_id}/content", summary="The stamped bytes", response_class=Response, responses=NOT_FOUND)
def get_content(request: Request, ctx: ContextDep, asset_id: str) -> Response:
    row = asset_row(ctx, asset_id)
    return blob_response(request, ctx.blobs.get(row.stamped_sha256), row.media_type, row.stamped_sha256)


@router.get(
    "/{asset_id}/manifest.c2pa",
    summary="The embedded C2PA manifest store",
    response_class=Response,
    responses=NOT_FOUND,
)
def get_manifest(request: Request, ctx: ContextDep, asset_id: str) -> Response:
    row = asset_row(ctx, asset_id)
    return blob_response(request, row.manifest, "application/c2pa", hashlib.sha256(row.manifest).hexdigest())
