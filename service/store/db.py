"""The relational index: assets, article versions, API tokens, the audit log, service state.

Portable SQL only (SQLite by default, PostgreSQL by URL): the ORM and Core, no dialect-specific
statements. SQLite runs in WAL mode with ``synchronous=FULL`` so a commit is durable when it returns.
The schema is created and upgraded by Alembic (``service/store/migrations``).

Derived columns for the finders (``GET /v1/assets``, ``GET /v1/articles``): the declared ``source`` (and an
asset's ``external_id``) are copied out of the declaration or the signed article claim when a row is first
stored, and every label is one row of ``asset_labels`` / ``article_labels`` (a JSON list cannot be indexed
portably). :func:`_index_labels` keeps those rows equal to ``labels`` on every flush, whoever changes them
(ingest, re-verification), so a filter by label never disagrees with the stored decision.

The change feed: :func:`_announce_changes` adds a :class:`Change` row to the flush of every change of what a
badge shows (a new asset or article version, a changed decision, a withdrawal or reinstatement), so no writer
can forget one and none is announced unless its transaction commits; on PostgreSQL :func:`_notify_changes`
also sends ``NOTIFY provenance_changes`` in that transaction (delivered at commit).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, ClassVar, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    insert,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, attributes, mapped_column, relationship, sessionmaker
from sqlalchemy.types import TypeDecorator

#: Column bounds that request values must fit; the service checks them before any write (a 4xx, never a
#: database error: SQLite would store an over-long value, PostgreSQL refuses it). See service.auth
#: (token names, audit subjects) and service.routes.assets (Idempotency-Key).
MAX_TOKEN_NAME = 200  # characters
MAX_IDEMPOTENCY_KEY = 200  # characters
MAX_AUDIT_SUBJECT = 200  # characters
MAX_SOURCE = 20  # characters: the longest declared source is "ai_generated"
MAX_LABEL = 40  # characters of a label id


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores and returns naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store UTC-aware timestamps only")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[str]: JSON, list[dict[str, Any]]: JSON}


class Token(Base):
    """An API token; only the sha256 of the secret is stored."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_TOKEN_NAME))
    role: Mapped[str] = mapped_column(String(20))
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)


class Asset(Base):
    """A stamped image: its blobs and the stored decision (recomputed when trust changes)."""

    __tablename__ = "assets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    upload_sha256: Mapped[str] = mapped_column(String(64), index=True)
    stamped_sha256: Mapped[str] = mapped_column(String(64), index=True)
    manifest: Mapped[bytes] = mapped_column(LargeBinary)
    media_type: Mapped[str] = mapped_column(String(100))
    declaration: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20))
    labels: Mapped[list[str]] = mapped_column(JSON)
    verdict: Mapped[dict[str, Any]] = mapped_column(JSON)
    upstream: Mapped[dict[str, Any]] = mapped_column(JSON)
    signer_chain: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    trust_fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"), default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(MAX_IDEMPOTENCY_KEY), default=None)
    #: Copied from the declaration when the row is stored (indexed for the finder).
    source: Mapped[str | None] = mapped_column(String(MAX_SOURCE), default=None)
    external_id: Mapped[str | None] = mapped_column(String(300), default=None)
    label_rows: Mapped[list[AssetLabel]] = relationship(cascade="all, delete-orphan", passive_deletes=True)

    __table_args__ = (
        UniqueConstraint("token_id", "idempotency_key", name="uq_assets_idempotency"),
        # The finder's order (newest first, id tiebreak) under each equality filter.
        Index("ix_assets_created_id", "created_at", "id"),
        Index("ix_assets_state_created_id", "state", "created_at", "id"),
        Index("ix_assets_source_created_id", "source", "created_at", "id"),
        Index("ix_assets_external_created_id", "external_id", "created_at", "id"),
    )


