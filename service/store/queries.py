"""Every query the service runs (routes and services never write SQL themselves)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, Row, Select, and_, exists, func, select, text, tuple_
from sqlalchemy.orm import Session

from service.store.db import (
    ArticleLabel,
    ArticleVersion,
    Asset,
    AssetLabel,
    AuditEvent,
    ServiceState,
    Token,
    Withdrawal,
)

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


# --- finders: GET /v1/assets and GET /v1/articles ----------------------------------------------------------

#: The ``label`` filter value that finds items without any label.
NO_LABEL: Final = "none"
#: Ids per ``IN (…)`` list (SQLite allows 32766 parameters; PostgreSQL plans short lists better).
IN_CHUNK: Final = 500


@dataclass(frozen=True)
class Filters:
    """What a finder keeps: every given filter must hold (``None`` = no filter). ``since``/``until`` bound
    the stamping time, half-open: ``since <= created_at < until``."""

    external_id: str | None = None
    label: str | None = None  # a label id, or NO_LABEL
    state: str | None = None
    source: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    withdrawn: bool | None = None


def _bounded(query: Select[Any], created: Any, filters: Filters) -> Select[Any]:
    if filters.since is not None:
        query = query.where(created >= filters.since)
    if filters.until is not None:
        query = query.where(created < filters.until)
    return query


def _withdrawn(query: Select[Any], item_id: Any, withdrawn: bool | None) -> Select[Any]:
    if withdrawn is None:
        return query
    if withdrawn:  # withdrawals are few: the join starts from them (a scan for a rare EXISTS would not)
        return query.join(Withdrawal, Withdrawal.item_id == item_id)
    return query.where(~exists().where(Withdrawal.item_id == item_id))


def find_assets(session: Session, filters: Filters, after: tuple[dt.datetime, str] | None, limit: int) -> list[Asset]:
    """Assets matching ``filters``, newest first (id descending among equal times), from just after the
    keyset ``after`` = (created_at, id) of the last one already seen; at most ``limit``.

    Every filter walks an index in this order: ``label`` the label rows' (label, created_at, asset_id),
    the others the assets' (column, created_at, id).
    """
    query = select(Asset)
    created: Any = Asset.created_at
    ident: Any = Asset.id
    if filters.label == NO_LABEL:
        query = query.where(~exists().where(AssetLabel.asset_id == Asset.id))
    elif filters.label is not None:
        query = query.join(AssetLabel, and_(AssetLabel.asset_id == Asset.id, AssetLabel.label == filters.label))
        created, ident = AssetLabel.created_at, AssetLabel.asset_id  # the label index decides the order
    for column, value in ((Asset.external_id, filters.external_id), (Asset.state, filters.state),
                          (Asset.source, filters.source)):  # fmt: skip
        if value is not None:
            query = query.where(column == value)
    query = _withdrawn(_bounded(query, created, filters), Asset.id, filters.withdrawn)
    if after is not None:
        query = query.where(tuple_(created, ident) < tuple_(*after))
    return list(session.scalars(query.order_by(created.desc(), ident.desc()).limit(limit)))


def find_versions(
    session: Session, filters: Filters, after: tuple[dt.datetime, str, int] | None, limit: int
) -> list[ArticleVersion]:
    """Article versions matching ``filters``, newest first (article id, then version descending among equal
    times), after the keyset ``after`` = (created_at, article_id, version); at most ``limit``. A withdrawn
    article's versions are all withdrawn."""
    query = select(ArticleVersion)
    keys: tuple[Any, Any, Any] = (ArticleVersion.created_at, ArticleVersion.article_id, ArticleVersion.version)
    if filters.label == NO_LABEL:
        query = query.where(
            ~exists().where(
                ArticleLabel.article_id == ArticleVersion.article_id, ArticleLabel.version == ArticleVersion.version
            )
        )
    elif filters.label is not None:
        query = query.join(
            ArticleLabel,
            and_(
                ArticleLabel.article_id == ArticleVersion.article_id,
                ArticleLabel.version == ArticleVersion.version,
                ArticleLabel.label == filters.label,
            ),
        )
        keys = (ArticleLabel.created_at, ArticleLabel.article_id, ArticleLabel.version)
    for column, value in ((ArticleVersion.external_id, filters.external_id), (ArticleVersion.state, filters.state),
                          (ArticleVersion.source, filters.source)):  # fmt: skip
        if value is not None:
            query = query.where(column == value)
    query = _withdrawn(_bounded(query, keys[0], filters), ArticleVersion.article_id, filters.withdrawn)
    if after is not None:
        query = query.where(tuple_(*keys) < tuple_(*after))
    return list(session.scalars(query.order_by(*(key.desc() for key in keys)).limit(limit)))


