"""Stripe webhooks on POST /webhooks/stripe, signed with the SDK's own signature scheme.

Verified on the raw body (wrong secret, re-serialised JSON, stale timestamp, no header → 400 and
nothing changes, not even the dedup record), deduplicated by event id, safe against out-of-order
delivery, and amount/currency-checked before an order is marked paid (invariant 4).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import anyio
import pytest
from fakes.fake_stripe import StripeShop, event, serialise, signature_header
from mcp import Client

from tests.support import tool_data

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

MUGS = [{"sku": "MUG-01", "quantity": 2}]  # 36.00 USD


async def order_with_intent(client: Client, key: str) -> tuple[dict[str, Any], str]:
    order = tool_data(await client.call_tool("create_order", {"idempotency_key": key, "items": MUGS}))
    handoff = tool_data(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))
    return order, handoff["intent_id"]


async def get_order(client: Client, order_id: str) -> dict[str, Any]:
    return tool_data(await client.call_tool("get_order", {"order_id": order_id}))


def to_statuses(view: dict[str, Any]) -> list[str]:
    return [change["to_status"] for change in view["status_history"]]


async def test_a_valid_signature_is_accepted_and_pays_the_order(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order, intent_id = await order_with_intent(client, "k-valid")
        customer = {"id": "cus_1", "object": "customer", "created": 1, "livemode": False}
        unrelated = await shop.post_event(event("customer.created", customer))
        assert unrelated.status_code == 200 and unrelated.json()["outcome"] == "ignored"

        response = await shop.post_event(event("payment_intent.succeeded", fake.succeed(intent_id)))
        assert response.status_code == 200, response.text
        assert response.json() == {"received": True, "outcome": "order paid"}
        view = await get_order(client, order["order_id"])
        assert view["status"] == "paid" and view["stock"] == "committed"
        assert view["payment"]["status"] == "succeeded" and view["payment"]["amount_received"]["amount"] == 3600
        assert to_statuses(view) == ["pending_payment", "paid"]


def _stale(payload: bytes) -> dict[str, Any]:
    return {"timestamp": int(time.time()) - 301 - 60}


REJECTIONS: dict[str, Any] = {
    "wrong secret": lambda payload: {"secret": "whsec_not_the_right_one"},
    "re-serialised body": lambda payload: {"body": json.dumps(json.loads(payload)).encode()},
    "stale timestamp": _stale,
    "missing header": lambda payload: {"signature": None},
    "garbage header": lambda payload: {"signature": "t=abc,v1="},
    "signature of another body": lambda payload: {"signature": signature_header(payload + b" ")},
    "signed, but not json": lambda payload: {
        "body": b"garbage " + payload,
        "signature": signature_header(b"garbage " + payload),
    },
}


async def test_a_bad_signature_is_rejected_and_changes_nothing(
    stripe_shop: StripeShop, subtests: pytest.Subtests
) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order, intent_id = await order_with_intent(client, "k-bad")
        payload = serialise(event("payment_intent.succeeded", fake.succeed(intent_id)))
        for how, options in REJECTIONS.items():
            with subtests.test(msg=how):
                rejected = await shop.post_event(payload, **options(payload))
                assert rejected.status_code == 400, rejected.text
                view = await get_order(client, order["order_id"])
                assert view["status"] == "pending_payment" and view["stock"] == "reserved"
                assert view["payment"]["status"] == "requires_payment_method"
                assert await shop.scalar("select count(*) from gateway_events") == 0
        # the rejected deliveries did not burn the event id: Stripe's genuine redelivery still works
        accepted = await shop.post_event(payload)
        assert accepted.status_code == 200 and accepted.json()["outcome"] == "order paid"


async def test_a_rejection_answers_json_with_the_webhook_rejected_code(stripe_shop: StripeShop) -> None:
    shop = stripe_shop
    response = await shop.web.post(
        "/webhooks/stripe",
        content=serialise(event("payment_intent.succeeded", {"id": "pi_x"})),
        headers={"accept": "application/json", "stripe-signature": "t=1,v1=00"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "webhook_rejected"
    assert "whsec_" not in response.text


async def test_the_same_event_five_times_has_one_effect(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order, intent_id = await order_with_intent(client, "k-dup")
        payload = serialise(event("payment_intent.succeeded", fake.succeed(intent_id)))
        outcomes: list[str] = []

        async def deliver() -> None:
            response = await shop.post_event(payload)
            assert response.status_code == 200, response.text
            outcomes.append(response.json()["outcome"])

        async with anyio.create_task_group() as tasks:
            for _ in range(4):
                tasks.start_soon(deliver)
        await deliver()
        assert sorted(outcomes) == ["duplicate"] * 4 + ["order paid"]
        # a different event id carrying the same state is applied, and changes nothing more
        again = await shop.post_event(event("payment_intent.succeeded", fake.snapshot(intent_id)))
        assert again.json()["outcome"] == "already paid"
        view = await get_order(client, order["order_id"])
        assert to_statuses(view) == ["pending_payment", "paid"]
        assert await shop.scalar("select count(*) from gateway_events") == 2


class WebhookDuringCreate:
    """Stripe's webhook arrives after the intent exists at Stripe but before we recorded its id."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.shop: StripeShop | None = None
        self.responses: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def create_intent(self, **kwargs: Any) -> Any:
        intent = await self.inner.create_intent(**kwargs)
        assert self.shop is not None
        creating = await self.shop.scalar("select status from payments where intent_id is null")
        assert creating == "creating"
        evt = event("payment_intent.succeeded", self.shop.fake.succeed(intent.id))
        self.responses.append(await self.shop.post_event(evt))
        return intent


