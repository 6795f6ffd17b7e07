"""How Database.read runs: a snapshot read is one REPEATABLE READ READ ONLY transaction on PostgreSQL; a read
of one statement runs without a transaction there (one round trip) and refuses a second statement; and a
read leaves the pooled connection as it found it, so the next write is still one atomic READ COMMITTED
transaction. Database.fetch (a prebuilt statement, store/hot_read.py) reads what SQLAlchemy reads, in one
round trip on PostgreSQL, and survives a lost connection and a schema change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    func,
    insert,
    select,
    text,
)

from mcp_checkout.domain import Principal
from mcp_checkout.errors import StorageUnavailable
from mcp_checkout.service.container import Services
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.store import catalog as catalog_store
from mcp_checkout.store import order_rows
from mcp_checkout.store.db import Database, OneStatementOnly
from mcp_checkout.store.hot_read import HotRead
from mcp_checkout.store.models import order_events
from tests.support import pg_admin

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
        assert await db.fetch(_EVENTS, "no such order") == []
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


_EVENTS_OF = select(order_events).where(order_events.c.order_id == bindparam("order_id")).order_by(order_events.c.id)
_EVENTS = HotRead(_EVENTS_OF, "order_id")


async def test_fetch_reads_what_sqlalchemy_reads(db: Database) -> None:
    await _add_order(db)
    for reason in ("first", None):
        await db.write(lambda conn, reason=reason: _add_event(conn, reason))  # type: ignore[misc]
    expected = await db.read(lambda conn: conn.execute(_EVENTS_OF, {"order_id": "o1"}).all())
    for _ in range(3):  # prepared on the first call, reused by the next ones
        rows = await db.fetch(_EVENTS, "o1")
        assert [tuple(row) for row in rows] == [tuple(row) for row in expected]
    assert rows[0][-1] == NOW and rows[0][-1].tzinfo is not None  # `at`: timezone-aware UTC, as UtcDateTime reads it
    assert await db.fetch(_EVENTS, "no such order") == []


async def test_fetch_is_heard_by_statement_counters(db: Database) -> None:
    engine = db.sync_engine if db.dialect == "sqlite" else db.async_engine.sync_engine
    heard: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        heard.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        await db.fetch(_EVENTS, "no such order")
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert len(heard) == 1 and "order_events" in heard[0]


async def test_postgresql_fetch_is_one_round_trip(pg_url: str) -> None:
    db = Database(pg_url, pool_size=1, max_overflow=0)
    try:
        await db.fetch(_BACKEND_PID)  # the first hot read pins its connection
        assert db._pinned is not None
        sent: list[str] = []
        db._pinned.driver.add_query_logger(lambda record: sent.append(" ".join(record.query.split())))
        assert await db.fetch(_EVENTS, "no such order") == []
        assert await _heard(sent) == []  # no BEGIN, no COMMIT: the prepared statement alone
    finally:
        await db.dispose()


_BACKEND_PID = HotRead(select(func.pg_backend_pid()))


async def test_postgresql_hot_reads_run_on_one_pinned_connection_and_overflow_to_the_pool(pg_url: str) -> None:
    db = Database(pg_url, pool_size=2, max_overflow=0)
    try:
        pinned = {row[0] for _ in range(5) for row in await db.fetch(_BACKEND_PID)}
        assert len(pinned) == 1  # one after another: the pinned connection every time
        pooled = {await db.read(lambda conn: conn.execute(text("SELECT pg_backend_pid()")).scalar_one())}
        assert not pooled & pinned  # it is not one of the pool's
        # Reads at once: one on the pinned connection, the others on pooled ones; every one answers.
        slow = HotRead(select(func.pg_backend_pid(), func.pg_sleep(0.2)))
        at_once = await asyncio.gather(*(db.fetch(slow) for _ in range(3)))
        pids = [rows[0][0] for rows in at_once]
        assert pinned < set(pids) and len(set(pids)) == 3
        assert {row[0] for row in await db.fetch(_BACKEND_PID)} == pinned  # and it is still pinned
    finally:
        await db.dispose()
    left = await _connections_of(pg_url)
    assert not left & pinned, "dispose closes the pinned connection"


async def _connections_of(url: str) -> set[int]:
    probe = Database(url, pool_size=1, max_overflow=0)
    try:
        own = await probe.read(lambda conn: conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        return {
            int(pid)
            for pid in await probe.read(
                lambda conn: (
                    conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))
                    .scalars()
                    .all()
                )
            )
        } - {int(own)}
    finally:
        await probe.dispose()


async def test_postgresql_fetch_after_its_connection_was_lost(pg_url: str) -> None:
    db = Database(pg_url, pool_size=1, max_overflow=0)
    try:
        assert await db.fetch(_EVENTS, "no such order") == []
        for kill in ("the pinned connection", "a pooled connection"):
            if kill == "the pinned connection":
                pid = (await db.fetch(_BACKEND_PID))[0][0]
            else:  # a read that finds the pinned connection busy takes a pooled one: lose that one
                assert db._pinned is not None
                db._pinned.busy = True
                pid = (await db.fetch(_BACKEND_PID))[0][0]
            await pg_admin(f"SELECT pg_terminate_backend({int(pid)})", pg_url)
            with pytest.raises(StorageUnavailable):
                await db.fetch(_EVENTS, "no such order")
            if db._pinned is not None:
                db._pinned.busy = False
            assert await db.fetch(_EVENTS, "no such order") == []  # the broken connection was replaced
    finally:
        await db.dispose()


async def test_postgresql_fetch_after_a_schema_change(pg_url: str) -> None:
    table = Table("hot_read_probe", MetaData(), Column("id", Integer, primary_key=True), Column("name", String(10)))
    probe = HotRead(select(table).where(table.c.id == bindparam("id")), "id")
    db = Database(pg_url, pool_size=1, max_overflow=0)
    try:
        await db.write(table.create)
        await db.write(lambda conn: conn.execute(insert(table).values(id=1, name="short")))
        assert [tuple(row) for row in await db.fetch(probe, 1)] == [(1, "short")]
        # The prepared statement's result type changes under it: prepared again, the call still answers.
        await db.write(lambda conn: conn.execute(text("ALTER TABLE hot_read_probe ALTER COLUMN name TYPE text")))
        assert [tuple(row) for row in await db.fetch(probe, 1)] == [(1, "short")]
    finally:
        await db.write(lambda conn: table.drop(conn, checkfirst=True))
        await db.dispose()


async def test_the_hot_reads_of_a_product_and_an_order_read_what_sqlalchemy_reads(seeded: Services) -> None:
    # Every kind of column the two views read: sealed buyer data, JSON (null and not), booleans, timestamps.
    who = Principal(id="reader", kind="agent", client="test")
    order = await seeded.orders.create(
        who,
        CreateOrder(
            idempotency_key="hot-read",
            items=[("MUG-01", 2), ("SOCK-M-GRY", 1)],
            email="buyer@example.com",
            buyer={"name": "Ada Buyer", "phone": "+15550100"},
            merchant_reference_id="ref-hot-read",
        ),
    )
    product = (await seeded.catalog.get_product(sku="SOCK-M-GRY")).product_id
    for read, value in (
        (catalog_store.PRODUCT_WITH_SKUS_BY_CODE, "SOCK-M-GRY"),
        (catalog_store.PRODUCT_WITH_SKUS_BY_ID, product),
        (order_rows.VIEW_ROWS, order.order_id),
    ):
        params = dict(zip(read.names, [value], strict=True))
        expected = await seeded.db.read(
            lambda conn, read=read, params=params: conn.execute(read.statement, params).all()
        )  # type: ignore[misc]
        assert expected, read.statement
        for _ in range(2):  # the first call compiles (and on PostgreSQL prepares), the second reuses
            assert [tuple(row) for row in await seeded.db.fetch(read, value)] == [tuple(row) for row in expected]
    fetched = await seeded.orders.get(who, order.order_id)
    assert fetched.email == "buyer@example.com" and fetched.buyer is not None and fetched.buyer.name == "Ada Buyer"
    assert fetched.model_dump() == order.model_dump()
