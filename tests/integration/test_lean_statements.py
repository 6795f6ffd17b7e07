"""Lean statements (store/lean.py) run create_order's statements on the driver: they return what
Connection.execute returns (types processed: UTC datetimes, booleans, sealed columns), belong to the write
transaction they run in (rolled back with it, also as its first statement), raise SQLAlchemy's errors, are
heard by statement listeners, and behind PgBouncer prepare no named statement."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, bindparam, event, func, select, text
from sqlalchemy.exc import IntegrityError

from mcp_checkout.domain import Principal, utc_now
from mcp_checkout.service.container import Services
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.store import catalog as catalog_store
from mcp_checkout.store import idempotency as idempotency_store
from mcp_checkout.store import orders as order_store
from mcp_checkout.store.db import Database
from mcp_checkout.store.lean import Lean
from mcp_checkout.store.models import idempotency_keys, order_events, orders

MERCHANT = Principal(id="local", kind="merchant", client="test")
ADDRESS = {"name": "Ada Buyer", "line1": "1 Market St", "city": "San Francisco", "region": "CA",
           "postal_code": "94105", "country": "US"}  # fmt: skip
_ORDER = Lean(select(orders).where(orders.c.id == bindparam("order_id")))


async def test_a_lean_read_returns_what_execute_returns(seeded: Services) -> None:
    created = await seeded.orders.create(
        MERCHANT,
        CreateOrder(idempotency_key="k", items=[("MUG-01", 2)], email="ada@example.com", shipping_address=ADDRESS,
                    buyer={"email": "ada@example.com", "name": "Ada"}),
    )  # fmt: skip

    def both(conn: Connection) -> tuple[Any, Any]:
        lean = _ORDER.first(conn, {"order_id": created.order_id})
        core = conn.execute(select(orders).where(orders.c.id == created.order_id)).one()
        return lean, core

    lean, core = await seeded.db.write(both)
    assert tuple(lean) == tuple(core)
    named = dict(zip(core._fields, lean, strict=True))
    assert named["created_at"].utcoffset() == timedelta(0)  # UTC-aware, as UtcDateTime gives it
    assert named["shipping_address"]["city"] == "San Francisco"  # opened (sealed at rest)
    assert named["email"] == "ada@example.com" and named["prices_include_tax"] is False

    def skus(conn: Connection) -> tuple[Any, Any]:
        found, stamp = catalog_store.skus_to_order(conn, ["MUG-01", "SOCK-M-GRY"])
        core = catalog_store.get_skus(conn, ["MUG-01", "SOCK-M-GRY"])
        return (found, stamp), {code: dict(row) for code, row in core.items()}

    (found, stamp), core_skus = await seeded.db.write(skus)
    assert found == core_skus and found["MUG-01"]["requires_shipping"] is True
    assert stamp == await seeded.db.read(
        lambda conn: conn.execute(text("SELECT version FROM store_config_version")).scalar()
    )


async def test_a_lean_write_is_rolled_back_with_its_transaction(seeded: Services) -> None:
    before = await seeded.db.read(lambda conn: catalog_store.get_skus(conn, ["MUG-01"])["MUG-01"]["reserved"])

    def reserve_then_fail(conn: Connection) -> None:
        # The lean statement is the transaction's first: it must begin it, not run on its own.
        assert catalog_store.reserve(conn, [("MUG-01", 1)], utc_now()) == {"MUG-01"}
        raise LookupError("after the reservation")

    with pytest.raises(LookupError):
        await seeded.db.write(reserve_then_fail)
    after = await seeded.db.read(lambda conn: catalog_store.get_skus(conn, ["MUG-01"])["MUG-01"]["reserved"])
    assert after == before

    # ... and one that returns is committed.
    assert await seeded.db.write(lambda conn: catalog_store.reserve(conn, [("MUG-01", 1)], utc_now())) == {"MUG-01"}
    assert (
        await seeded.db.read(lambda conn: catalog_store.get_skus(conn, ["MUG-01"])["MUG-01"]["reserved"]) == before + 1
    )


def _order_values(order_id: str) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    now = utc_now()
    values: dict[str, Any] = dict.fromkeys(order_store.ORDER_FIELDS)
    values.pop("email_hash")
    values.update(id=order_id, principal_id="local", client_name="test", status="pending_payment",
                  stock_state="reserved", currency="USD", subtotal_minor=100, total_minor=100, discount_total_minor=0,
                  shipping_total_minor=0, tax_total_minor=0, prices_include_tax=False, requires_shipping=False,
                  request_fingerprint="f", created_at=now, updated_at=now, expires_at=now + timedelta(hours=1))  # fmt: skip
    line = {"line_no": 1, "sku": "MUG-01", "title": "Mug", "unit_price_minor": 100, "quantity": 1,
            "line_total_minor": 100, "discount_minor": 0, "tax_minor": 0, "tax_category": "standard",
            "requires_shipping": False, "image_url": ""}  # fmt: skip
    event = {"from_status": None, "to_status": "pending_payment", "actor": "system", "principal_id": "local",
             "reason": "test", "at": now}  # fmt: skip
    return values, [line], event


async def test_a_lean_constraint_violation_is_an_integrity_error_and_the_pool_stays_usable(seeded: Services) -> None:
    values, lines, event_ = _order_values("ord_twice")
    number = await seeded.db.write(lambda conn: order_store.insert_order(conn, values, lines, event_))
    assert number.startswith("MC-")
    with pytest.raises(IntegrityError):
        await seeded.db.write(lambda conn: order_store.insert_order(conn, values, lines, event_))
    count = select(func.count()).select_from(order_events).where(order_events.c.order_id == "ord_twice")
    assert await seeded.db.read(lambda conn: conn.execute(count).scalar_one()) == 1
    created = await seeded.orders.create(MERCHANT, CreateOrder(idempotency_key="after", items=[("MUG-01", 1)]))
    assert created.status == "pending_payment"


@contextmanager
def heard(db: Database) -> Iterator[list[str]]:
    engine = db.sync_engine if db.dialect == "sqlite" else db.async_engine.sync_engine
    statements: list[str] = []

    def listener(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        statements.append(" ".join(sql.split()))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", listener)


async def test_statement_listeners_hear_lean_statements(seeded: Services) -> None:
    with heard(seeded.db) as statements:
        await seeded.orders.create(MERCHANT, CreateOrder(idempotency_key="k", items=[("MUG-01", 1)]))
    assert statements[0].startswith("INSERT INTO idempotency_keys")
    assert any(sql.startswith("UPDATE skus SET reserved") for sql in statements)
    assert any("INSERT INTO orders" in sql for sql in statements)


async def test_behind_pgbouncer_lean_statements_prepare_no_named_statement(seeded: Services) -> None:
    if seeded.db.dialect != "postgresql":
        pytest.skip("PgBouncer fronts PostgreSQL only")
    db = Database(seeded.db.url, pooler="pgbouncer", pool_size=1, max_overflow=0)
    try:

        def claim_and_look(conn: Connection) -> list[str]:
            now = utc_now()
            assert idempotency_store.try_insert(
                conn, principal_id="local", operation="test", key="pooled", fingerprint="f", status="completed",
                resource_id=None, claim_token="t", locked_until=now, now=now, expires_at=now + timedelta(days=1),
            ) is not None  # fmt: skip
            return list(conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements").scalars())

        prepared = await db.write(claim_and_look)
        assert not any("idempotency_keys" in sql for sql in prepared), prepared
        found = select(func.count()).select_from(idempotency_keys).where(idempotency_keys.c.key == "pooled")
        assert await db.read(lambda conn: conn.execute(found).scalar_one()) == 1
    finally:
        await db.dispose()
