"""Signed renditions (``renditions``): one row per resized copy of an asset (width and format), its blob's
digest (a badge ref resolves by it to the asset), size and manifest store.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "renditions",
        sa.Column("asset_id", sa.String(40), sa.ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("width", sa.Integer(), primary_key=True),
        sa.Column("format", sa.String(10), primary_key=True),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("manifest", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_renditions_sha256", "renditions", ["sha256"])


def downgrade() -> None:
    op.drop_index("ix_renditions_sha256", "renditions")
    op.drop_table("renditions")