async def test_succeeded_before_we_recorded_the_intent_id_is_adopted_by_its_metadata(stripe_shop: StripeShop) -> None:
    racing = WebhookDuringCreate(stripe_shop.stripe_gateway())
    shop = stripe_shop.with_gateway(racing)
    racing.shop = shop
    async with shop.web, Client(shop.server) as client:
        order = tool_data(await client.call_tool("create_order", {"idempotency_key": "k-race", "items": MUGS}))
        handoff = tool_data(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))
        [response] = racing.responses
        assert response.status_code == 200 and response.json()["outcome"] == "order paid"
        view = await get_order(client, order["order_id"])
        assert view["status"] == "paid" and view["stock"] == "committed"
        assert view["payment"]["intent_id"] == handoff["intent_id"] and view["payment"]["status"] == "succeeded"
        assert await shop.scalar("select count(*) from payments") == 1
        assert len(shop.fake.intents) == 1


async def test_late_failed_processing_and_canceled_events_do_not_downgrade_a_paid_order(
    stripe_shop: StripeShop,
) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order, intent_id = await order_with_intent(client, "k-order")
        processing = event("payment_intent.processing", fake.processing(intent_id))
        failed = event("payment_intent.payment_failed", fake.fail_payment(intent_id))
        succeeded = event("payment_intent.succeeded", fake.succeed(intent_id))
        canceled = event("payment_intent.canceled", {**fake.snapshot(intent_id), "status": "canceled"})
        assert (await shop.post_event(succeeded)).json()["outcome"] == "order paid"
        for late in (failed, processing, canceled):
            response = await shop.post_event(late)
            assert response.status_code == 200 and response.json()["outcome"].startswith("ignored"), response.text
        view = await get_order(client, order["order_id"])
        assert view["status"] == "paid" and view["payment"]["status"] == "succeeded"
        assert view["payment"]["last_error"] is None
        assert to_statuses(view) == ["pending_payment", "paid"]


