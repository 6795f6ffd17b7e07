"""fulfill_order through a real MCP client on SQLite and PostgreSQL: partial then full shipments with tracking,
exactly once per key, never more than was ordered, only for paid orders, merchants only; webhooks carry the
tracking, and wait_for_order can wait for a shipment."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from conftest import wait_across
from mcp import Client
from test_wait_for_order import Notifications

from mcp_checkout.domain import Actor, Principal
from mcp_checkout.errors import Forbidden
from mcp_checkout.service.container import Services
from mcp_checkout.service.fulfillment import FulfillOrder
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.store import fulfillments as fulfillment_store

MERCHANT = Principal(id="local", kind="merchant", client="test")
ITEMS = [{"sku": "MUG-01", "quantity": 3}, {"sku": "SOCK-M-GRY", "quantity": 2}]


def data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    return dict(result.structured_content)


def error(result: Any) -> dict[str, Any]:
    """The error body (code, message, details, next_actions) of a failed call."""
    assert result.is_error, result.structured_content
    body: dict[str, Any] = json.loads(result.content[1].text)["error"]
    assert result.content[0].text.startswith(f"[{body['code']}] ")
    return body


async def paid_order(client: Client, services: Services, key: str) -> str:
    order = data(await client.call_tool("create_order", {"idempotency_key": key, "items": ITEMS}))
    intent, _ = await services.payments.ensure_intent(order["order_id"])
    gateway: Any = services.payments.gateway
    await services.payments.apply_intent(await gateway.simulate_payment(intent.id), actor=Actor.BUYER, source="test")
    return str(order["order_id"])


async def ship(client: Client, order_id: str, key: str, **arguments: Any) -> Any:
    return await client.call_tool("fulfill_order", {"order_id": order_id, "idempotency_key": key, **arguments})


async def test_a_partial_shipment_then_the_rest_with_tracking(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        order_id = await paid_order(client, seeded, "o-partial")
        first = data(
            await ship(
                client, order_id, "ship-1", lines=[{"sku": "MUG-01", "quantity": 2}], carrier="UPS",
                tracking_number="1Z999AA10123456784", tracking_url="https://www.ups.com/track?tracknum=1Z999AA10123456784",
            )
        )  # fmt: skip
        assert first["status"] == "partially_fulfilled" and first["replayed"] is False
        assert [(line["sku"], line["fulfilled_quantity"]) for line in first["lines"]] == [
            ("MUG-01", 2), ("SOCK-M-GRY", 0)
        ]  # fmt: skip
        [shipment] = first["fulfillments"]
        assert shipment["lines"] == [{"sku": "MUG-01", "quantity": 2}]
        assert (shipment["carrier"], shipment["tracking_number"]) == ("UPS", "1Z999AA10123456784")
        assert shipment["tracking_url"].startswith("https://www.ups.com/")

        rest = data(await ship(client, order_id, "ship-2", carrier="DHL", tracking_number="JD0140"))
        assert rest["status"] == "fulfilled"
        assert [line["fulfilled_quantity"] for line in rest["lines"]] == [3, 2]
        assert [f["lines"] for f in rest["fulfillments"]] == [
            [{"sku": "MUG-01", "quantity": 2}],
            [{"sku": "MUG-01", "quantity": 1}, {"sku": "SOCK-M-GRY", "quantity": 2}],
        ]
        assert [h["to_status"] for h in rest["status_history"]] == [
            "pending_payment", "paid", "partially_fulfilled", "fulfilled"
        ]  # fmt: skip
        shown = data(await client.call_tool("get_order", {"order_id": order_id}))
        assert shown["fulfillments"] == rest["fulfillments"]
        assert shown["stock"] == "committed"


async def test_the_same_key_ships_once_and_another_request_under_it_conflicts(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        order_id = await paid_order(client, seeded, "o-once")
        arguments = {"lines": [{"sku": "MUG-01", "quantity": 1}], "tracking_number": "T1"}
        first = data(await ship(client, order_id, "ship-once", **arguments))
        again = data(await ship(client, order_id, "ship-once", **arguments))
        assert again["replayed"] is True and again["fulfillments"] == first["fulfillments"]
        assert again["lines"][0]["fulfilled_quantity"] == 1
        other = error(await ship(client, order_id, "ship-once", lines=[{"sku": "MUG-01", "quantity": 2}]))
        assert other["code"] == "idempotency_conflict"
        assert len(await seeded.db.read(lambda conn: fulfillment_store.of_order(conn, order_id))) == 1


async def test_more_than_is_left_to_ship_is_refused_and_changes_nothing(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        order_id = await paid_order(client, seeded, "o-over")
        too_many = error(await ship(client, order_id, "s-over", lines=[{"sku": "MUG-01", "quantity": 4}]))
        assert too_many["code"] == "invalid_input" and too_many["details"] == {
            "sku": "MUG-01",
            "left": 3,
            "requested": 4,
        }
        data(await ship(client, order_id, "s-two", lines=[{"sku": "MUG-01", "quantity": 2}]))
        over = error(await ship(client, order_id, "s-two-more", lines=[{"sku": "MUG-01", "quantity": 2}]))
        assert over["details"]["left"] == 1 and "2 shipped" in over["message"]
        unknown = error(await ship(client, order_id, "s-unknown", lines=[{"sku": "MUG-02", "quantity": 1}]))
        assert unknown["code"] == "invalid_input" and "no SKU" in unknown["message"]
        bad_url = error(await ship(client, order_id, "s-url", tracking_url="javascript:alert(1)//x"))
        assert bad_url["code"] == "invalid_input"
        data(await ship(client, order_id, "s-all"))
        done = error(await ship(client, order_id, "s-after"))
        assert done["code"] == "invalid_state" and done["details"]["status"] == "fulfilled"
        order = data(await client.call_tool("get_order", {"order_id": order_id}))
        assert [line["fulfilled_quantity"] for line in order["lines"]] == [3, 2] and len(order["fulfillments"]) == 2


async def test_an_unpaid_order_cannot_be_fulfilled(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        order = data(await client.call_tool("create_order", {"idempotency_key": "o-unpaid", "items": ITEMS}))
        refused = error(await ship(client, order["order_id"], "s-unpaid"))
        assert refused["code"] == "invalid_state" and refused["details"]["status"] == "pending_payment"
        assert "mark_order_paid" in refused["next_actions"]
        after = data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert after["status"] == "pending_payment" and after["fulfillments"] == []


async def test_buyers_cannot_fulfil(seeded: Services) -> None:
    buyer = Principal(id="key_buyer", kind="buyer", client="test")
    order = await seeded.orders.create(buyer, CreateOrder(idempotency_key="b", items=[("MUG-01", 1)]))
    with pytest.raises(Forbidden):
        await seeded.fulfillment.fulfill(buyer, FulfillOrder(order.order_id, "s-buyer"))


async def test_wait_for_order_returns_when_the_order_ships(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        order_id = await paid_order(client, seeded, "o-wait")

        async def ship_all() -> None:
            await seeded.fulfillment.fulfill(MERCHANT, FulfillOrder(order_id, "s-wait", tracking_number="W1"))

        result, lag = await wait_across(
            client, {"order_id": order_id, "statuses": ["fulfilled"], "timeout_seconds": 10}, ship_all
        )
        assert result["reached"] is True and result["order"]["fulfillments"][0]["tracking_number"] == "W1"
        assert lag < 2


@pytest.mark.filterwarnings("ignore:resources/(un)?subscribe is removed")
async def test_every_shipment_is_in_the_history_and_heard_by_subscribers(server: Any, seeded: Services) -> None:
    """A second partial shipment keeps the status but is still a change: a history entry, so subscribers
    (and wait_for_order, in this process or another) hear of it."""
    heard = Notifications()
    async with Client(server, mode="legacy", message_handler=heard) as client:
        order_id = await paid_order(client, seeded, "o-heard")
        await client.subscribe_resource(f"orders://{order_id}")
        one = {"lines": [{"sku": "MUG-01", "quantity": 1}]}
        for n, lines in enumerate((one, one, {}), start=1):
            data(await ship(client, order_id, f"heard-{n}", tracking_number=f"H{n}", **lines))
            assert await heard.next() == f"orders://{order_id}", f"shipment {n} was not heard"
        shown = data(await client.call_tool("get_order", {"order_id": order_id}))
    changes = [(h["from_status"], h["to_status"]) for h in shown["status_history"]]
    assert changes[-3:] == [
        ("paid", "partially_fulfilled"), ("partially_fulfilled", "partially_fulfilled"),
        ("partially_fulfilled", "fulfilled"),
    ]  # fmt: skip
    shipments = [f["fulfillment_id"] for f in shown["fulfillments"]]
    assert [h["reason"] for h in shown["status_history"][-3:]] == [
        f"shipped 1 unit(s) ({shipments[0]})", f"shipped 1 unit(s) ({shipments[1]})", f"shipped 3 unit(s) ({shipments[2]})"
    ]  # fmt: skip


async def test_concurrent_shipments_of_the_last_units_ship_them_once(seeded: Services) -> None:
    order = await seeded.orders.create(MERCHANT, CreateOrder(idempotency_key="o-race", items=[("MUG-01", 2)]))
    intent, _ = await seeded.payments.ensure_intent(order.order_id)
    gateway: Any = seeded.payments.gateway
    await seeded.payments.apply_intent(await gateway.simulate_payment(intent.id), actor=Actor.BUYER, source="test")
    outcomes: list[str] = []

    async def ship_one(key: str) -> None:
        try:
            await seeded.fulfillment.fulfill(MERCHANT, FulfillOrder(order.order_id, key, [("MUG-01", 2)]))
            outcomes.append("shipped")
        except Exception as exc:  # the loser: nothing left to ship
            outcomes.append(getattr(exc, "code", repr(exc)))

    async with anyio.create_task_group() as tasks:
        for n in range(4):
            tasks.start_soon(ship_one, f"race-{n}")
    assert sorted(outcomes) == ["invalid_state"] * 3 + ["shipped"]  # the losers find it fulfilled
    final = await seeded.orders.get(MERCHANT, order.order_id)
    assert final.status == "fulfilled" and final.lines[0].fulfilled_quantity == 2 and len(final.fulfillments) == 1


async def test_each_shipment_is_announced_with_its_tracking(seeded: Services) -> None:
    from fakes.webhook_receiver import Receiver, verify_python

    with Receiver() as receiver:
        events = ["order.partially_fulfilled", "order.fulfilled"]
        created = await seeded.webhooks.create_endpoint(MERCHANT, receiver.url, events)
        order = await seeded.orders.create(MERCHANT, CreateOrder(idempotency_key="o-hooks", items=[("MUG-01", 3)]))
        intent, _ = await seeded.payments.ensure_intent(order.order_id)
        gateway: Any = seeded.payments.gateway
        await seeded.payments.apply_intent(await gateway.simulate_payment(intent.id), actor=Actor.BUYER, source="t")
        for n in (1, 2, 3):
            lines = [("MUG-01", 1)] if n < 3 else None
            await seeded.fulfillment.fulfill(MERCHANT, FulfillOrder(order.order_id, f"h-{n}", lines, "UPS", f"1Z{n}"))
        with anyio.fail_after(10):
            while len(receiver.delivered()) < 3:
                await seeded.webhooks.dispatch_once()
                await anyio.sleep(0.02)
    got = sorted((verify_python(created.signing_secret, r) for r in receiver.delivered()), key=lambda p: p["timestamp"])
    assert [p["type"] for p in got] == ["order.partially_fulfilled", "order.partially_fulfilled", "order.fulfilled"]
    assert [[f["tracking_number"] for f in p["data"]["fulfillments"]] for p in got] == [
        ["1Z1"], ["1Z1", "1Z2"], ["1Z1", "1Z2", "1Z3"]
    ]  # fmt: skip
    assert [p["data"]["status"] for p in got] == ["partially_fulfilled", "partially_fulfilled", "fulfilled"]
