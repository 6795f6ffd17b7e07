"""The Stripe fake is held to Stripe's published API description (tests/fakes/stripe_spec.py).

Every request the real ``stripe`` SDK sends to the fake and every answer the fake gives is validated with
openapi-core against the pinned, trimmed ``spec3`` file from github.com/stripe/openapi; a violation fails the
test that caused it when the fake stops. Here: the pin is what it says it is, the whole set of exchanges the
gateway has with Stripe passes, the validator bites on wrong answers and on requests Stripe would refuse, and
the PaymentIntent at Stripe is for the order's total.
"""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import httpx
import pytest
from fakes.fake_stripe import PUBLISHABLE_KEY, SECRET_KEY, FakeStripe, StripeShop, event
from fakes.stripe_spec import SPEC_FILE, SpecViolation, decode_stripe_form, stripe_spec
from mcp import Client

from mcp_checkout.errors import PaymentGatewayError
from mcp_checkout.payments.stripe_gateway import StripeGateway
from tests.support import tool_data

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

AUTH = {"authorization": f"Bearer {SECRET_KEY}", "content-type": "application/x-www-form-urlencoded"}
FORM = b"amount=500&currency=usd&metadata[order_id]=ord_1&automatic_payment_methods[enabled]=true"


def test_the_pinned_description_is_stripes_file_trimmed_to_what_the_fake_implements() -> None:
    raw = json.loads(gzip.decompress(SPEC_FILE.read_bytes()))
    source = raw["info"]["x-trimmed-from"]
    assert source["repository"] == "https://github.com/stripe/openapi" and len(source["commit"]) == 40
    assert source["path"].startswith("openapi/spec3.")
    assert raw["info"]["title"] == "Stripe API" and raw["info"]["version"] == stripe_spec().info["version"]
    assert {(p, m) for p, item in raw["paths"].items() for m in item if m != "parameters"} == {
        ("/v1/payment_intents", "post"),
        ("/v1/payment_intents/{intent}", "get"),
        ("/v1/payment_intents/{intent}/cancel", "post"),
        ("/v1/payment_intents/{intent}/confirm", "post"),
        ("/v1/refunds", "post"),
    }
    # the $ref closure is whole: every reference resolves inside the trimmed file
    text = json.dumps(raw)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/components/')[1:]}:
        section, name = ref.split("/", 1)
        assert name in raw["components"][section], ref
    here = Path(SPEC_FILE).parent
    assert "MIT License" in (here / "LICENSE").read_text() and source["commit"] in (here / "SOURCE.md").read_text()


def test_stripe_form_encoding_decodes_to_the_object_stripe_reads() -> None:
    pairs = [("amount", "5"), ("metadata[order_id]", "o"), ("expand[0]", "a"), ("expand[1]", "b"), ("x[y][z]", "1")]
    assert decode_stripe_form(pairs) == {
        "amount": "5",
        "metadata": {"order_id": "o"},
        "expand": ["a", "b"],
        "x": {"y": {"z": "1"}},
    }


