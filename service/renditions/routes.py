"""``GET /v1/assets/{id}/renditions/{width}.{jpg|webp}``: a signed rendition of a published asset.

Public like the asset's content, with the same answers: immutable bytes by digest (``ETag``), the asset's
CDN cache tags (purging the asset purges its renditions), a 307 to the object store with
``content_delivery = "redirect"``, and a 410 once the asset is withdrawn (checked before anything is served
or made).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import RedirectResponse

from provenance.renditions import Format
from service import problems
from service.cache import CONTENT_TAG, cache_tags
from service.deps import ContextDep
from service.records.lookup import GONE, blob_response, published_asset_row
from service.renditions.make import rendition_of

router = APIRouter(tags=["records"])

#: A width in a path: beyond this it is a 422 before any lookup (the configured widths are far below).
MAX_WIDTH = 100_000
Width = Annotated[int, Path(ge=1, le=MAX_WIDTH, description="Width in pixels, one of `rendition_widths`")]
RENDITION_ANSWERS = {
    **problems.responses(404, 409, 422),
    **GONE,
    307: {"description": "With `content_delivery = redirect`: a presigned URL"},
}


@router.get(
    "/v1/assets/{asset_id}/renditions/{width}.{fmt}",
    summary="A resized copy of the stamped image, signed with the original as its parentOf ingredient",
    description=(
        "JPEG (`.jpg`) or WebP (`.webp`), `width` pixels wide (one of the configured `rendition_widths`; never "
        "wider than the original), height in proportion. Its manifest records `c2pa.opened` of the original "
        "(kept with its manifest as the `parentOf` ingredient), `c2pa.resized` and, when the format changes, "
        "`c2pa.converted`; the original's labels carry over, and its badge is the asset's. Made on the first "
        "request, then served from storage (immutable). Public; a withdrawn asset answers 410."
    ),
    response_class=Response,
    responses=RENDITION_ANSWERS,
)
def get_rendition(request: Request, ctx: ContextDep, asset_id: str, width: Width, fmt: Format) -> Response:
    asset = published_asset_row(ctx, asset_id)
    row = rendition_of(ctx, asset, width, fmt)
    tags = cache_tags([asset.id], CONTENT_TAG)
    seconds = ctx.settings.presigned_url_seconds
    redirect = ctx.settings.content_delivery == "redirect"
    url = ctx.blobs.download_url(row.sha256, fmt.media_type, seconds) if redirect else None
    if url is not None:
        cache = {"Cache-Control": f"public, max-age={seconds // 2}", "X-Content-Type-Options": "nosniff"}
        return RedirectResponse(url, status_code=307, headers={**cache, **tags})
    return blob_response(request, ctx.blobs.get(row.sha256), fmt.media_type, row.sha256, **tags)
