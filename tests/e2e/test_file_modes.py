"""The SQLite database holds buyer data: a real CLI run and a real `serve --http` process (under the usual
umask 022) leave the data directory 0700 and the database, WAL and SHM files 0600, creating them that way
and tightening the ones an older install left readable."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.e2e.servers import Server, create_keys, running, server_env
from tests.support import tool_data


@pytest.fixture(autouse=True)
def _usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def _write(server: Server, key: str) -> None:
    async with server.client(key) as client:
        tool_data(await client.call_tool("create_cart", {}))


def test_data_dir_and_database_files_are_private(tmp_path: Path) -> None:
    home = tmp_path / "shop" / "data"
    env = server_env({"MCP_CHECKOUT_DATA_DIR": str(home)})
    (key,) = create_keys(env, ("agent", "buyer"))  # creates and migrates the database
    database = home / "checkout.db"
    assert _mode(home) == 0o700
    assert _mode(database) == 0o600

    # An older install: everything readable by everyone. A server start tightens it.
    home.chmod(0o755)
    database.chmod(0o644)
    with running(env, tmp_path / "logs", 1) as [server]:
        anyio.run(_write, server, key)
        wal, shm = home / "checkout.db-wal", home / "checkout.db-shm"
        assert wal.exists() and shm.exists()  # the server holds the database open in WAL mode
        modes = {path.name: oct(_mode(path)) for path in (home, database, wal, shm)}
    assert modes == {"data": "0o700", "checkout.db": "0o600", "checkout.db-wal": "0o600", "checkout.db-shm": "0o600"}