async def test_every_exchange_the_gateway_has_with_stripe_follows_the_description(fake_stripe: FakeStripe) -> None:
    """Create (and its idempotent replay and conflict), retrieve, cancel, refund, a refused refund, an unknown
    intent, a wrong key and an injected 500: all checked, none off the description."""
    fake = fake_stripe
    assert fake.check_spec and fake._spec is not None
    gateway = StripeGateway(SECRET_KEY, PUBLISHABLE_KEY, None, api_base=fake.url, max_network_retries=1)
    meta = {"order_id": "ord_1", "attempt": "1", "number": "1001"}
    paid = await gateway.create_intent(amount=3600, currency="USD", metadata=meta, idempotency_key="k1")
    assert await gateway.create_intent(amount=3600, currency="USD", metadata=meta, idempotency_key="k1") == paid
    with pytest.raises(PaymentGatewayError):
        await gateway.create_intent(amount=1, currency="USD", metadata=meta, idempotency_key="k1")
    fake.fail_next("500", path="/v1/payment_intents")
    assert (await gateway.retrieve_intent(paid.id)).status == "requires_payment_method"
    fake.succeed(paid.id)
    assert (await gateway.retrieve_intent(paid.id)).amount_received == 3600
    refund = await gateway.refund(paid.id, amount=600, idempotency_key="r1", reason="damaged")
    assert (refund.amount, refund.status) == (600, "succeeded")
    with pytest.raises(PaymentGatewayError):
        await gateway.refund(paid.id, amount=9999, idempotency_key="r2", reason=None)
    open_one = await gateway.create_intent(amount=100, currency="eur", metadata={}, idempotency_key="k2")
    assert (await gateway.cancel_intent(open_one.id, idempotency_key="c1")).status == "canceled"
    with pytest.raises(PaymentGatewayError):
        await gateway.cancel_intent(open_one.id, idempotency_key="c2")
    with pytest.raises(PaymentGatewayError):
        await gateway.retrieve_intent("pi_missing")
    with pytest.raises(PaymentGatewayError):
        await StripeGateway("sk_test_wrong", None, None, api_base=fake.url).retrieve_intent(paid.id)

    statuses = sorted({r.status for r in fake.requests})
    assert statuses == [200, 400, 401, 404, 500], statuses
    assert fake.violations == []


async def test_an_answer_stripe_would_never_give_fails_the_test(fake_stripe: FakeStripe) -> None:
    fake = fake_stripe
    gateway = StripeGateway(SECRET_KEY, None, None, api_base=fake.url)
    intent = await gateway.create_intent(amount=500, currency="usd", metadata={}, idempotency_key="k")
    assert fake.violations == []
    fake.intents[intent.id]["amount"] = "500"  # drift: a string where Stripe documents an integer
    del fake.intents[intent.id]["currency"]  # and a required field gone
    fake.intents[intent.id]["status"] = "paid"  # and a status Stripe does not have
    await gateway.retrieve_intent(intent.id)
    with pytest.raises(SpecViolation) as caught:
        fake.assert_faithful()
    message = str(caught.value)
    assert message.startswith("3 exchange(s) with the fake Stripe left Stripe's API description"), message
    assert f"GET /v1/payment_intents/{intent.id} → 200" in message
    assert "at amount: '500' is not of type 'integer'" in message
    assert "'currency' is a required property" in message
    assert "at status: 'paid' is not one of" in message
    assert fake.violations == []  # reported once; the fixture's own check at teardown passes


def test_the_validator_rejects_answers_off_the_description() -> None:
    spec = stripe_spec()
    good = FakeStripe()._create_intent({"amount": "500", "currency": "usd", "metadata": {"order_id": "o"}})
    check = lambda body, status=200: spec.check_response(  # noqa: E731
        "POST", "/v1/payment_intents", "", FORM, AUTH, status, json.dumps(body).encode()
    )
    assert check(good) == []
    for change, expected in [
        (
            lambda b: b.update(latest_charge=7),
            "at latest_charge: 7 is not valid under any of the given schemas (7 is not of type 'string'",
        ),
        (lambda b: b.update(object="charge"), "at object: 'charge' is not one of ['payment_intent']"),
        (lambda b: b.pop("livemode"), "'livemode' is a required property"),
        (lambda b: b["metadata"].update(order_id=1), "at metadata/order_id: 1 is not of type 'string'"),
    ]:
        wrong = copy.deepcopy(good)
        change(wrong)
        problems = check(wrong)
        assert any(expected in p for p in problems), (expected, problems)
    assert check({"error": {"type": "invalid_request_error", "message": "x"}}, 400) == []
    assert any("'type' is a required property" in p for p in check({"error": {"message": "x"}}, 400))


