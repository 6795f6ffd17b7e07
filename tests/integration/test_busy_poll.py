"""While a PostgreSQL statement is awaited the event loop polls instead of sleeping (store/busy_poll.py), for at
most the poll's budget per statement, and it sleeps again once the work ends, however it ends. Seen from the
loop's own selector: what timeouts it was asked to wait with while the work ran."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection, text

from mcp_checkout.errors import CheckoutError
from mcp_checkout.store import catalog as catalog_store
from mcp_checkout.store.db import Database

T = TypeVar("T")


@contextmanager
def selector_timeouts() -> Iterator[list[float | None]]:
    """The timeout of every wait of the running loop's selector (None: asleep until something happens)."""
    selector: Any = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
    seen: list[float | None] = []
    select = selector.select

    def recording(timeout: float | None = None) -> Any:
        seen.append(timeout)
        return select(timeout)

    selector.select = recording
    try:
        yield seen
    finally:
        del selector.select


async def waits_during(call: Callable[[], Awaitable[T]]) -> tuple[T, list[float | None]]:
    with selector_timeouts() as seen:
        result = await call()
    return result, seen


def asleep(timeouts: list[float | None]) -> list[float | None]:
    return [timeout for timeout in timeouts if timeout is None or timeout > 0]


async def _database(pg_url: str, busy_poll_ms: float) -> Database:
    db = Database(pg_url, pool_size=1, max_overflow=0, busy_poll_ms=busy_poll_ms)
    await db.read(lambda conn: conn.execute(text("SELECT 1")).scalar_one())  # connected and warm
    await db.fetch(catalog_store.PRODUCT_WITH_SKUS_BY_ID, "p-none")  # the pinned connection, prepared
    return db


@pytest.mark.parametrize("busy_poll_ms", [0, 200])
async def test_postgresql_the_loop_polls_while_a_hot_read_and_a_transaction_are_awaited(
    pg_url: str, busy_poll_ms: float
) -> None:
    db = await _database(pg_url, busy_poll_ms)
    try:
        for call in (
            lambda: db.fetch(catalog_store.PRODUCT_WITH_SKUS_BY_ID, "p-none"),  # the pinned connection
            lambda: db.read(lambda conn: conn.execute(text("SELECT pg_sleep(0.005)")).all()),  # in the greenlet
        ):
            _rows, timeouts = await waits_during(call)
            assert timeouts, "the loop waited for the answer"
            if busy_poll_ms:
                assert asleep(timeouts) == [], timeouts
            else:
                assert asleep(timeouts), timeouts
    finally:
        await db.dispose()


async def test_postgresql_each_statement_of_a_transaction_gets_the_whole_budget(pg_url: str) -> None:
    db = await _database(pg_url, busy_poll_ms=250)

    def three_statements(conn: Connection) -> int:
        for _ in range(3):  # 3 x 100 ms: past one budget, within each statement's own
            conn.execute(text("SELECT pg_sleep(0.1)"))
        return 3

    try:
        count, timeouts = await waits_during(lambda: db.write(three_statements))
        assert count == 3
        assert asleep(timeouts) == []
    finally:
        await db.dispose()


async def test_postgresql_a_statement_slower_than_the_budget_is_waited_for_asleep(pg_url: str) -> None:
    db = await _database(pg_url, busy_poll_ms=5)
    try:
        _rows, timeouts = await waits_during(
            lambda: db.read(lambda conn: conn.execute(text("SELECT pg_sleep(0.3)")).all())
        )
        assert asleep(timeouts), "after 5 ms of polling the loop sleeps until the answer comes"
        assert len(timeouts) < 20_000, "no more polling than 5 ms allow"
    finally:
        await db.dispose()


async def test_postgresql_the_loop_sleeps_again_after_the_work_succeeds_or_fails(pg_url: str) -> None:
    db = await _database(pg_url, busy_poll_ms=200)
    try:
        await db.fetch(catalog_store.PRODUCT_WITH_SKUS_BY_ID, "p-none")
        _nothing, idle = await waits_during(lambda: asyncio.sleep(0.05))
        assert asleep(idle), "no database work in flight: the loop sleeps"

        with pytest.raises(CheckoutError):
            await db.read(lambda conn: conn.execute(text("SELECT no_such_column FROM orders")).all())
        _nothing, idle = await waits_during(lambda: asyncio.sleep(0.05))
        assert asleep(idle), "a failed statement ends the polling too"
    finally:
        await db.dispose()


async def test_sqlite_never_polls(tmp_path: Any) -> None:
    db = Database(f"sqlite:///{tmp_path / 'shop.db'}", busy_poll_ms=200)
    try:
        _value, timeouts = await waits_during(
            lambda: db.write(lambda conn: conn.execute(text("CREATE TABLE t (x INTEGER)")))
        )
        assert asleep(timeouts), "SQLite's writer thread is waited for asleep: it needs the GIL a poller holds"
    finally:
        await db.dispose()
