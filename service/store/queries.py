"""Every query the service runs (routes and services never write SQL themselves)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.db import ArticleVersion, Asset, Token

#: Assets sharing the same bytes that a ``sha256-`` ref or the same-bytes guard looks at (newest first).
MAX_SHARING = 100


def asset(session: Session, asset_id: str) -> Asset | None:
    return session.get(Asset, asset_id)


def version(session: Session, article_id: str, number: int) -> ArticleVersion | None:
    return session.get(ArticleVersion, (article_id, number))


def latest_version(session: Session, article_id: str) -> ArticleVersion | None:
    """The highest stored version of an article."""
    return session.scalars(
        select(ArticleVersion).where(ArticleVersion.article_id == article_id).order_by(ArticleVersion.version.desc())
    ).first()


def latest_version_with_text(session: Session, text_sha256: str) -> ArticleVersion | None:
    return session.scalars(
        select(ArticleVersion).where(ArticleVersion.text_sha256 == text_sha256).order_by(ArticleVersion.version.desc())
    ).first()


def assets_sharing(session: Session, digest: str) -> Sequence[Asset]:
    """Assets whose original or stamped bytes have this sha256, newest first (at most :data:`MAX_SHARING`)."""
    return session.scalars(
        select(Asset)
        .where((Asset.stamped_sha256 == digest) | (Asset.upload_sha256 == digest))
        .order_by(Asset.created_at.desc())
        .limit(MAX_SHARING)
    ).all()


def assets_from_upload(session: Session, upload_sha256: str) -> Sequence[Asset]:
    """Assets made from these original bytes, oldest first (at most :data:`MAX_SHARING`)."""
    return session.scalars(
        select(Asset).where(Asset.upload_sha256 == upload_sha256).order_by(Asset.created_at).limit(MAX_SHARING)
    ).all()


def asset_by_idempotency_key(session: Session, token_id: int, key: str) -> Asset | None:
    return session.scalars(select(Asset).where(Asset.token_id == token_id, Asset.idempotency_key == key)).first()


def token(session: Session, token_id: int) -> Token | None:
    return session.get(Token, token_id)


def recent_versions(session: Session, limit: int) -> Sequence[ArticleVersion]:
    """The ``limit`` most recently stamped article versions, newest first."""
    return session.scalars(select(ArticleVersion).order_by(ArticleVersion.created_at.desc()).limit(limit)).all()


def recent_assets(session: Session, limit: int) -> Sequence[Asset]:
    """The ``limit`` most recently stamped assets, newest first."""
    return session.scalars(select(Asset).order_by(Asset.created_at.desc()).limit(limit)).all()
