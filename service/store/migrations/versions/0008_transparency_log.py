"""The transparency log: its events (``log_entries``, sequenced into ``idx``), the tree's hash tiles
(``log_tiles``) and every signed checkpoint (``log_checkpoints``, keyed by tree size).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "log_entries",
        sa.Column("id", _SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column("event", sa.String(10), nullable=False),
        sa.Column("item_id", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("record", sa.JSON(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=True),
        sa.Column("entry", sa.LargeBinary(), nullable=True),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("idx"),
    )
    op.create_index("ix_log_entries_item_id", "log_entries", ["item_id"])
    op.create_table(
        "log_tiles",
        sa.Column("level", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("n", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "log_checkpoints",
        sa.Column("size", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("log_checkpoints")
    op.drop_table("log_tiles")
    op.drop_index("ix_log_entries_item_id", "log_entries")
    op.drop_table("log_entries")
