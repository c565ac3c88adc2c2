"""Stored items by the ids in a path, or a 404 problem; and stored bytes as immutable downloads."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request, Response

from provenance.articles import MAX_VERSION
from service import markup
from service.context import ServiceContext
from service.problems import Problem
from service.store import queries
from service.store.db import ArticleVersion, Asset
from service.store.ids import ARTICLE_ID, ASSET_ID

#: A version number in a path: out of range (0, negative, beyond 32 bits) is a 422, never a database error.
Version = Annotated[int, Path(ge=1, le=MAX_VERSION, description="The version number (1, 2, …)")]


def asset_row(ctx: ServiceContext, asset_id: str) -> Asset:
    """The stored asset, or a 404 problem; an id of any other form than the service's never reaches the database."""
    if not ASSET_ID.fullmatch(asset_id):
        raise Problem(404, "not-found", "Unknown asset", "not an asset id (img_ and 24 hex digits)")
    with ctx.session() as session:
        row = queries.asset(session, asset_id)
    if row is None:
        raise Problem(404, "not-found", "Unknown asset", f"no asset {asset_id}")
    return row


def version_row(ctx: ServiceContext, article_id: str, version: int) -> ArticleVersion:
    """The stored version, or a 404 problem; an id of any other form than the service's never reaches the
    database (``version`` is bounded by :data:`Version`)."""
    if not ARTICLE_ID.fullmatch(article_id):
        raise Problem(404, "not-found", "Unknown article version", "not an article id (art_ and 24 hex digits)")
    with ctx.session() as session:
        row = queries.version(session, article_id, version)
    if row is None:
        raise Problem(404, "not-found", "Unknown article version", f"no version {version} of {article_id}")
    return row


def blob_response(request: Request, data: bytes, media_type: str, digest: str, **headers: str) -> Response:
    """Stored bytes, immutable by digest; never run as a document (:data:`markup.DOWNLOAD_CSP`, nosniff)."""
    etag = f'"{digest}"'
    common = {"ETag": etag, "Cache-Control": "public, max-age=31536000, immutable",
              **markup.security_headers(markup.DOWNLOAD_CSP)}  # fmt: skip
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers={**common, **headers})
    return Response(data, media_type=media_type, headers={**common, **headers})
