"""Initial schema: tokens, assets, article versions, audit events, service state.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "assets",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("upload_sha256", sa.String(64), nullable=False, index=True),
        sa.Column("stamped_sha256", sa.String(64), nullable=False, index=True),
        sa.Column("manifest", sa.LargeBinary, nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("declaration", sa.JSON, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("verdict", sa.JSON, nullable=False),
        sa.Column("upstream", sa.JSON, nullable=False),
        sa.Column("signer_chain", sa.JSON, nullable=False),
        sa.Column("trust_fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token_id", sa.Integer, sa.ForeignKey("tokens.id"), nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.UniqueConstraint("token_id", "idempotency_key", name="uq_assets_idempotency"),
    )
    op.create_table(
        "article_versions",
        sa.Column("article_id", sa.String(40), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("external_id", sa.String(300), nullable=False, index=True),
        sa.Column("text_sha256", sa.String(64), nullable=False, index=True),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("payload_sha256", sa.String(64), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("verdict", sa.JSON, nullable=False),
        sa.Column("signer_chain", sa.JSON, nullable=False),
        sa.Column("trust_fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token_id", sa.Integer, sa.ForeignKey("tokens.id"), nullable=True),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("token_id", sa.Integer, nullable=True),
        sa.Column("subject", sa.String(200), nullable=True),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_audit_events_kind_at", "audit_events", ["kind", "at"])
    op.create_table(
        "service_state",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("service_state")
    op.drop_index("ix_audit_events_kind_at", "audit_events")
    op.drop_table("audit_events")
    op.drop_table("article_versions")
    op.drop_table("assets")
    op.drop_table("tokens")
