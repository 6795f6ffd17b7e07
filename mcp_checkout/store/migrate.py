"""Apply Alembic migrations programmatically (``mcp-checkout migrate`` and server start)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from mcp_checkout.store.db import Database

MIGRATIONS = Path(__file__).with_name("migrations")
_PG_MIGRATION_LOCK = 0x6D63705F636B  # any constant: serialises concurrent server starts
_SQLITE_MIGRATION_WAIT_MS = 120_000


SEARCH_OBJECTS = ("sku_fts", "search_vector", "ix_skus_search_vector")
VERSION_OBJECTS = ("store_config_version",)  # raw DDL in revision 0016, read by store/store_profile.py


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Leave the full-text search objects (raw DDL in revision 0001) and the config version stamp (0016)
    out of autogenerate."""
    return not (name is not None and name.startswith(SEARCH_OBJECTS + VERSION_OBJECTS))


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def _upgrade(connection: Connection) -> None:
    """Every revision in ONE transaction that first takes the database's migration lock, so processes started
    together on a new store wait for the first one and then find the schema current (without it, on SQLite,
    the others failed with "table … already exists"). A crash mid-way leaves the schema as it was."""
    if connection.dialect.name == "postgresql":
        # A transaction-level lock: a session-level one taken and released in separate transactions would
        # land on different server connections behind a transaction-pooling PgBouncer, and never be released.
        with connection.begin():
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            command.upgrade(_config(connection), "head")
        return
    # SQLite: the migration engine's begin sends BEGIN IMMEDIATE (the write lock). Building a new store can
    # outlast the usual busy timeout on a loaded machine, so waiting for it gets longer.
    driver = connection.connection.driver_connection
    assert driver is not None
    (previous_timeout,) = driver.execute("PRAGMA busy_timeout").fetchone()
    driver.execute(f"PRAGMA busy_timeout={_SQLITE_MIGRATION_WAIT_MS}")
    try:
        with connection.begin():
            command.upgrade(_config(connection), "head")
    finally:
        driver.execute(f"PRAGMA busy_timeout={int(previous_timeout)}")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(db: Database) -> None:
    """Bring the schema to the newest revision. Safe to run from several processes at once."""
    await db.run_on_connection(_upgrade)


async def current_revision(db: Database) -> str | None:
    return await db.run_on_connection(_current)
