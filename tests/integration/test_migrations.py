"""The Alembic migrations build exactly the schema the code's table definitions describe."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from mcp_checkout.service.container import Services
from mcp_checkout.store import migrate
from mcp_checkout.store.models import metadata


def _differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"include_object": migrate.include_object})
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_models(services: Services) -> None:
    assert await services.db.read(_differences) == []


async def test_migrating_again_is_a_no_op_at_head(services: Services) -> None:
    await migrate.upgrade(services.db)
    assert await migrate.current_revision(services.db) == migrate.head_revision()
