"""Stored items by the ids in a path, or a 404 problem; and stored bytes as immutable downloads."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import Path, Request, Response

from provenance.articles import MAX_VERSION
from service import markup, problems
from service.context import ServiceContext
from service.problems import Problem
from service.store import queries
from service.store.db import ArticleVersion, Asset, Withdrawal
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


#: OpenAPI entry of the answer for a withdrawn item's public bytes.
GONE: Final[dict[int | str, dict[str, Any]]] = {
    410: {
        "description": "Withdrawn (`/problems/withdrawn`; `withdrawn_at` says when)",
        "content": problems.responses(404)[404]["content"],
    }
}


def withdrawal_of(ctx: ServiceContext, item_id: str) -> Withdrawal | None:
    """The withdrawal of an asset or article (by id), if it is withdrawn."""
    with ctx.session() as session:
        return queries.withdrawal(session, item_id)


def gone(item_id: str, withdrawal: Withdrawal) -> Problem:
    """The 410 answer for a withdrawn item's public bytes: when, never who or why."""
    when = withdrawal.withdrawn_at.isoformat()
    problem = Problem(410, "withdrawn", "Withdrawn", f"{item_id} was withdrawn at {when}", withdrawn_at=when)
    problem.headers["Cache-Control"] = "no-cache"  # a reinstatement shows at once
    return problem


def published_asset_row(ctx: ServiceContext, asset_id: str) -> Asset:
    """:func:`asset_row` for the public bytes: a 410 problem if the asset is withdrawn."""
    row = asset_row(ctx, asset_id)
    withdrawal = withdrawal_of(ctx, row.id)
    if withdrawal is not None:
        raise gone(row.id, withdrawal)
    return row


def published_version_row(ctx: ServiceContext, article_id: str, version: int) -> ArticleVersion:
    """:func:`version_row` for the public bytes: a 410 problem if the article is withdrawn."""
    row = version_row(ctx, article_id, version)
    withdrawal = withdrawal_of(ctx, row.article_id)
    if withdrawal is not None:
        raise gone(row.article_id, withdrawal)
    return row


def blob_response(request: Request, data: bytes, media_type: str, digest: str, **headers: str) -> Response:
    """Stored bytes, immutable by digest; never run as a document (:data:`markup.DOWNLOAD_CSP`, nosniff)."""
    etag = f'"{digest}"'
    common = {"ETag": etag, "Cache-Control": "public, max-age=31536000, immutable",
              **markup.security_headers(markup.DOWNLOAD_CSP)}  # fmt: skip
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers={**common, **headers})
    return Response(data, media_type=media_type, headers={**common, **headers})
