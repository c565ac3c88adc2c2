"""The change feed (``changes``): one row per change of what a badge or a public read shows, written in the
transaction that makes it; every process's badge cache and the purge webhook read it in ``seq`` order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("ref", sa.String(40), nullable=True),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_changes_delivered_at_seq", "changes", ["delivered_at", "seq"])


def downgrade() -> None:
    op.drop_index("ix_changes_delivered_at_seq", "changes")
    op.drop_table("changes")
