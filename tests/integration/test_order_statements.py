"""create_order's database work (issue 14): ONE write transaction for a 2-line order, of 6 SQL statements on
SQLite (the key's claim, the SKUs with the configuration stamp, one stock update for both lines, the order, its
lines, its first event) and 4 on PostgreSQL (the order, lines and event in one statement: one round trip each).
With an active endpoint the order's event is still queued."""

from __future__ import annotations

from sqlalchemy import func, select

from mcp_checkout.domain import Principal
from mcp_checkout.service.container import Services
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.store.models import webhook_events
from tests.support import counted

MERCHANT = Principal(id="local", kind="merchant", client="test")
TWO_LINES = [("MUG-01", 1), ("SOCK-M-GRY", 1)]


async def test_a_two_line_order_is_one_transaction_of_six_statements_four_on_postgresql(seeded: Services) -> None:
    await seeded.orders.create(MERCHANT, CreateOrder(idempotency_key="warm", items=[("MUG-02", 1)]))
    with counted(seeded.db) as seen:
        order = await seeded.orders.create(MERCHANT, CreateOrder(idempotency_key="k1", items=TWO_LINES))
    assert len(seen["commits"]) == 1
    expected = 4 if seeded.db.dialect == "postgresql" else 6
    assert len(seen["statements"]) == expected, "\n".join(seen["statements"])
    assert order.total.amount == 1800 + 2200 and [line.sku for line in order.lines] == ["MUG-01", "SOCK-M-GRY"]


async def test_with_an_active_endpoint_the_order_event_is_still_queued(seeded: Services) -> None:
    await seeded.webhooks.create_endpoint(MERCHANT, "http://127.0.0.1:9/hooks", ["order.created"])
    order = await seeded.orders.create(MERCHANT, CreateOrder(idempotency_key="k1", items=TWO_LINES))
    queued = await seeded.db.read(
        lambda conn: conn.execute(
            select(func.count()).select_from(webhook_events).where(webhook_events.c.order_id == order.order_id)
        ).scalar_one()
    )
    assert queued == 1


async def test_without_an_active_ucp_endpoint_a_new_order_reads_no_followers(seeded: Services) -> None:
    # A merchant's endpoint is active: the order reads who subscribed, but no UCP platform can follow it.
    await seeded.webhooks.create_endpoint(MERCHANT, "http://127.0.0.1:9/hooks", ["order.created"])
    await seeded.orders.create(MERCHANT, CreateOrder(idempotency_key="warm", items=[("MUG-02", 1)]))
    with counted(seeded.db) as seen:
        await seeded.orders.create(MERCHANT, CreateOrder(idempotency_key="k1", items=TWO_LINES))
    assert not [sql for sql in seen["statements"] if "order_webhook_targets" in sql]
    assert [sql for sql in seen["statements"] if "FROM webhook_endpoints" in sql]  # the subscribers, read


async def test_an_order_followed_by_a_platform_still_queues_its_events_to_it(seeded: Services) -> None:
    order = await seeded.orders.create(MERCHANT, CreateOrder(idempotency_key="k1", items=TWO_LINES))
    assert await seeded.webhooks.follow_order(order.order_id, "http://127.0.0.1:9/platform")
    await seeded.orders.cancel(MERCHANT, order.order_id, "test")
    types = await seeded.db.read(
        lambda conn: list(
            conn.execute(select(webhook_events.c.type).where(webhook_events.c.order_id == order.order_id)).scalars()
        )
    )
    assert sorted(types) == ["order.canceled", "order.created"]