async def test_a_request_stripe_would_refuse_is_answered_400_and_fails_the_test(fake_stripe: FakeStripe) -> None:
    fake = fake_stripe
    cases = {
        b"amount=abc&currency=usd": "amount",
        b"amount=500": "'currency' is a required property",
        b"amount=500&currency=usd&amout=5": "'amout' was unexpected",
        b"amount=500&currency=usd&metadata[order][id]=5": "at metadata/order",
        b"amount=500&currency=usd&automatic_payment_methods[enabled]=maybe": "automatic_payment_methods",
    }
    async with httpx.AsyncClient(base_url=fake.url) as http:
        for body, expected in cases.items():
            answer = await http.post("/v1/payment_intents", content=body, headers=AUTH)
            assert answer.status_code == 400 and answer.json()["error"]["type"] == "invalid_request_error", body
            assert expected in answer.json()["error"]["message"], (body, answer.json())
            with pytest.raises(SpecViolation, match=expected.replace("[", r"\[")):
                fake.assert_faithful()
        query = await http.get("/v1/payment_intents/pi_1?expand[0]=latest_charge&bogus=1", headers=AUTH)
        assert query.status_code == 400 and "Received unknown parameter: bogus" in query.json()["error"]["message"]
        with pytest.raises(SpecViolation):
            fake.assert_faithful()
        unknown = await http.post("/v1/charges", content=b"amount=1", headers=AUTH)
        assert unknown.status_code == 400
        with pytest.raises(SpecViolation, match="not an operation"):
            fake.assert_faithful()
    assert fake.intents == {}  # nothing was created by a refused request


async def test_the_payment_intent_at_stripe_is_for_the_orders_total(stripe_shop: StripeShop) -> None:
    """Through create_payment_intent and through the checkout page: the amount Stripe is asked to collect is
    the order's ``total`` (subtotal, discounts, shipping and tax as the order froze them), in its currency."""
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        for way in ("tool", "page"):
            order = tool_data(
                await client.call_tool(
                    "create_order", {"idempotency_key": f"k-total-{way}", "items": [{"sku": "MUG-01", "quantity": 3}]}
                )
            )
            total = order["total"]
            if way == "tool":
                handoff = tool_data(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))
                assert handoff["amount"] == total
            else:
                link = tool_data(await client.call_tool("create_checkout_link", {"order_id": order["order_id"]}))
                assert (await shop.web.get(shop.path_of(link["url"]))).status_code == 200
            [intent] = fake.intents_for_order(order["order_id"])
            assert (intent["amount"], intent["currency"]) == (total["amount"], total["currency"].lower()), way
            [sent] = [
                c
                for c in fake.calls("POST", "/v1/payment_intents")
                if c.params["metadata"]["order_id"] == order["order_id"]
            ]
            assert sent.params["amount"] == str(total["amount"])
            view = tool_data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
            assert view["total"] == total
    assert fake.violations == []


def test_webhook_events_the_fake_builds_follow_the_description(fake_stripe: FakeStripe) -> None:
    """The envelope and the intent or charge inside, as ``event()`` builds them for the webhook tests."""
    fake = fake_stripe
    intent = fake._create_intent({"amount": "3600", "currency": "usd", "metadata": {"order_id": "o"}})
    spec = stripe_spec()
    assert spec.check_event(event("payment_intent.processing", fake.processing(intent["id"]))) == []
    assert spec.check_event(event("payment_intent.payment_failed", fake.fail_payment(intent["id"]))) == []
    assert spec.check_event(event("payment_intent.succeeded", fake.succeed(intent["id"]))) == []
    fake.refund_from_dashboard(intent["id"], 600)
    assert spec.check_object(fake.charge(intent["id"]), "charge") == []
    assert spec.check_event(event("charge.refunded", fake.charge(intent["id"]))) == []

    with pytest.raises(SpecViolation, match=r"data\.object charge: .*'paid' is a required property"):
        event("charge.refunded", {k: v for k, v in fake.charge(intent["id"]).items() if k != "paid"})
    with pytest.raises(SpecViolation, match="at status: 'paid' is not one of"):
        event("payment_intent.succeeded", {**fake.snapshot(intent["id"]), "status": "paid"})
    with pytest.raises(SpecViolation, match=r"event: .*at created: 'now' is not of type 'integer'"):
        event("payment_intent.succeeded", fake.snapshot(intent["id"]), created="now")  # type: ignore[arg-type]
    event("payment_intent.succeeded", {"id": "pi_x"})  # a bare stand-in (no ``object``) is the test's own