class AssetLabel(Base):
    """One label of an asset (kept equal to :attr:`Asset.labels` by :func:`_index_labels`)."""

    __tablename__ = "asset_labels"

    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    label: Mapped[str] = mapped_column(String(MAX_LABEL), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # the asset's, for the finder's order

    __table_args__ = (Index("ix_asset_labels_label_created", "label", "created_at", "asset_id"),)


class ArticleVersion(Base):
    """One stamped version of an article: canonical text + detached manifest, and the decision."""

    __tablename__ = "article_versions"

    article_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(300), index=True)
    text_sha256: Mapped[str] = mapped_column(String(64), index=True)
    manifest_sha256: Mapped[str] = mapped_column(String(64), index=True)
    payload_sha256: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(20))
    labels: Mapped[list[str]] = mapped_column(JSON)
    verdict: Mapped[dict[str, Any]] = mapped_column(JSON)
    signer_chain: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    trust_fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"), default=None)
    #: The source the signed article claim declares, copied when the row is stored (indexed for the finder).
    source: Mapped[str | None] = mapped_column(String(MAX_SOURCE), default=None)
    label_rows: Mapped[list[ArticleLabel]] = relationship(cascade="all, delete-orphan", passive_deletes=True)

    __table_args__ = (
        Index("ix_article_versions_created", "created_at", "article_id", "version"),
        Index("ix_article_versions_state_created", "state", "created_at", "article_id", "version"),
        Index("ix_article_versions_source_created", "source", "created_at", "article_id", "version"),
        Index("ix_article_versions_external_created", "external_id", "created_at", "article_id", "version"),
    )


class ArticleLabel(Base):
    """One label of an article version (kept equal to :attr:`ArticleVersion.labels` by :func:`_index_labels`)."""

    __tablename__ = "article_labels"

    article_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(MAX_LABEL), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # the version's, for the finder's order

    __table_args__ = (
        ForeignKeyConstraint(
            ["article_id", "version"],
            ["article_versions.article_id", "article_versions.version"],
            ondelete="CASCADE",
        ),
        Index("ix_article_labels_label_created", "label", "created_at", "article_id", "version"),
    )


class Withdrawal(Base):
    """A withdrawn asset or article (every version of it): who, when and why.

    Present while the item is withdrawn; reinstating removes it. The audit log keeps both decisions
    (``withdraw`` / ``reinstate`` events with the token and the reason), so none is ever lost.
    """

    __tablename__ = "withdrawals"

    item_id: Mapped[str] = mapped_column(String(40), primary_key=True)  # an asset id or an article id
    kind: Mapped[str] = mapped_column(String(10))  # "image" | "article"
    withdrawn_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"), default=None)
    reason: Mapped[str] = mapped_column(Text)


