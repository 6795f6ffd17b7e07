"""The merchant cancels a paid order that has not shipped: refunded in full at the gateway (offline and the Stripe
fake), restocked, announced (order.canceled, then order.refunded), exactly once however often it is sent, also
concurrently, and never together with a shipment. Buyers still cancel only unpaid orders. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from fakes.fake_stripe import StripeShop, event, tool_error
from mcp import Client
from sqlalchemy import select

from mcp_checkout.domain import Actor, Principal
from mcp_checkout.errors import CheckoutError, InvalidState
from mcp_checkout.service.container import Services
from mcp_checkout.service.fulfillment import FulfillOrder
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.service.payments import MarkOrderPaid
from mcp_checkout.store import catalog as catalog_store
from mcp_checkout.store.models import refunds, webhook_events
from tests.support import tool_data

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

MERCHANT = Principal(id="local", kind="merchant", client="test")
ITEMS = [{"sku": "MUG-01", "quantity": 2}]  # 36.00 USD of 10 in stock


async def stock(services: Services, sku: str = "MUG-01") -> tuple[int, int]:
    row = await services.db.read(lambda conn: catalog_store.get_skus(conn, [sku])[sku])
    return int(row["stock_on_hand"]), int(row["reserved"])


async def refund_rows(services: Services, order_id: str) -> list[dict[str, Any]]:
    query = select(refunds).where(refunds.c.order_id == order_id)
    return [dict(row) for row in await services.db.read(lambda conn: conn.execute(query).mappings().all())]


async def event_types(services: Services, order_id: str) -> list[str]:
    query = (
        select(webhook_events.c.type).where(webhook_events.c.order_id == order_id).order_by(webhook_events.c.created_at)
    )
    return list(await services.db.read(lambda conn: conn.execute(query).scalars().all()))


async def paid_offline(services: Services, principal: Principal = MERCHANT, key: str = "o") -> str:
    order = await services.orders.create(principal, CreateOrder(idempotency_key=key, items=[("MUG-01", 2)]))
    intent, _ = await services.payments.ensure_intent(order.order_id)
    gateway: Any = services.payments.gateway
    await services.payments.apply_intent(await gateway.simulate_payment(intent.id), actor=Actor.BUYER, source="test")
    return order.order_id


async def offline_refunded(services: Services, order_id: str) -> tuple[int, int]:
    """(units refunded at the offline gateway, refund calls it took) for the order's card payment."""
    payment = (await services.orders.get(MERCHANT, order_id)).payment
    assert payment is not None and payment.intent_id is not None
    gateway: Any = services.payments.gateway
    row = await gateway._intents.get(payment.intent_id)
    return int(row["amount_refunded_minor"]), len(row["metadata"]["refund_keys"])