async def test_failed_then_succeeded_in_order_pays(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order, intent_id = await order_with_intent(client, "k-retrycard")
        link = tool_data(await client.call_tool("create_checkout_link", {"order_id": order["order_id"]}))
        assert (await shop.web.get(shop.path_of(link["url"]))).status_code == 200
        assert (await shop.post_event(event("payment_intent.processing", fake.processing(intent_id)))).is_success
        view = await get_order(client, order["order_id"])
        assert view["checkout"]["session_status"] == "payment_pending"
        response = await shop.post_event(event("payment_intent.payment_failed", fake.fail_payment(intent_id)))
        assert response.json()["outcome"] == "payment failed"
        view = await get_order(client, order["order_id"])
        assert view["status"] == "pending_payment" and view["payment"]["status"] == "failed"
        assert view["checkout"]["session_status"] == "open" and "declined" in view["payment"]["last_error"]
        response = await shop.post_event(event("payment_intent.succeeded", fake.succeed(intent_id)))
        assert response.json()["outcome"] == "order paid"


MISMATCHES: dict[str, Any] = {
    "received less": lambda fake, pi: fake.succeed(pi, amount_received=1000),
    "other amount": lambda fake, pi: {**fake.succeed(pi), "amount": 100, "amount_received": 100},
    "other currency": lambda fake, pi: {**fake.succeed(pi), "currency": "eur"},
}


async def test_an_amount_mismatch_does_not_pay_the_order_and_is_reported(
    stripe_shop: StripeShop, subtests: pytest.Subtests
) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        for how, succeeded in MISMATCHES.items():
            with subtests.test(msg=how):
                order, intent_id = await order_with_intent(client, "k-mismatch-" + re.sub(r"\W+", "-", how))
                response = await shop.post_event(event("payment_intent.succeeded", succeeded(fake, intent_id)))
                assert response.status_code == 200 and response.json()["outcome"] == "amount_mismatch"
                view = await get_order(client, order["order_id"])
                assert view["status"] == "pending_payment" and view["stock"] == "reserved"
                assert view["payment"]["status"] == "amount_mismatch"
                [issue] = view["issues"]
                assert issue["code"] == "amount_mismatch" and intent_id in issue["message"]
                assert "$36.00" in issue["message"]
                assert to_statuses(view) == ["pending_payment"]


async def test_a_canceled_intent_keeps_the_order_payable_with_a_new_intent(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order, first = await order_with_intent(client, "k-cancel")
        response = await shop.post_event(event("payment_intent.canceled", fake.cancel(first)))
        assert response.status_code == 200 and response.json()["outcome"] == "payment canceled"
        view = await get_order(client, order["order_id"])
        assert view["status"] == "pending_payment" and view["stock"] == "reserved"
        assert view["payment"]["status"] == "canceled"

        second = tool_data(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))
        assert second["intent_id"] != first and second["attempt"] == 2
        assert [i["id"] for i in fake.intents_for_order(order["order_id"])] == [first, second["intent_id"]]
        assert fake.calls("POST", "/v1/payment_intents")[-1].idempotency_key == f"mcpco:{order['order_id']}:2"
        response = await shop.post_event(event("payment_intent.succeeded", fake.succeed(second["intent_id"])))
        assert response.json()["outcome"] == "order paid"


async def test_charge_refunded_partly_then_fully_refunds_the_order(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order, intent_id = await order_with_intent(client, "k-charge")
        await shop.post_event(event("payment_intent.succeeded", fake.succeed(intent_id)))
        fake.refund_from_dashboard(intent_id, 1000)
        partly = await shop.post_event(event("charge.refunded", fake.charge(intent_id)))
        assert partly.status_code == 200 and partly.json()["outcome"] == "refunded 1000"
        view = await get_order(client, order["order_id"])
        assert view["status"] == "paid" and view["payment"]["refunded"]["amount"] == 1000

        fake.refund_from_dashboard(intent_id, 2600)
        fully = event("charge.refunded", fake.charge(intent_id))
        for _ in range(2):
            assert (await shop.post_event(fully)).status_code == 200
        view = await get_order(client, order["order_id"])
        assert view["status"] == "refunded" and view["payment"]["refunded"]["amount"] == 3600
        assert to_statuses(view) == ["pending_payment", "paid", "refunded"]