class AuditEvent(Base):
    """Append-only log: every stamp, every authentication failure, every re-verification."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    token_id: Mapped[int | None] = mapped_column(Integer, default=None)
    subject: Mapped[str | None] = mapped_column(String(MAX_AUDIT_SUBJECT), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_audit_events_kind_at", "kind", "at"),)


#: A change's sequence number: 64-bit on PostgreSQL, SQLite's rowid (also 64-bit) there.
_SEQUENCE = BigInteger().with_variant(Integer, "sqlite")


class Change(Base):
    """The change feed: one row per change of what a badge or a public read shows, in commit order.

    Written in the transaction that makes the change (an upload, a re-verification that changed a decision,
    a withdrawal or reinstatement; ``kind="trust"`` with no ``ref`` when the trust configuration changed), so
    a change is announced exactly when it commits. Readers: every process's badge cache (invalidated by the
    rows past the last ``seq`` it saw; on PostgreSQL a ``NOTIFY`` wakes it), and the webhook that lets a CDN
    or the CMS purge (``delivered_at`` set once a delivery covering the row succeeded).
    """

    __tablename__ = "changes"

    seq: Mapped[int] = mapped_column(_SEQUENCE, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(10))  # "image" | "article" | "trust"
    ref: Mapped[str | None] = mapped_column(String(40), default=None)  # the asset or article id
    reason: Mapped[str] = mapped_column(String(20))  # "stamped" | "reverified" | "withdrawn" | "reinstated" | "trust"
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)

    __table_args__ = (Index("ix_changes_delivered_at_seq", "delivered_at", "seq"),)


class RateBucket(Base):
    """One rate-limited caller's token bucket, shared by every process
    (:class:`service.security.limits.RateLimiter`; a bucket idle long enough to be full again is pruned)."""

    __tablename__ = "rate_buckets"

    bucket: Mapped[str] = mapped_column(String(80), primary_key=True)  # the limiter's name and the caller's key
    tokens: Mapped[float] = mapped_column(Float)  # requests still allowed at ``at``
    at: Mapped[float] = mapped_column(Float, index=True)  # Unix seconds of the last request counted
    allowed: Mapped[int] = mapped_column(Integer)  # 1: the last request took a token; 0: it was refused


class ServiceState(Base):
    """Small key/value facts about the deployment (e.g. the trust fingerprint decisions were made with)."""

    __tablename__ = "service_state"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


def _declared_source(row: Asset | ArticleVersion) -> str | None:
    if isinstance(row, Asset):
        source = row.declaration.get("source")
    else:  # the signed claim's source (the payload's), as the verdict read it back
        article = row.verdict.get("article")
        source = article.get("source") if isinstance(article, dict) else None
    return source if isinstance(source, str) and len(source) <= MAX_SOURCE else None


@event.listens_for(Session, "before_flush")
def _index_labels(session: Session, _context: Any, _instances: Any) -> None:
    """Derive the finder's columns of new rows, and keep every row's label rows equal to its ``labels``."""
    for row in [*session.new, *session.dirty]:
        if not isinstance(row, Asset | ArticleVersion):
            continue
        new = row in session.new
        if new:
            if row.created_at is None:  # the label rows carry it: set it now rather than at INSERT
                row.created_at = utcnow()
            if row.source is None:
                row.source = _declared_source(row)
            if isinstance(row, Asset) and row.external_id is None:
                row.external_id = row.declaration.get("external_id")
        elif not attributes.get_history(row, "labels").has_changes():
            continue
        wanted = list(dict.fromkeys(row.labels or []))
        kept = [label for label in row.label_rows if label.label in wanted]
        have = {label.label for label in kept}
        added: list[Any]
        if isinstance(row, Asset):
            added = [AssetLabel(label=label, created_at=row.created_at) for label in wanted if label not in have]
        else:
            added = [ArticleLabel(label=label, created_at=row.created_at) for label in wanted if label not in have]
        if added or len(kept) != len(row.label_rows):
            row.label_rows = [*kept, *added]


#: What a badge shows of a stored row: a change of any of these is a ``reverified`` change of the feed.
_DECISION: Final = ("state", "labels", "verdict")
#: The channel every process's change listener LISTENs on (PostgreSQL).
NOTIFY_CHANNEL: Final = "provenance_changes"


def _decision_changed(row: Asset | ArticleVersion) -> bool:
    for name in _DECISION:
        history = attributes.get_history(row, name)
        if history.added and (not history.deleted or history.deleted[0] != history.added[0]):
            return True  # an equal value set again (a re-verification that changed nothing) is no change
    return False


def _item_ref(row: Asset | ArticleVersion) -> tuple[str, str]:
    return ("image", row.id) if isinstance(row, Asset) else ("article", row.article_id)


@event.listens_for(Session, "before_flush")
def _announce_changes(session: Session, _context: Any, _instances: Any) -> None:
    """One :class:`Change` per item whose badge this flush changes, flushed with it (same transaction)."""
    announced: dict[tuple[str, str], str] = {}
    for row in session.new:
        if isinstance(row, Asset | ArticleVersion):
            announced.setdefault(_item_ref(row), "stamped")
        elif isinstance(row, Withdrawal):
            announced[(row.kind, row.item_id)] = "withdrawn"
    for row in session.dirty:
        if isinstance(row, Asset | ArticleVersion) and _decision_changed(row):
            announced.setdefault(_item_ref(row), "reverified")
    for row in session.deleted:
        if isinstance(row, Withdrawal):
            announced[(row.kind, row.item_id)] = "reinstated"
    for (kind, ref), reason in announced.items():
        session.add(Change(kind=kind, ref=ref, reason=reason))


@event.listens_for(Session, "after_flush")
def _notify_changes(session: Session, _context: Any) -> None:
    """On PostgreSQL, wake every process's change listener when this transaction commits (a rolled-back
    transaction notifies nobody; repeats within one transaction are delivered once)."""
    if not any(isinstance(row, Change) for row in session.new):
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})


def make_engine(url: str, *, durable: bool = True) -> Engine:
    """An engine for ``url``; SQLite gets WAL, full fsync on commit, foreign keys and a busy timeout.

    ``durable=False`` (counters that may be lost in a power cut, such as rate windows): commits do not wait
    for the disk (SQLite ``synchronous=NORMAL``, which in WAL mode stays consistent; PostgreSQL
    ``synchronous_commit=off``, which never corrupts and loses at most the last moments' commits).
    """
    options = {} if durable or url.startswith("sqlite") else {"options": "-c synchronous_commit=off"}
    engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"), connect_args=options)
    if engine.dialect.name == "sqlite":
        synchronous = "FULL" if durable else "NORMAL"

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()
            # PostgreSQL has bit_count(); the soft-binding search needs the same on SQLite.
            dbapi_connection.create_function("hamming64", 2, hamming64, deterministic=True)

    return engine


def hamming64(a: int, b: int) -> int:
    """Bits that differ between two 64-bit codes (as stored: signed; SQLite's ``hamming64()``)."""
    return ((a ^ b) & 0xFFFF_FFFF_FFFF_FFFF).bit_count()


def make_sessionmaker(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)


# --- renditions ---


class Rendition(Base):
    """A signed rendition of an asset: a smaller copy, in JPEG or WebP, whose manifest keeps the stamped
    asset as its ``parentOf`` ingredient (:mod:`provenance.renditions`). Made on the first request for it and
    served from the blob store afterwards; its badge is its asset's."""

    __tablename__ = "renditions"

    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    width: Mapped[int] = mapped_column(Integer, primary_key=True)
    format: Mapped[str] = mapped_column(String(10), primary_key=True)  # "jpg" | "webp"
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # the blob; a badge ref resolves by it
    size: Mapped[int] = mapped_column(Integer)  # bytes
    manifest: Mapped[bytes] = mapped_column(LargeBinary)  # the manifest store embedded in the blob, on its own
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --- soft bindings ---

#: Widths (bits, most significant first) of the chunks of a 64-bit code in the multi-index: three chunks, each
#: indexed with the kind. Three, not four or eight: a query within ``d`` bits probes each chunk for the values
#: within ``d // 3`` bits of its own, and on 1M stored codes a 21-bit chunk value is shared by ~0.5 rows,
#: a 16-bit one by ~15 (README, "Soft bindings": the rows read per lookup).
CHUNK_WIDTHS: Final = (22, 21, 21)


def code_chunks(code: int) -> tuple[int, int, int]:
    """The chunks of an unsigned 64-bit code (:data:`CHUNK_WIDTHS`), most significant first."""
    low, mid = CHUNK_WIDTHS[2], CHUNK_WIDTHS[1]
    return code >> (low + mid), (code >> low) & ((1 << mid) - 1), code & ((1 << low) - 1)


def signed64(code: int) -> int:
    """An unsigned 64-bit code as the signed integer a BIGINT column holds (two's complement)."""
    return code - (1 << 64) if code >= 1 << 63 else code


class SoftBindingEntry(Base):
    """The fingerprint signed into a stored manifest (``c2pa.soft-binding``, ``io.iscc.v0``): the index the
    Soft Binding Resolution API searches (:mod:`service.resolver`). One row per stamped manifest that has one,
    written in the same transaction as the asset or article version; ``manifest_id`` is the active manifest's
    label (``urn:c2pa:...``), the id the API answers with.

    Nearest-neighbour search is multi-index hashing: codes within ``r`` bits in all agree within
    ``r // 3`` bits in at least one of their three chunks (:data:`CHUNK_WIDTHS`), so a query probes each
    chunk's index for the values that close (:func:`service.resolver.index.matches`) and checks the full
    distance on those rows only.
    """

    __tablename__ = "soft_bindings"

    manifest_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # "image" | "text"
    code: Mapped[int] = mapped_column(BigInteger)  # signed64 of the 64-bit code
    c0: Mapped[int] = mapped_column(Integer)
    c1: Mapped[int] = mapped_column(Integer)
    c2: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[str] = mapped_column(String(40), index=True)  # the asset id or the article id
    version: Mapped[int | None] = mapped_column(Integer, default=None)  # the article version
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = tuple(Index(f"ix_soft_bindings_kind_c{i}", "kind", f"c{i}") for i in range(len(CHUNK_WIDTHS)))

    @classmethod
    def of(cls, manifest_id: str, kind: str, code: int, item_id: str, version: int | None = None) -> SoftBindingEntry:
        c0, c1, c2 = code_chunks(code)
        return cls(
            manifest_id=manifest_id,
            kind=kind,
            code=signed64(code),
            c0=c0,
            c1=c1,
            c2=c2,
            item_id=item_id,
            version=version,
        )


# --- the transparency log ---


class LogEntry(Base):
    """One event of the transparency log (:mod:`provenance.transparency`): written in the transaction of the
    event itself (:func:`_log_events`: a stamp, article version, rendition, withdrawal or reinstatement), so
    none can commit without its entry; the sequencer (:mod:`service.log.sequencer`) gives it its place
    ``idx`` in the log and its final bytes ``entry``, in the transaction that signs the next checkpoint."""

    __tablename__ = "log_entries"

    id: Mapped[int] = mapped_column(_SEQUENCE, primary_key=True, autoincrement=True)
    event: Mapped[str] = mapped_column(String(10))
    item_id: Mapped[str] = mapped_column(String(40), index=True)
    version: Mapped[int | None] = mapped_column(Integer, default=None)
    #: The entry less ``index`` and ``logged_at`` while it waits; cleared once ``entry`` holds it all.
    record: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    idx: Mapped[int | None] = mapped_column(BigInteger, default=None, unique=True)  # NULL until sequenced
    entry: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    logged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)


class LogTile(Base):
    """A hash tile of the log's tree (C2SP tlog-tiles; the right edge's partial tile grows in place and is
    served cut to the width a request names)."""

    __tablename__ = "log_tiles"

    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class LogCheckpoint(Base):
    """Every checkpoint the log signed: the tree size is the key, so two sequencers can never sign two trees
    of one size (the log cannot fork)."""

    __tablename__ = "log_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _stamp_record(row: Asset | ArticleVersion | Rendition) -> dict[str, Any]:
    if isinstance(row, Asset):
        return {
            "event": "stamp",
            "item": row.id,
            "media_type": row.media_type,
            "content_sha256": row.stamped_sha256,
            "manifest": row.verdict.get("active_manifest"),
            "manifest_sha256": _sha256(row.manifest),
            "declaration": row.declaration,
            "state": row.state,
            "labels": row.labels,
            "policy": row.verdict.get("policy_version"),
        }
    if isinstance(row, ArticleVersion):
        return {
            "event": "article",
            "item": row.article_id,
            "version": row.version,
            "content_sha256": row.text_sha256,
            "manifest": row.verdict.get("active_manifest"),
            "manifest_sha256": row.manifest_sha256,
            "declaration": {"external_id": row.external_id, "source": row.source},
            "state": row.state,
            "labels": row.labels,
            "policy": row.verdict.get("policy_version"),
        }
    return {
        "event": "rendition",
        "item": row.asset_id,
        "rendition": f"{row.width}.{row.format}",
        "content_sha256": row.sha256,
        "manifest_sha256": _sha256(row.manifest),
    }


#: ``Session.info`` key: the log entries of the flush under way (:func:`_log_events`).
_LOG_ROWS: Final = "provenance.log.rows"


@event.listens_for(Session, "before_flush")
def _log_events(session: Session, _context: Any, _instances: Any) -> None:
    """One log entry per event of this flush (written by :func:`_write_log_events`, in the same transaction)."""
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for row in list(session.new):
        if isinstance(row, Asset | ArticleVersion | Rendition):
            if row.created_at is None:  # the entry's time is the row's: set it now rather than at INSERT
                row.created_at = now
            record, at = _stamp_record(row), row.created_at
        elif isinstance(row, Withdrawal):
            if row.withdrawn_at is None:
                row.withdrawn_at = now
            reason = _sha256(row.reason.encode())
            record = {"event": "withdraw", "item": row.item_id, "kind": row.kind, "reason_sha256": reason}
            at = row.withdrawn_at
        else:
            continue
        version = row.version if isinstance(row, ArticleVersion) else None
        rows.append(
            {"event": record["event"], "item_id": record["item"], "version": version, "record": record, "at": at}
        )
    for row in session.deleted:
        if isinstance(row, Withdrawal):
            record = {"event": "reinstate", "item": row.item_id, "kind": row.kind}
            rows.append({"event": "reinstate", "item_id": row.item_id, "version": None, "record": record, "at": now})
    session.info[_LOG_ROWS] = rows  # this flush's only: a failed flush's are never written


@event.listens_for(Session, "after_flush")
def _write_log_events(session: Session, _context: Any) -> None:
    """The entries :func:`_log_events` made, inserted after the flush's own rows (one statement, no ORM
    objects: nothing reads them back in this transaction)."""
    rows = session.info.pop(_LOG_ROWS, None)
    if rows:
        session.connection().execute(insert(LogEntry), rows)
