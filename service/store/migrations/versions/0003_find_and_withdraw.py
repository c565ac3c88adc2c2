"""The stored record's finders and withdrawals.

Finders (``GET /v1/assets``, ``GET /v1/articles``): the declared ``source`` (and an asset's ``external_id``)
become columns, every label a row of ``asset_labels`` / ``article_labels``, and each filter an index in the
finder's order (stamping time, newest first, id tiebreak). Existing rows are backfilled in batches: an asset's
source and external id from its declaration, an article version's source from its signed claim (or, for a
verdict that no longer holds the claim, from its ``stamp_article`` audit event), labels from ``labels``.

Withdrawals: one ``withdrawals`` row per withdrawn asset or article (who, when, why).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BATCH = 1000  # rows read and written per round of the backfill

_assets = sa.table(
    "assets",
    sa.column("id", sa.String),
    sa.column("declaration", sa.JSON),
    sa.column("labels", sa.JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("source", sa.String),
    sa.column("external_id", sa.String),
)
_versions = sa.table(
    "article_versions",
    sa.column("article_id", sa.String),
    sa.column("version", sa.Integer),
    sa.column("verdict", sa.JSON),
    sa.column("labels", sa.JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("source", sa.String),
)
_events = sa.table(
    "audit_events", sa.column("kind", sa.String), sa.column("subject", sa.String), sa.column("detail", sa.JSON)
)
_asset_labels = sa.table(
    "asset_labels",
    sa.column("asset_id", sa.String),
    sa.column("label", sa.String),
    sa.column("created_at", sa.DateTime),
)
_article_labels = sa.table(
    "article_labels",
    sa.column("article_id", sa.String),
    sa.column("version", sa.Integer),
    sa.column("label", sa.String),
    sa.column("created_at", sa.DateTime),
)


def _text(value: Any, limit: int) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def _backfill_assets(bind: sa.Connection) -> None:
    last = ""
    while True:
        rows = bind.execute(
            sa.select(_assets.c.id, _assets.c.declaration, _assets.c.labels, _assets.c.created_at)
            .where(_assets.c.id > last)
            .order_by(_assets.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        labels = []
        for row in rows:
            declaration = row.declaration if isinstance(row.declaration, dict) else {}
            bind.execute(
                sa.update(_assets)
                .where(_assets.c.id == row.id)
                .values(
                    source=_text(declaration.get("source"), 20), external_id=_text(declaration.get("external_id"), 300)
                )
            )
            for label in dict.fromkeys(row.labels or []):
                labels.append({"asset_id": row.id, "label": label, "created_at": row.created_at})
        if labels:
            bind.execute(sa.insert(_asset_labels), labels)
        last = rows[-1].id


def _claimed_source(verdict: Any) -> str | None:
    article = verdict.get("article") if isinstance(verdict, dict) else None
    return _text(article.get("source"), 20) if isinstance(article, dict) else None


def _backfill_versions(bind: sa.Connection) -> None:
    logged = {
        row.subject: row.detail.get("source")
        for row in bind.execute(sa.select(_events.c.subject, _events.c.detail).where(_events.c.kind == "stamp_article"))
        if isinstance(row.detail, dict)
    }
    last: tuple[str, int] = ("", 0)
    while True:
        rows = bind.execute(
            sa.select(
                _versions.c.article_id,
                _versions.c.version,
                _versions.c.verdict,
                _versions.c.labels,
                _versions.c.created_at,
            )
            .where(sa.tuple_(_versions.c.article_id, _versions.c.version) > last)
            .order_by(_versions.c.article_id, _versions.c.version)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        labels = []
        for row in rows:
            source = _claimed_source(row.verdict) or _text(logged.get(f"{row.article_id}/v{row.version}"), 20)
            bind.execute(
                sa.update(_versions)
                .where(_versions.c.article_id == row.article_id, _versions.c.version == row.version)
                .values(source=source)
            )
            for label in dict.fromkeys(row.labels or []):
                labels.append(
                    {"article_id": row.article_id, "version": row.version, "label": label, "created_at": row.created_at}
                )
        if labels:
            bind.execute(sa.insert(_article_labels), labels)
        last = (rows[-1].article_id, rows[-1].version)


def upgrade() -> None:
    op.add_column("assets", sa.Column("source", sa.String(20), nullable=True))
    op.add_column("assets", sa.Column("external_id", sa.String(300), nullable=True))
    op.add_column("article_versions", sa.Column("source", sa.String(20), nullable=True))
    op.create_table(
        "asset_labels",
        sa.Column("asset_id", sa.String(40), sa.ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("label", sa.String(40), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "article_labels",
        sa.Column("article_id", sa.String(40), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("label", sa.String(40), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id", "version"],
            ["article_versions.article_id", "article_versions.version"],
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "withdrawals",
        sa.Column("item_id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token_id", sa.Integer, sa.ForeignKey("tokens.id"), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
    )
    bind = op.get_bind()
    _backfill_assets(bind)
    _backfill_versions(bind)
    # Indexes last: the backfill does not maintain them row by row.
    op.create_index("ix_assets_created_id", "assets", ["created_at", "id"])
    op.create_index("ix_assets_state_created_id", "assets", ["state", "created_at", "id"])
    op.create_index("ix_assets_source_created_id", "assets", ["source", "created_at", "id"])
    op.create_index("ix_assets_external_created_id", "assets", ["external_id", "created_at", "id"])
    op.create_index("ix_asset_labels_label_created", "asset_labels", ["label", "created_at", "asset_id"])
    op.create_index("ix_article_versions_created", "article_versions", ["created_at", "article_id", "version"])
    for column in ("state", "source"):
        op.create_index(
            f"ix_article_versions_{column}_created", "article_versions", [column, "created_at", "article_id", "version"]
        )
    op.create_index(
        "ix_article_versions_external_created",
        "article_versions",
        ["external_id", "created_at", "article_id", "version"],
    )
    op.create_index(
        "ix_article_labels_label_created", "article_labels", ["label", "created_at", "article_id", "version"]
    )


def downgrade() -> None:
    for index, table in (
        ("ix_article_labels_label_created", "article_labels"),
        ("ix_article_versions_external_created", "article_versions"),
        ("ix_article_versions_source_created", "article_versions"),
        ("ix_article_versions_state_created", "article_versions"),
        ("ix_article_versions_created", "article_versions"),
        ("ix_asset_labels_label_created", "asset_labels"),
        ("ix_assets_external_created_id", "assets"),
        ("ix_assets_source_created_id", "assets"),
        ("ix_assets_state_created_id", "assets"),
        ("ix_assets_created_id", "assets"),
    ):
        op.drop_index(index, table)
    op.drop_table("withdrawals")
    op.drop_table("article_labels")
    op.drop_table("asset_labels")
    with op.batch_alter_table("article_versions") as batch:
        batch.drop_column("source")
    with op.batch_alter_table("assets") as batch:
        batch.drop_column("external_id")
        batch.drop_column("source")