async def test_the_merchant_cancels_a_paid_order_refund_restock_and_both_events(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        events = {"url": "http://127.0.0.1:9/h", "events": ["order.canceled", "order.refunded"]}
        tool_data(await client.call_tool("create_webhook_endpoint", events))
        order_id = await paid_offline(seeded)
        assert await stock(seeded) == (8, 0)
        canceled = tool_data(await client.call_tool("cancel_order", {"order_id": order_id, "reason": "out of glaze"}))
        assert canceled["status"] == "canceled" and canceled["stock"] == "released"
        assert canceled["payment"]["refunded"]["amount"] == 3600
        assert [h["to_status"] for h in canceled["status_history"]] == ["pending_payment", "paid", "canceled"]
        assert await stock(seeded) == (10, 0)  # back on sale
        assert await offline_refunded(seeded, order_id) == (3600, 1)
        [row] = await refund_rows(seeded, order_id)
        assert (row["status"], row["amount_minor"]) == ("succeeded", 3600)
        assert await event_types(seeded, order_id) == ["order.canceled", "order.refunded"]

        again = tool_data(await client.call_tool("cancel_order", {"order_id": order_id}))
        assert again["status"] == "canceled" and await stock(seeded) == (10, 0)
        assert await offline_refunded(seeded, order_id) == (3600, 1) and len(await refund_rows(seeded, order_id)) == 1
        assert await event_types(seeded, order_id) == ["order.canceled", "order.refunded"]
        audit = tool_data(await client.call_tool("list_audit_events", {}))
        assert {"order.cancel", "order.refund"} <= {e["action"] for e in audit["events"] if e["target"] == order_id}


async def test_buyers_still_cancel_only_unpaid_orders(seeded: Services) -> None:
    buyer = Principal(id="key_buyer", kind="buyer", client="test")
    order_id = await paid_offline(seeded, buyer)
    with pytest.raises(InvalidState, match="only the merchant"):
        await seeded.orders.cancel(buyer, order_id, None)
    assert (await seeded.orders.get(buyer, order_id)).status == "paid" and await stock(seeded) == (8, 0)
    assert await refund_rows(seeded, order_id) == []


async def test_a_shipped_order_cannot_be_canceled(seeded: Services) -> None:
    order_id = await paid_offline(seeded)
    await seeded.fulfillment.fulfill(MERCHANT, FulfillOrder(order_id, "ship", [("MUG-01", 1)]))
    with pytest.raises(InvalidState, match="partially_fulfilled"):
        await seeded.orders.cancel(MERCHANT, order_id, None)
    assert await refund_rows(seeded, order_id) == [] and await stock(seeded) == (8, 0)


async def test_an_order_paid_by_hand_is_canceled_and_restocked_and_the_merchant_told_to_refund_it(
    seeded: Services,
) -> None:
    order = await seeded.orders.create(MERCHANT, CreateOrder(idempotency_key="m", items=[("MUG-01", 2)]))
    await seeded.payments.mark_paid(MERCHANT, MarkOrderPaid(order.order_id, "p", "cash", "till 3"))
    canceled = await seeded.orders.cancel(MERCHANT, order.order_id, None)
    assert canceled.status == "canceled" and await stock(seeded) == (10, 0)
    assert [issue.code for issue in canceled.issues] == ["refund_by_hand"] and "cash" in canceled.issues[0].message
    again = await seeded.orders.cancel(MERCHANT, order.order_id, None)
    assert len(again.issues) == 1 and await stock(seeded) == (10, 0)


async def test_concurrent_cancels_refund_and_restock_once(seeded: Services) -> None:
    order_id = await paid_offline(seeded)
    outcomes: list[str] = []

    async def cancel() -> None:
        outcomes.append((await seeded.orders.cancel(MERCHANT, order_id, None)).status)

    async with anyio.create_task_group() as tasks:
        for _ in range(5):
            tasks.start_soon(cancel)
    assert outcomes == ["canceled"] * 5
    assert await stock(seeded) == (10, 0)
    assert await offline_refunded(seeded, order_id) == (3600, 1)
    assert [r["status"] for r in await refund_rows(seeded, order_id)] == ["succeeded"]


async def test_cancel_racing_a_shipment_lets_exactly_one_win(seeded: Services) -> None:
    shipped = 0
    for round_ in range(3):
        order_id = await paid_offline(seeded, key=f"race-{round_}")
        outcomes: dict[str, str] = {}

        async def cancel(order_id: str = order_id, outcomes: dict[str, str] = outcomes) -> None:
            try:
                outcomes["cancel"] = (await seeded.orders.cancel(MERCHANT, order_id, None)).status
            except CheckoutError as exc:
                outcomes["cancel"] = exc.code

        async def ship(order_id: str = order_id, outcomes: dict[str, str] = outcomes, n: int = round_) -> None:
            try:
                outcomes["ship"] = (await seeded.fulfillment.fulfill(MERCHANT, FulfillOrder(order_id, f"s{n}"))).status
            except CheckoutError as exc:
                outcomes["ship"] = exc.code

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(cancel)
            tasks.start_soon(ship)
        final = await seeded.orders.get(MERCHANT, order_id)
        refunded = [r["amount_minor"] for r in await refund_rows(seeded, order_id)]
        if final.status == "canceled":
            assert outcomes == {"cancel": "canceled", "ship": "invalid_state"} and refunded == [3600]
            assert final.fulfillments == [] and final.stock == "released"
        else:
            assert outcomes == {"cancel": "invalid_state", "ship": "fulfilled"} and refunded == []
            assert final.status == "fulfilled" and final.stock == "committed"
            shipped += 1
    assert await stock(seeded) == (10 - 2 * shipped, 0)  # canceled rounds restocked, shipped ones sold


async def test_stripe_refund_at_the_gateway_once_even_after_a_failure_and_the_webhook(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order = tool_data(await client.call_tool("create_order", {"idempotency_key": "o-s", "items": ITEMS}))
        handoff = tool_data(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))
        intent_id = handoff["intent_id"]
        fake.succeed(intent_id)
        assert (
            tool_data(await client.call_tool("sync_payment", {"order_id": order["order_id"]}))["order"]["status"]
            == "paid"
        )

        fake.fail_next("500", times=3, path="/v1/refunds")  # the call and both SDK retries
        down = await client.call_tool("cancel_order", {"order_id": order["order_id"]})
        assert tool_error(down) == "payment_gateway_error"
        view = tool_data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert view["status"] == "canceled" and view["stock"] == "released"  # canceled first, refund owed
        assert [i["code"] for i in view["issues"]] == ["refund_failed"] and view["payment"]["refunded"]["amount"] == 0
        assert fake.refunded_total(intent_id) == 0

        retried = tool_data(await client.call_tool("cancel_order", {"order_id": order["order_id"]}))
        assert retried["payment"]["refunded"]["amount"] == 3600 and fake.refunded_total(intent_id) == 3600
        [made] = [c for c in fake.calls("POST", "/v1/refunds") if not c.replayed][-1:]
        assert made.idempotency_key.startswith("mcpco:refund:re_") and made.params["amount"] == "3600"
        response = await shop.post_event(event("charge.refunded", fake.charge(intent_id)))
        assert response.status_code == 200
        tool_data(await client.call_tool("cancel_order", {"order_id": order["order_id"]}))
        final = tool_data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert final["status"] == "canceled" and final["payment"]["refunded"]["amount"] == 3600
        assert len(fake.refunds) == 1 and fake.refunded_total(intent_id) == 3600
        assert await shop.scalar("select stock_on_hand from skus where sku = 'MUG-01'") == 10
