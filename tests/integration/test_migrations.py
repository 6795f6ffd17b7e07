"""The Alembic migrations build exactly the schema the code's table definitions describe."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from mcp_checkout.service.container import Services
from mcp_checkout.store import migrate
from mcp_checkout.store.db import Database
from mcp_checkout.store.models import metadata


def _differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"include_object": migrate.include_object})
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_models(services: Services) -> None:
    assert await services.db.read(_differences) == []


async def test_migrating_again_is_a_no_op_at_head(services: Services) -> None:
    await migrate.upgrade(services.db)
    assert await migrate.current_revision(services.db) == migrate.head_revision()


_MIGRATE_AFTER_GO = """
import asyncio, sys, time
from pathlib import Path
from mcp_checkout.store.db import Database
from mcp_checkout.store.migrate import upgrade

go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
asyncio.run(upgrade(Database(sys.argv[1])))
"""


def test_processes_starting_together_on_a_new_sqlite_file_all_migrate_it(tmp_path: Path) -> None:
    """Several servers or CLI commands started at once on a fresh store: each finds the schema built
    (the losers used to fail with "table … already exists")."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'checkout.db'}"
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _MIGRATE_AFTER_GO, url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    time.sleep(1.0)  # let every interpreter import and wait at the line
    go.touch()
    failures = []
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        if process.returncode != 0:
            failures.append(stderr[-600:])
    assert failures == []

    async def revision() -> str | None:
        db = Database(url)
        try:
            return await migrate.current_revision(db)
        finally:
            await db.dispose()

    assert asyncio.run(revision()) == migrate.head_revision()
