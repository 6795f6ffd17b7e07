"""sync_payment (for a webhook that never came) and refund_order, through the MCP client, with the real
``stripe`` SDK against the local fake. Refunds are idempotent per key, never exceed what was captured
(also under concurrency, checked against the fake's own totals), and a failed gateway call leaves
nothing counted.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from fakes.fake_stripe import StripeShop, event, tool_error
from mcp import Client

from tests.support import tool_data

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

MUGS = [{"sku": "MUG-01", "quantity": 2}]  # 36.00 USD of 10 in stock


async def stock_of(shop: StripeShop, sku: str) -> tuple[int, int]:
    row = await shop.db.read(
        lambda conn: conn.exec_driver_sql(
            "select stock_on_hand, reserved from skus where sku = " + ("?" if conn.dialect.name == "sqlite" else "$1"),
            (sku,),
        ).one()
    )
    return int(row[0]), int(row[1])


async def paid_order(client: Client, shop: StripeShop, key: str) -> tuple[dict[str, Any], str]:
    """An order paid in full at the fake and synced: (order view, intent id)."""
    order = tool_data(await client.call_tool("create_order", {"idempotency_key": key, "items": MUGS}))
    handoff = tool_data(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))
    shop.fake.succeed(handoff["intent_id"])
    synced = tool_data(await client.call_tool("sync_payment", {"order_id": order["order_id"]}))
    assert synced["order"]["status"] == "paid"
    return synced["order"], handoff["intent_id"]


async def refund(client: Client, order_id: str, key: str, amount: int | None = None) -> Any:
    args: dict[str, Any] = {"order_id": order_id, "idempotency_key": key, "reason": "requested_by_customer"}
    if amount is not None:
        args["amount"] = amount
    return await client.call_tool("refund_order", args)


async def test_sync_payment_pulls_success_when_no_webhook_came(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order = tool_data(await client.call_tool("create_order", {"idempotency_key": "k-sync", "items": MUGS}))
        early = await client.call_tool("sync_payment", {"order_id": order["order_id"]})
        assert tool_error(early) == "payment_not_started"
        handoff = tool_data(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))
        assert await stock_of(shop, "MUG-01") == (10, 2)

        waiting = tool_data(await client.call_tool("sync_payment", {"order_id": order["order_id"]}))
        assert (
            waiting["gateway_status"] == "requires_payment_method" and waiting["order"]["status"] == "pending_payment"
        )
        fake.fail_payment(handoff["intent_id"])
        declined = tool_data(await client.call_tool("sync_payment", {"order_id": order["order_id"]}))
        assert declined["outcome"] == "payment failed" and declined["order"]["status"] == "pending_payment"
        assert "declined" in declined["order"]["payment"]["last_error"]

        fake.succeed(handoff["intent_id"])
        synced = tool_data(await client.call_tool("sync_payment", {"order_id": order["order_id"]}))
        assert synced["gateway_status"] == "succeeded" and synced["outcome"] == "order paid"
        assert synced["order"]["status"] == "paid" and synced["order"]["stock"] == "committed"
        assert synced["order"]["payment"]["amount_received"]["amount"] == 3600
        assert await stock_of(shop, "MUG-01") == (8, 0)
        again = tool_data(await client.call_tool("sync_payment", {"order_id": order["order_id"]}))
        assert again["outcome"] == "already paid"
        assert [h["to_status"] for h in again["order"]["status_history"]] == ["pending_payment", "paid"]
        assert await stock_of(shop, "MUG-01") == (8, 0)


async def test_refund_in_part_then_the_rest_through_the_mcp_client(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order, intent_id = await paid_order(client, shop, "k-refund")
        part = tool_data(await refund(client, order["order_id"], "r-part", 1000))
        assert part["status"] == "succeeded" and part["amount"]["amount"] == 1000 and part["replayed"] is False
        assert part["order"]["status"] == "paid" and part["order"]["payment"]["refunded"]["amount"] == 1000
        assert fake.refunded_total(intent_id) == 1000
        [call] = fake.calls("POST", "/v1/refunds")
        assert call.params["payment_intent"] == intent_id and call.params["amount"] == "1000"
        assert call.idempotency_key == f"mcpco:refund:{part['refund_id']}"  # derived from the refund's claim

        rest = tool_data(await refund(client, order["order_id"], "r-rest"))
        assert rest["amount"]["amount"] == 2600 and rest["order"]["status"] == "refunded"
        assert rest["order"]["payment"]["refunded"]["amount"] == 3600
        assert fake.refunded_total(intent_id) == 3600
        more = await refund(client, order["order_id"], "r-more", 1)
        assert tool_error(more) == "refund_too_large"
        assert len(fake.calls("POST", "/v1/refunds")) == 2


async def test_the_same_idempotency_key_twice_makes_one_refund(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order, intent_id = await paid_order(client, shop, "k-refund-twice")
        first = tool_data(await refund(client, order["order_id"], "r-1", 1500))
        second = tool_data(await refund(client, order["order_id"], "r-1", 1500))
        assert second["refund_id"] == first["refund_id"] and second["replayed"] is True
        assert len(fake.refunds) == 1 and fake.refunded_total(intent_id) == 1500
        assert second["order"]["payment"]["refunded"]["amount"] == 1500

        # and inside the SDK: an answer lost after the refund was made is replayed, not repeated
        fake.fail_next("drop", path="/v1/refunds")
        third = tool_data(await refund(client, order["order_id"], "r-2", 500))
        assert third["status"] == "succeeded"
        assert len(fake.refunds) == 2 and fake.refunded_total(intent_id) == 2000
        assert [c.replayed for c in fake.calls("POST", "/v1/refunds")[-2:]] == [False, True]


async def test_a_used_refund_key_with_another_amount_is_an_idempotency_conflict(stripe_shop: StripeShop) -> None:
    """Issue 10 #10: the second call used to answer the first refund as if it were this one."""
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order, intent_id = await paid_order(client, shop, "k-refund-conflict")
        first = tool_data(await refund(client, order["order_id"], "r-same", 1000))
        other = await refund(client, order["order_id"], "r-same", 2000)
        assert tool_error(other) == "idempotency_conflict"
        body = json.loads(other.content[1].text)["error"]
        assert body["retryable"] is False and first["refund_id"] in body["message"]
        assert tool_error(await refund(client, order["order_id"], "r-same")) == "idempotency_conflict"  # full
        assert len(fake.refunds) == 1 and fake.refunded_total(intent_id) == 1000
        again = tool_data(await refund(client, order["order_id"], "r-same", 1000))
        assert again["refund_id"] == first["refund_id"] and again["replayed"] is True
        view = tool_data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert view["payment"]["refunded"]["amount"] == 1000


