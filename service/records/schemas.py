"""What the API answers about a stored item: typed public models and their links."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from service.store.db import ArticleVersion, Asset


class AssetLinks(BaseModel):
    self: str
    content: str
    manifest: str
    badge_svg: str
    badge_json: str
    report: str


class AssetPublic(BaseModel):
    """A stamped image as the API shows it."""

    id: str
    sha256: str
    stamped_sha256: str
    media_type: str
    state: str
    labels: list[str]
    declaration: dict[str, Any]
    created_at: str
    links: AssetLinks

    @classmethod
    def of(cls, base: str, row: Asset) -> AssetPublic:
        """``row`` with its links under ``base`` (the public base URL, or empty for absolute paths)."""
        return cls(
            id=row.id,
            sha256=row.upload_sha256,
            stamped_sha256=row.stamped_sha256,
            media_type=row.media_type,
            state=row.state,
            labels=row.labels,
            declaration=row.declaration,
            created_at=row.created_at.isoformat(),
            links=asset_links(base, row.id),
        )


def asset_links(base: str, asset_id: str) -> AssetLinks:
    return AssetLinks(
        self=f"{base}/v1/assets/{asset_id}",
        content=f"{base}/v1/assets/{asset_id}/content",
        manifest=f"{base}/v1/assets/{asset_id}/manifest.c2pa",
        badge_svg=f"{base}/v1/badges/{asset_id}.svg",
        badge_json=f"{base}/v1/badges/{asset_id}.json",
        report=f"{base}/v1/assets/{asset_id}/report",
    )


class ArticleLinks(BaseModel):
    text: str
    manifest: str
    report: str
    badge_svg: str
    badge_json: str


class ArticlePublic(BaseModel):
    """One stamped article version as the API shows it."""

    id: str
    version: int
    external_id: str
    sha256: str
    state: str
    labels: list[str]
    created_at: str
    links: ArticleLinks

    @classmethod
    def of(cls, base: str, row: ArticleVersion) -> ArticlePublic:
        return cls(
            id=row.article_id,
            version=row.version,
            external_id=row.external_id,
            sha256=row.text_sha256,
            state=row.state,
            labels=row.labels,
            created_at=row.created_at.isoformat(),
            links=article_links(base, row),
        )


def article_links(base: str, row: ArticleVersion) -> ArticleLinks:
    version = f"{base}/v1/articles/{row.article_id}/v{row.version}"
    return ArticleLinks(
        text=f"{version}.txt",
        manifest=f"{version}.c2pa",
        report=f"{version}/report",
        badge_svg=f"{base}/v1/badges/{row.article_id}.svg",
        badge_json=f"{base}/v1/badges/{row.article_id}.json",
    )
