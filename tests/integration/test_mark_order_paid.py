"""mark_order_paid (money taken outside the gateway) through a real MCP client, on SQLite and PostgreSQL: one
effect per key however often it is sent (also concurrently), stock committed once, one order.paid, a manual
payments row, and the order's open card payment canceled at the gateway (offline and the Stripe fake)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from fakes.fake_stripe import StripeShop, event, tool_error
from mcp import Client
from sqlalchemy import func, select

from mcp_checkout.domain import Principal
from mcp_checkout.errors import Forbidden
from mcp_checkout.service.container import Services
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.service.payments import MarkOrderPaid
from mcp_checkout.store.models import payments, webhook_events
from tests.support import tool_data

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

ITEMS = [{"sku": "MUG-01", "quantity": 2}]  # 36.00 USD of 10 in stock
MARK = {"method": "bank_transfer", "reference": "SEPA-2026-0042"}


async def stock(services: Services, sku: str = "MUG-01") -> tuple[int, int]:
    from mcp_checkout.store import catalog as catalog_store

    row = await services.db.read(lambda conn: catalog_store.get_skus(conn, [sku])[sku])
    return int(row["stock_on_hand"]), int(row["reserved"])


async def paid_events(services: Services, order_id: str) -> int:
    query = select(func.count()).where(webhook_events.c.order_id == order_id, webhook_events.c.type == "order.paid")
    return int(await services.db.read(lambda conn: conn.execute(query).scalar_one()))


async def payment_rows(services: Services, order_id: str) -> list[dict[str, Any]]:
    query = select(payments).where(payments.c.order_id == order_id).order_by(payments.c.attempt)
    return [dict(row) for row in await services.db.read(lambda conn: conn.execute(query).mappings().all())]


async def test_twice_with_one_key_is_one_payment_one_stock_commit_and_one_order_paid(
    server: Any, seeded: Services
) -> None:
    async with Client(server) as client:
        tool_data(
            await client.call_tool("create_webhook_endpoint", {"url": "http://127.0.0.1:9/h", "events": ["order.paid"]})
        )
        order = tool_data(await client.call_tool("create_order", {"idempotency_key": "o-1", "items": ITEMS}))
        arguments = {"order_id": order["order_id"], "idempotency_key": "paid-1", **MARK}
        first = tool_data(await client.call_tool("mark_order_paid", arguments))
        second = tool_data(await client.call_tool("mark_order_paid", arguments))
        assert (first["status"], first["replayed"], second["status"], second["replayed"]) == (
            "paid",
            False,
            "paid",
            True,
        )
        assert first["stock"] == "committed" and await stock(seeded) == (8, 0)
        assert first["payment"]["gateway"] == "manual" and first["payment"]["amount_received"]["amount"] == 3600
        assert [h["to_status"] for h in second["status_history"]] == ["pending_payment", "paid"]
        assert await paid_events(seeded, order["order_id"]) == 1
        [row] = await payment_rows(seeded, order["order_id"])
        assert (row["gateway"], row["method"], row["reference"], row["status"]) == (
            "manual", "bank_transfer", "SEPA-2026-0042", "succeeded"
        )  # fmt: skip

        other = await client.call_tool("mark_order_paid", {**arguments, "method": "cash"})
        assert tool_error(other) == "idempotency_conflict"
        again = await client.call_tool("mark_order_paid", {**arguments, "idempotency_key": "paid-2"})
        assert tool_error(again) == "invalid_state"
        assert "paid" in json.loads(again.content[1].text)["error"]["message"]
        audit = tool_data(await client.call_tool("list_audit_events", {"action": "order.mark_paid"}))
        assert [e["target"] for e in audit["events"]] == [order["order_id"]]


async def test_concurrent_calls_with_one_key_make_one_effect(seeded: Services) -> None:
    merchant = Principal(id="local", kind="merchant", client="test")
    order = await seeded.orders.create(merchant, CreateOrder(idempotency_key="o-race", items=[("MUG-01", 2)]))
    results: list[bool] = []

    async def mark() -> None:
        view = await seeded.payments.mark_paid(merchant, MarkOrderPaid(order.order_id, "k", "cash", "till 3"))
        results.append(view.replayed)

    async with anyio.create_task_group() as tasks:
        for _ in range(5):
            tasks.start_soon(mark)
    assert sorted(results) == [False, True, True, True, True]
    assert len(await payment_rows(seeded, order.order_id)) == 1 and await stock(seeded) == (8, 0)


async def test_the_open_offline_payment_is_canceled_so_the_buyer_cannot_pay_twice(
    server: Any, seeded: Services
) -> None:
    async with Client(server) as client:
        order = tool_data(await client.call_tool("create_order", {"idempotency_key": "o-off", "items": ITEMS}))
        handoff = tool_data(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))
        tool_data(
            await client.call_tool("mark_order_paid", {"order_id": order["order_id"], "idempotency_key": "p", **MARK})
        )
    gateway: Any = seeded.payments.gateway
    assert (await gateway.retrieve_intent(handoff["intent_id"])).status == "canceled"
    assert (await gateway.simulate_payment(handoff["intent_id"])).status == "canceled"
    rows = await payment_rows(seeded, order["order_id"])
    assert [(r["attempt"], r["gateway"], r["status"]) for r in rows] == [
        (1, "offline", "canceled"), (2, "manual", "succeeded")
    ]  # fmt: skip


async def test_buyers_cannot_mark_orders_paid(seeded: Services) -> None:
    buyer = Principal(id="key_buyer", kind="buyer", client="test")
    order = await seeded.orders.create(buyer, CreateOrder(idempotency_key="b", items=[("MUG-01", 1)]))
    with pytest.raises(Forbidden):
        await seeded.payments.mark_paid(buyer, MarkOrderPaid(order.order_id, "k", "cash", "r"))


async def test_the_open_stripe_intent_is_canceled_and_a_late_card_payment_is_flagged(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order = tool_data(await client.call_tool("create_order", {"idempotency_key": "o-s", "items": ITEMS}))
        handoff = tool_data(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))
        marked = tool_data(
            await client.call_tool("mark_order_paid", {"order_id": order["order_id"], "idempotency_key": "p", **MARK})
        )
        assert marked["status"] == "paid"
        [cancel] = fake.calls("POST", f"/v1/payment_intents/{handoff['intent_id']}/cancel")
        assert cancel.idempotency_key == f"mcpco:cancel:{order['order_id']}:1"
        assert fake.snapshot(handoff["intent_id"])["status"] == "canceled"

    # A card payment that raced the merchant (succeeded before the cancel reached Stripe) is not lost.
    async with Client(shop.server) as client:
        second = tool_data(await client.call_tool("create_order", {"idempotency_key": "o-s2", "items": ITEMS}))
        intent = tool_data(await client.call_tool("create_payment_intent", {"order_id": second["order_id"]}))
        fake.succeed(intent["intent_id"])
        tool_data(
            await client.call_tool("mark_order_paid", {"order_id": second["order_id"], "idempotency_key": "q", **MARK})
        )
        response = await shop.post_event(event("payment_intent.succeeded", fake.snapshot(intent["intent_id"])))
        assert response.status_code == 200
        after = tool_data(await client.call_tool("get_order", {"order_id": second["order_id"]}))
        assert after["status"] == "paid" and [i["code"] for i in after["issues"]] == ["paid_twice"]