def _chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for value in values:
        batch.append(value)
        if len(batch) == IN_CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


# --- withdrawals ---------------------------------------------------------------------------------------------


def withdrawal(session: Session, item_id: str) -> Withdrawal | None:
    """The withdrawal of an asset or an article (by its id), if it is withdrawn."""
    return session.get(Withdrawal, item_id)


def withdrawals(session: Session, item_ids: Collection[str]) -> dict[str, Withdrawal]:
    """The withdrawals of those of ``item_ids`` that are withdrawn, by id."""
    found: dict[str, Withdrawal] = {}
    for batch in _chunks(dict.fromkeys(item_ids)):
        found.update((w.item_id, w) for w in session.scalars(select(Withdrawal).where(Withdrawal.item_id.in_(batch))))
    return found


# --- the AI-disclosure report ----------------------------------------------------------------------------


def count_stamped(session: Session, start: dt.datetime, end: dt.datetime) -> int:
    """Assets plus article versions stamped in ``[start, end)`` (index-only counts)."""
    assets = session.scalar(select(func.count()).where(Asset.created_at >= start, Asset.created_at < end))
    versions = session.scalar(
        select(func.count()).where(ArticleVersion.created_at >= start, ArticleVersion.created_at < end)
    )
    return int(assets or 0) + int(versions or 0)


def disclosure_assets(session: Session, start: dt.datetime, end: dt.datetime) -> Sequence[Row[Any]]:
    """What the AI-disclosure report shows of each asset stamped in ``[start, end)``, oldest first (only
    these columns: a period's rows are read at once, their manifests and verdicts are not)."""
    return session.execute(
        select(
            Asset.id, Asset.created_at, Asset.token_id, Asset.source, Asset.external_id, Asset.state,
            Asset.labels, Asset.declaration,
        )
        .where(Asset.created_at >= start, Asset.created_at < end)
        .order_by(Asset.created_at, Asset.id)
    ).all()  # fmt: skip


def disclosure_versions(session: Session, start: dt.datetime, end: dt.datetime) -> Sequence[Row[Any]]:
    """What the AI-disclosure report shows of each article version stamped in ``[start, end)``, oldest
    first; ``review`` is the verdict's ``review`` member (JSON, or ``None``)."""
    return session.execute(
        select(
            ArticleVersion.article_id, ArticleVersion.version, ArticleVersion.created_at, ArticleVersion.token_id,
            ArticleVersion.source, ArticleVersion.external_id, ArticleVersion.state, ArticleVersion.labels,
            ArticleVersion.verdict["review"].label("review"),
        )
        .where(ArticleVersion.created_at >= start, ArticleVersion.created_at < end)
        .order_by(ArticleVersion.created_at, ArticleVersion.article_id, ArticleVersion.version)
    ).all()  # fmt: skip


def events_between(session: Session, kinds: Collection[str], start: dt.datetime, end: dt.datetime) -> list[AuditEvent]:
    """Audit events of these kinds in ``[start, end)``, in the order they were written (index (kind, at))."""
    condition: ColumnElement[bool] = and_(AuditEvent.kind.in_(kinds), AuditEvent.at >= start, AuditEvent.at < end)
    return list(session.scalars(select(AuditEvent).where(condition).order_by(AuditEvent.id)))


def events_about(session: Session, kinds: Collection[str], subjects: Collection[str]) -> list[AuditEvent]:
    """Audit events of these kinds about these subjects, in the order they were written."""
    found: list[AuditEvent] = []
    for batch in _chunks(dict.fromkeys(subjects)):
        found.extend(
            session.scalars(select(AuditEvent).where(AuditEvent.kind.in_(kinds), AuditEvent.subject.in_(batch)))
        )
    return sorted(found, key=lambda event: event.id)


def tokens(session: Session, token_ids: Collection[int]) -> dict[int, Token]:
    """The tokens with these ids, by id (revoked ones included: they still name who did something)."""
    found: dict[int, Token] = {}
    for batch in _chunks(dict.fromkeys(token_ids)):
        found.update((t.id, t) for t in session.scalars(select(Token).where(Token.id.in_(batch))))
    return found


def states_with_prefix(session: Session, prefix: str, limit: int) -> Sequence[ServiceState]:
    """Up to ``limit`` service-state rows whose key starts with ``prefix``, in key order."""
    return session.scalars(
        select(ServiceState)
        .where(ServiceState.key.startswith(prefix, autoescape=True))
        .order_by(ServiceState.key)
        .limit(limit)
    ).all()


def ping(session: Session) -> None:
    """Ask the database something trivial; raises whatever the connection raises when it cannot answer."""
    session.execute(text("SELECT 1"))
