"""Bring a database to the current schema with the Alembic migrations shipped in this package.

On PostgreSQL the job queue's tables and functions (procrastinate's schema, :mod:`service.jobs`) are
created in the same transaction, under the same lock, the first time; a database that has them is left
as it is.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine

from service.store.locks import exclusive

MIGRATIONS = Path(__file__).parent / "migrations"


def upgrade(engine: Engine) -> None:
    """Apply every pending migration (idempotent; processes starting together migrate one at a time)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    with exclusive(engine, "migrate"), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        if connection.dialect.name == "postgresql":
            _apply_job_schema(connection)


def _apply_job_schema(connection: Connection) -> None:
    """Create procrastinate's schema unless its job table exists (idempotent)."""
    if inspect(connection).has_table("procrastinate_jobs"):
        return
    from procrastinate.schema import SchemaManager

    # Several statements with no parameters: psycopg sends them as one simple query.
    connection.connection.driver_connection.execute(SchemaManager.get_schema())  # type: ignore[union-attr]
