"""Soft bindings (``soft_bindings``): the fingerprint of every stamped manifest that has one, with its three
chunks (22, 21 and 21 bits) indexed with the kind for nearest-neighbour search (multi-index hashing).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "soft_bindings",
        sa.Column("manifest_id", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("code", sa.BigInteger(), nullable=False),
        *(sa.Column(f"c{i}", sa.Integer(), nullable=False) for i in range(3)),
        sa.Column("item_id", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_soft_bindings_item_id", "soft_bindings", ["item_id"])
    for i in range(3):
        op.create_index(f"ix_soft_bindings_kind_c{i}", "soft_bindings", ["kind", f"c{i}"])


def downgrade() -> None:
    for i in range(3):
        op.drop_index(f"ix_soft_bindings_kind_c{i}", "soft_bindings")
    op.drop_index("ix_soft_bindings_item_id", "soft_bindings")
    op.drop_table("soft_bindings")
