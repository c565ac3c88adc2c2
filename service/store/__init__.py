"""Durable storage: content-addressed blobs on disk and the relational index (SQLAlchemy)."""
