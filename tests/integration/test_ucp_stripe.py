"""UCP complete_checkout with a Stripe PaymentMethod credential (handler ``stripe``), through StripeGateway and
the real ``stripe`` SDK against the local fake (held to Stripe's published API description): the order's own
PaymentIntent for the order's total is confirmed once per Idempotency-Key; a decline is ``payment_failed``;
3-D Secure escalates to the checkout page, where the buyer finishes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from mcp_checkout.config import Settings
from mcp_checkout.domain import Principal
from mcp_checkout.service.container import Services, build_services
from tests.ucp_client import (
    DESTINATION,
    Platform,
    conforms,
    priced_store,
    totals,
    ucp_app,
)
from tests.ucp_schemas import BUSINESS_PROFILE, validate

BASE = "http://shop.test"
MERCHANT = Principal(id="merchant", kind="merchant")


@pytest.fixture
async def shop(
    stripe_settings: Settings, seeded: Services, fake_stripe: Any
) -> AsyncIterator[tuple[Platform, httpx.AsyncClient, Services, Any]]:
    services = build_services(stripe_settings, db=seeded.db)
    app = ucp_app(services)
    key = (await services.access.create_key("platform", "buyer")).key
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield Platform(client, key), client, services, fake_stripe
    await services.close()


def confirms(fake: Any) -> list[Any]:
    return [r for r in fake.requests if r.method == "POST" and r.path.endswith("/confirm")]


async def test_discovery_and_checkouts_declare_the_stripe_handler_with_its_publishable_key(shop: Any) -> None:
    platform, client, _, _ = shop
    profile = (await client.get("/.well-known/ucp")).json()
    validate(profile, BUSINESS_PROFILE)
    assert profile["ucp"]["payment_handlers"] == {
        "dev.mcpcheckout.stripe": [
            {
                "id": "stripe",
                "version": "2026-04-08",
                "available_instruments": [{"type": "card"}],
                "config": {"environment": "sandbox", "publishable_key": "pk_test_fake_" + "1" * 24},
            }
        ]
    }
    checkout = conforms(await platform.create([("MUG-01", 1)]))
    assert checkout["ucp"]["payment_handlers"] == profile["ucp"]["payment_handlers"]


async def test_a_payment_method_pays_the_orders_total_and_a_retry_confirms_nothing_more(shop: Any) -> None:
    platform, _, services, fake = shop
    await services.db.write(priced_store)
    checkout = conforms(await platform.create([("MUG-01", 2)]))
    chosen = {
        "methods": [
            {
                "type": "shipping",
                "destinations": [DESTINATION],
                "groups": [{"id": "shipping_group", "selected_option_id": "ground"}],
            }
        ]
    }
    ready = conforms(
        await platform.update(
            checkout["id"],
            [("MUG-01", 2)],
            buyer={"email": "ada@example.com"},
            fulfillment=chosen,
            discounts={"codes": ["TEN"]},
        )
    )
    assert ready["status"] == "ready_for_complete", ready.get("messages")
    key = str(uuid.uuid4())
    paid = conforms(await platform.complete(checkout["id"], key, "pm_card_visa", handler="stripe"))
    assert paid["status"] == "completed" and "messages" not in paid, paid.get("messages")
    again = conforms(await platform.complete(checkout["id"], key, "pm_card_visa", handler="stripe"))
    assert again == paid

    order = await services.orders.get(MERCHANT, paid["order"]["id"])
    assert order.status == "paid" and order.total.amount == totals(ready)["total"] == totals(paid)["total"]
    [intent] = fake.intents_for_order(order.order_id)
    assert (intent["amount"], intent["amount_received"], intent["status"]) == (order.total.amount,) * 2 + ("succeeded",)
    assert len(confirms(fake)) == 1
    assert "pm_card_visa" not in str(paid)  # the credential is never echoed


async def test_a_decline_is_payment_failed_replayed_under_its_key_and_another_card_pays(shop: Any) -> None:
    platform, _, _, fake = shop
    checkout = conforms(await platform.create([("MUG-01", 1)]))
    declined_key = str(uuid.uuid4())
    declined = conforms(
        await platform.complete(checkout["id"], declined_key, "pm_card_chargeDeclined", handler="stripe")
    )
    assert declined["status"] == "requires_escalation" and declined["continue_url"].startswith(f"{BASE}/checkout/")
    codes = [(m["code"], m["severity"], m.get("path")) for m in declined["messages"]]
    assert codes[0] == ("payment_failed", "recoverable", "$.payment.instruments[0].credential")
    assert "declined" in declined["messages"][0]["content"]
    retried = conforms(
        await platform.complete(checkout["id"], declined_key, "pm_card_chargeDeclined", handler="stripe")
    )
    assert retried["messages"] == declined["messages"]
    assert [r.replayed for r in confirms(fake)] == [False, True]  # the same Stripe idempotency key: one confirm

    paid = conforms(await platform.complete(checkout["id"], str(uuid.uuid4()), "pm_card_visa", handler="stripe"))
    assert paid["status"] == "completed"
    [intent] = fake.intents_for_order(paid["order"]["id"])  # the same intent, confirmed again
    assert intent["status"] == "succeeded" and intent["amount"] == 1800
    assert [r.replayed for r in confirms(fake)] == [False, True, False]


async def test_three_d_secure_escalates_to_the_page_where_the_buyer_finishes(shop: Any) -> None:
    platform, web, services, fake = shop
    checkout = conforms(await platform.create([("MUG-01", 1)]))
    escalated = conforms(
        await platform.complete(checkout["id"], str(uuid.uuid4()), "pm_card_authenticationRequired", handler="stripe")
    )
    assert escalated["status"] == "requires_escalation"
    assert [(m["code"], m["severity"]) for m in escalated["messages"]] == [
        ("requires_buyer_authentication", "requires_buyer_input")
    ]
    url = escalated["continue_url"]
    order_id = (await services.carts.get(MERCHANT, checkout["id"])).order_id
    assert order_id is not None
    [intent] = fake.intents_for_order(order_id)
    assert intent["status"] == "requires_action"
    assert intent["next_action"]["redirect_to_url"]["return_url"] == url + "/return"

    path = url.removeprefix(BASE)
    page = await web.get(path)  # the buyer opens the link: the page holds the same intent
    assert page.status_code == 200 and intent["client_secret"] in page.text
    fake.succeed(intent["id"])  # the buyer passes the bank's challenge; Stripe sends them back
    back = await web.get(path + "/return")
    assert back.status_code == 303 and "error" not in back.headers["location"]
    completed = conforms(await platform.get(checkout["id"]))
    assert completed["status"] == "completed"
    assert len(fake.intents_for_order(order_id)) == 1


@pytest.mark.parametrize(
    ("handler", "token", "path", "stripe_calls"),
    [
        ("stripe", "pm_card_unknown", "$.payment.instruments[0].credential", 1),
        ("stripe", "tok_visa", "$.payment.instruments[0].credential", 0),
        ("offline_test", "success_token", "$.payment.instruments[0].handler_id", 0),
    ],
)
async def test_unusable_credentials_are_payment_failed_and_leave_the_order_to_pay(
    shop: Any, handler: str, token: str, path: str, stripe_calls: int
) -> None:
    platform, _, _, fake = shop
    checkout = conforms(await platform.create([("MUG-01", 1)]))
    answer = conforms(await platform.complete(checkout["id"], str(uuid.uuid4()), token, handler=handler))
    assert answer["status"] == "requires_escalation"
    assert [(m["code"], m.get("path")) for m in answer["messages"]] == [
        ("payment_failed", path),
        ("payment_required", None),
    ]
    assert len(confirms(fake)) == stripe_calls


async def test_concurrent_completes_with_cards_under_different_keys_charge_the_order_once(shop: Any) -> None:
    platform, _, services, fake = shop
    checkout = conforms(await platform.create([("MUG-01", 2)]))
    answers: list[dict[str, Any]] = []

    async def complete(key: str) -> None:
        answer = await platform.complete(checkout["id"], key, "pm_card_visa", handler="stripe")
        assert answer.status_code == 200, answer.text
        answers.append(conforms(answer))

    async with anyio.create_task_group() as tasks:
        for _ in range(4):
            tasks.start_soon(complete, str(uuid.uuid4()))
    assert {a["status"] for a in answers} == {"completed"}
    assert len({a["order"]["id"] for a in answers}) == 1
    [intent] = fake.intents_for_order(answers[0]["order"]["id"])
    assert intent["status"] == "succeeded" and intent["amount_received"] == 3600
    order = await services.orders.get(MERCHANT, answers[0]["order"]["id"])
    assert order.status == "paid" and order.payment is not None
