"""Index every column that points at a blob: the blob collector asks, per batch of digests, whether any
row references them (``manifest_sha256`` and ``payload_sha256`` were the two without an index).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_article_versions_manifest_sha256", "article_versions", ["manifest_sha256"])
    op.create_index("ix_article_versions_payload_sha256", "article_versions", ["payload_sha256"])


def downgrade() -> None:
    op.drop_index("ix_article_versions_payload_sha256", "article_versions")
    op.drop_index("ix_article_versions_manifest_sha256", "article_versions")
