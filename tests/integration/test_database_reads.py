"""How Database.read runs: a snapshot read is one REPEATABLE READ READ ONLY transaction on PostgreSQL; a read
of one statement runs without a transaction there (one round trip) and refuses a second statement; and a
read leaves the pooled connection as it found it, so the next write is still one atomic READ COMMITTED
transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, func, insert, select, text

from mcp_checkout.store.db import Database, OneStatementOnly
from mcp_checkout.store.models import order_events

NOW = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=1, max_overflow=0)  # one connection: every call reuses it
    yield database
    await database.dispose()


def _event_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(order_events)).scalar_one())


def _add_event(conn: Connection, reason: str) -> None:
    conn.execute(
        insert(order_events).values(order_id="o1", to_status="pending_payment", actor="system", reason=reason, at=NOW)
    )


async def _add_order(db: Database) -> None:
    def add(conn: Connection) -> None:
        conn.execute(
            text(
                "INSERT INTO orders (id, principal_id, client_name, status, stock_state, currency, subtotal_minor,"
                " total_minor, request_fingerprint, created_at, updated_at, expires_at) VALUES ('o1', 'local', '',"
                " 'pending_payment', 'reserved', 'USD', 0, 0, 'f', :now, :now, :now)"
            ),
            {"now": NOW.replace(tzinfo=None) if conn.dialect.name == "sqlite" else NOW},
        )

    await db.write(add)


async def test_one_statement_read_sees_the_last_commit(db: Database) -> None:
    await _add_order(db)
    await db.write(lambda conn: _add_event(conn, "first"))
    assert await db.read(_event_count, one_statement=True) == 1
    await db.write(lambda conn: _add_event(conn, "second"))
    assert await db.read(_event_count, quick=True, one_statement=True) == 2


async def test_one_statement_read_refuses_a_second_statement(db: Database) -> None:
    def two(conn: Connection) -> int:
        _event_count(conn)
        return _event_count(conn)

    with pytest.raises(OneStatementOnly):
        await db.read(two, one_statement=True)
    with pytest.raises(OneStatementOnly):
        await db.read(two, quick=True, one_statement=True)
    assert await db.read(two) == 0  # without the flag: one snapshot, any number of statements


def _log_simple_queries(conn: Connection) -> list[str]:
    """The simple-protocol queries (BEGIN, COMMIT; not the prepared statements) this connection, the pool's
    only one, sends from now on: asyncpg's query logger hears of them on the next turn of the event loop."""
    sent: list[str] = []
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.add_query_logger(lambda record: sent.append(" ".join(record.query.split()).rstrip(";")))
    return sent


async def _heard(sent: list[str]) -> list[str]:
    await asyncio.sleep(0)
    heard = list(sent)
    sent.clear()
    return heard


async def test_postgresql_one_statement_read_is_one_round_trip(pg_url: str) -> None:
    db = Database(pg_url, pool_size=1, max_overflow=0)
    try:
        await _one_round_trip(db)
    finally:
        await db.dispose()


async def _one_round_trip(db: Database) -> None:
    sent = await db.read(_log_simple_queries)
    probe = text("SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')")
    assert tuple(await db.read(lambda conn: conn.execute(probe).one())) == ("repeatable read", "on")
    assert await _heard(sent) == ["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "COMMIT"]
    assert tuple(await db.read(lambda conn: conn.execute(probe).one(), one_statement=True)) == ("read committed", "off")
    assert await _heard(sent) == []  # the statement alone: no BEGIN, no COMMIT


async def test_postgresql_behind_pgbouncer_every_read_is_a_transaction(pg_url: str) -> None:
    db = Database(pg_url, pooler="pgbouncer", pool_size=1, max_overflow=0)
    try:
        sent = await db.read(_log_simple_queries)
        # A transaction holds asyncpg's prepare and execute on one server connection behind the pooler.
        assert await db.read(_event_count, one_statement=True) >= 0
        assert await _heard(sent) == ["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "COMMIT"]
    finally:
        await db.dispose()


async def test_a_read_leaves_the_next_write_one_read_committed_transaction(db: Database) -> None:
    await _add_order(db)

    def fails(conn: Connection) -> None:
        conn.execute(text("SELECT 1"))
        raise LookupError("not found")

    # Every kind of read, ending well or raising, on the pool's one connection ...
    for one_statement in (False, True):
        for quick in (False, True):
            assert await db.read(_event_count, quick=quick, one_statement=one_statement) == 0
            with pytest.raises(LookupError):
                await db.read(fails, quick=quick, one_statement=one_statement)

    # ... and the next write is still all or nothing, and not read-only.
    def half_then_fail(conn: Connection) -> None:
        _add_event(conn, "half")
        raise LookupError("after the first insert")

    with pytest.raises(LookupError):
        await db.write(half_then_fail)
    assert await db.read(_event_count) == 0
    if db.dialect == "postgresql":
        settings = text("SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')")
        assert tuple(await db.write(lambda conn: conn.execute(settings).one())) == ("read committed", "off")


async def test_postgresql_calls_one_after_another_reuse_the_connection_returned_last(pg_url: str) -> None:
    # Prepared statements and PostgreSQL's choice of a generic plan (after a statement's first five runs) live
    # per server connection. Handing out the connection that went back to the pool first (FIFO) spread calls
    # made one after another over every connection a burst had opened: each call a cold connection, its SQL
    # prepared again and planned again (get_order's statement: ~0.8 ms of planning).
    db = Database(pg_url, pool_size=4, max_overflow=0)
    backend_pid = text("SELECT pg_backend_pid()")
    try:
        burst = await asyncio.gather(
            *(
                db.read(lambda conn: conn.execute(text("SELECT pg_backend_pid(), pg_sleep(0.05)")).one())
                for _ in range(4)
            )
        )
        assert len({row[0] for row in burst}) == 4  # the burst opened four connections
        pids = [
            await db.read(lambda conn: conn.execute(backend_pid).scalar_one(), one_statement=True) for _ in range(8)
        ]
        assert len(set(pids)) == 1
    finally:
        await db.dispose()
