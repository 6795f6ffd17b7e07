"""Helpers every kind of test shares, each defined once: MCP tool results, free ports, PostgreSQL
administration (a database of a test's own) and database preparation (migrate, load a catalog). Fixtures live in conftest.py; real server processes in
e2e/servers.py; the browser in e2e/browser.py.

    from tests.support import tool_data, error_code, free_port, postgres_database
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from mcp_checkout.domain import CatalogRow, utc_now
from mcp_checkout.hosting import free_local_port as free_port  # noqa: F401 (shared with the tests from here)
from mcp_checkout.store import migrate
from mcp_checkout.store.catalog_write import upsert_catalog
from mcp_checkout.store.db import Database

PG_ADMIN_URL = os.environ.get("MCP_CHECKOUT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


# ---------------------------------------------------------------- MCP tool results
def tool_data(result: Any) -> dict[str, Any]:
    """A successful tool result's structured content (fails the test with the error text otherwise)."""
    assert not result.is_error, result.content[0].text
    assert result.structured_content is not None
    return dict(result.structured_content)


def error_body(result: Any) -> dict[str, Any]:
    """A tool error's JSON body (code, message, details, retry_after_seconds …), from the JSON text block
    that follows the ``[code] message`` text (it does not depend on structuredContent)."""
    assert result.is_error, "not an error result"
    for block in result.content[1:]:
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            body = json.loads(block.text)
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                return dict(body["error"])
    raise AssertionError(f"no JSON error body in {result.content!r}")


def error_code(result: Any) -> str | None:
    """A tool error's code (``insufficient_stock``, ``idempotency_in_flight`` …) from its ``[code] …`` text;
    None for a success. Anything else (an SDK error text) comes back whole, so a test sees it."""
    if not result.is_error:
        return None
    text = str(result.content[0].text)
    match = re.match(r"\[([a-z_]+)\] ", text)
    return match.group(1) if match else text


# ---------------------------------------------------------------- PostgreSQL administration
@contextlib.contextmanager
def json_server(answer: Callable[[str], object | None]) -> Iterator[str]:
    """A local HTTP server answering each GET with ``answer(path)`` as JSON (None: 404); yields its base URL.
    For what a test must serve over real HTTP: platform profiles, an identity provider's keys."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = answer(self.path)
            body = json.dumps(found).encode() if found is not None else b"{}"
            self.send_response(200 if found is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy ``postgresql+asyncpg://`` URL as asyncpg's own DSN."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pg_database_url(name: str) -> str:
    """The URL of database ``name`` on the test PostgreSQL server."""
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def pg_admin(sql: str, url: str = PG_ADMIN_URL) -> None:
    """Run one statement (CREATE / DROP DATABASE, TRUNCATE …) on its own connection."""
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(prefix: str) -> str:
    """Create an empty database ``<prefix>_<pid>_<random>``; return its name. Unreachable PostgreSQL fails the
    test (never a silent skip): start it (scripts/services.sh) or set MCP_CHECKOUT_TEST_BACKENDS=sqlite."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL at {PG_ADMIN_URL} is not usable ({exc!r}); start it (see scripts/services.sh) "
            "or set MCP_CHECKOUT_TEST_BACKENDS=sqlite"
        )
    return name


def drop_database(name: str) -> None:
    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def postgres_database(prefix: str = "mcp_checkout_mp") -> Iterator[str]:
    """A fresh, empty PostgreSQL database (SQLAlchemy asyncpg URL), dropped WITH (FORCE) afterwards."""
    name = create_database(prefix)
    try:
        yield pg_database_url(name)
    finally:
        drop_database(name)


# ---------------------------------------------------------------- database preparation
async def prepare_database(url: str, rows: list[CatalogRow]) -> None:
    """Migrate the database at ``url`` and load ``rows`` (before a server process starts on it)."""
    db = Database(url)
    try:
        await migrate.upgrade(db)
        now = utc_now()
        await db.write(lambda conn: upsert_catalog(conn, rows, now))
    finally:
        await db.dispose()


@contextlib.contextmanager
def counted(db: Database) -> Iterator[dict[str, list[Any]]]:
    """The SQL statements and commits ``db`` runs inside the block."""
    engine = db.sync_engine if db.dialect == "sqlite" else db.async_engine.sync_engine
    seen: dict[str, list[Any]] = {"statements": [], "commits": []}

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen["statements"].append(sql)

    def commit(_conn: Any) -> None:
        seen["commits"].append(1)

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)


def npm_ci_once(folder: Path, installed: Path, *, what: str, timeout: float = 300) -> None:
    """``npm ci`` in ``folder`` (from its package-lock.json; node_modules is not committed) unless ``installed``
    exists. Test workers run in parallel (pytest-xdist) and ``npm ci`` first deletes node_modules, so one
    process installs under a lock on the folder while the others wait for it. Without node and npm the test
    fails: the Node side must run wherever the suite runs."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        raise AssertionError(f"{' and '.join(missing)} not found: install Node.js 20+ for {what}")
    with open(folder / ".npm-ci.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not installed.exists():
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"], cwd=folder, check=True, capture_output=True, timeout=timeout
            )


async def a_fresh_minute(seconds_needed: float = 20) -> None:
    """Rate limits count per clock minute (``int(time // 60)``): a test that spends a budget and then expects the
    refusal must not straddle two minutes. With fewer than ``seconds_needed`` seconds left in this one, wait for
    the next."""
    left = 60 - time.time() % 60
    if left < seconds_needed:
        await anyio.sleep(left + 0.05)
