"""What the API answers about a stored item: typed public models and their links."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from provenance.display import visible
from provenance.stamp import MAX_REASON
from service.store.db import ArticleVersion, Asset, Withdrawal


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
    #: When the asset was withdrawn (its content and manifest then answer 410 Gone); ``None`` if published.
    withdrawn_at: str | None = None
    links: AssetLinks

    @classmethod
    def of(cls, base: str, row: Asset, withdrawal: Withdrawal | None = None) -> AssetPublic:
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
            withdrawn_at=withdrawal.withdrawn_at.isoformat() if withdrawal else None,
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
    #: When the article (every version) was withdrawn; ``None`` if published.
    withdrawn_at: str | None = None
    links: ArticleLinks

    @classmethod
    def of(cls, base: str, row: ArticleVersion, withdrawal: Withdrawal | None = None) -> ArticlePublic:
        return cls(
            id=row.article_id,
            version=row.version,
            external_id=row.external_id,
            sha256=row.text_sha256,
            state=row.state,
            labels=row.labels,
            created_at=row.created_at.isoformat(),
            withdrawn_at=withdrawal.withdrawn_at.isoformat() if withdrawal else None,
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


class WithdrawalPublic(BaseModel):
    """Who withdrew an item, when and why (shown to token holders only; the public sees ``withdrawn_at``)."""

    withdrawn_at: str
    reason: str
    by: str | None  # the token's name

    @classmethod
    def of(cls, row: Withdrawal, by: str | None) -> WithdrawalPublic:
        return cls(withdrawn_at=row.withdrawn_at.isoformat(), reason=row.reason, by=by)


class AssetFound(AssetPublic):
    """An asset as a finder lists it: with its declared source and, if withdrawn, the withdrawal."""

    source: str | None
    withdrawal: WithdrawalPublic | None = None


class ArticleFound(ArticlePublic):
    """An article version as a finder lists it: with its declared source and, if withdrawn, the withdrawal."""

    source: str | None
    withdrawal: WithdrawalPublic | None = None


class AssetPage(BaseModel):
    """One page of ``GET /v1/assets``: newest first; ``next_cursor`` fetches the next page (``None``: last)."""

    items: list[AssetFound]
    next_cursor: str | None


class ArticlePage(BaseModel):
    """One page of ``GET /v1/articles`` (one item per stamped version): newest first."""

    items: list[ArticleFound]
    next_cursor: str | None


class WithdrawRequest(BaseModel):
    """Why an item is withdrawn or reinstated (recorded in the audit log with the token and the time)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=MAX_REASON, pattern=r"\S", description="Why (required)")

    @field_validator("reason")
    @classmethod
    def _printable(cls, value: str) -> str:
        if visible(value) != value:  # it is shown in reports and the audit log (PostgreSQL cannot store a NUL)
            raise ValueError("the reason must be printable text (no control or format characters)")
        return value.strip()