async def test_an_over_refund_is_refused_before_the_gateway(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order, _ = await paid_order(client, shop, "k-over")
        too_much = await refund(client, order["order_id"], "r-over", 3601)
        assert tool_error(too_much) == "refund_too_large"
        assert json.loads(too_much.content[1].text)["error"]["details"]["refundable"] == 3600
        assert "$36.00" in too_much.content[0].text
        assert fake.calls("POST", "/v1/refunds") == []
        unpaid = tool_data(await client.call_tool("create_order", {"idempotency_key": "k-unpaid", "items": MUGS}))
        assert tool_error(await refund(client, unpaid["order_id"], "r-unpaid")) == "invalid_state"


async def test_concurrent_refunds_with_different_keys_never_exceed_the_captured_amount(
    stripe_shop: StripeShop,
) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order, intent_id = await paid_order(client, shop, "k-race")
        results: list[Any] = []

        async def one(i: int) -> None:
            results.append(await refund(client, order["order_id"], f"r-race-{i}", 1000))

        async with anyio.create_task_group() as tasks:
            for i in range(6):
                tasks.start_soon(one, i)
        codes = sorted("ok" if not r.is_error else tool_error(r) for r in results)
        assert codes == ["ok"] * 3 + ["refund_too_large"] * 3
        assert fake.refunded_total(intent_id) == 3000 <= 3600
        view = tool_data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert view["payment"]["refunded"]["amount"] == 3000 and view["status"] == "paid"
        last = tool_data(await refund(client, order["order_id"], "r-race-last"))
        assert last["amount"]["amount"] == 600 and last["order"]["status"] == "refunded"
        assert fake.refunded_total(intent_id) == 3600


async def test_a_gateway_failure_during_a_refund_leaves_nothing_counted(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order, intent_id = await paid_order(client, shop, "k-refund-down")
        fake.fail_next("500", times=3, path="/v1/refunds")  # the call and both SDK retries
        down = await refund(client, order["order_id"], "r-down")
        assert tool_error(down) == "payment_gateway_error"
        assert json.loads(down.content[1].text)["error"]["retryable"] is True
        assert fake.refunds == {}
        view = tool_data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert view["status"] == "paid" and view["payment"]["refunded"]["amount"] == 0
        # the gateway refuses (the dashboard refunded part of it meanwhile): nothing counted either
        fake.refund_from_dashboard(intent_id, 2000)
        refused = await refund(client, order["order_id"], "r-refused")
        assert tool_error(refused) == "payment_gateway_error"
        view = tool_data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert view["payment"]["refunded"]["amount"] == 0
        assert fake.refunded_total(intent_id) == 2000


async def test_retrying_a_failed_refund_with_its_key_counts_it_once(stripe_shop: StripeShop) -> None:
    """The gateway made the refund but every answer was lost; the agent retries with the same key."""
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order, intent_id = await paid_order(client, shop, "k-refund-lost")
        fake.fail_next("drop", times=3, path="/v1/refunds")
        lost = await refund(client, order["order_id"], "r-lost")
        assert tool_error(lost) == "payment_gateway_error"
        assert fake.refunded_total(intent_id) == 3600  # done at the gateway, unknown to us
        retried = tool_data(await refund(client, order["order_id"], "r-lost"))
        assert retried["status"] == "succeeded" and len(fake.refunds) == 1
        assert retried["order"]["payment"]["refunded"]["amount"] == 3600
        assert retried["order"]["status"] == "refunded"


async def test_a_refund_and_the_charge_refunded_webhook_count_once(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order, intent_id = await paid_order(client, shop, "k-refund-hook")
        tool_data(await refund(client, order["order_id"], "r-hook", 1000))
        response = await shop.post_event(event("charge.refunded", fake.charge(intent_id)))
        assert response.status_code == 200
        view = tool_data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert view["payment"]["refunded"]["amount"] == 1000 and view["status"] == "paid"
        rest = tool_data(await refund(client, order["order_id"], "r-hook-rest"))
        assert rest["amount"]["amount"] == 2600 and fake.refunded_total(intent_id) == 3600
