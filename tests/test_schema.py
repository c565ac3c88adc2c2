"""The migrations build exactly the schema the models describe, on both databases.

Every table, column, type, nullability and index of ``service.store.db`` must come from a migration in
``service/store/migrations``: a model change without its migration (or a migration that drifted from the
model) fails here, not on the first deployment that upgrades an existing database.
"""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.store.db import Base, make_engine
from service.store.schema import upgrade

from .databases import Database


def test_migrated_schema_is_the_models_schema(database: Database, tmp_path: Path) -> None:
    engine = make_engine(database.url(tmp_path) or f"sqlite:///{tmp_path / 'schema.sqlite3'}")
    try:
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"include_name": _ours})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def _ours(name: str | None, kind: str, _parents: object) -> bool:
    """Not procrastinate's job tables (PostgreSQL): their schema is the job library's, applied by it."""
    return not (kind == "table" and name is not None and name.startswith("procrastinate_"))
