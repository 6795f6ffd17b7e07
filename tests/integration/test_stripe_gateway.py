"""The Stripe handoff with the real ``stripe`` SDK against a local fake Stripe (tests/fakes/fake_stripe.py).

At most one PaymentIntent per order (invariant 4): retries inside the SDK, retries by the agent after
a failed call, and a crash between the gateway call and our commit all end with one intent at the
fake and one payments row. The amount comes from the order in the database. The checkout page loads
Stripe's Payment Element under a CSP that only lets Stripe.js in, and the return route asks the
gateway, never the query string.
"""

from __future__ import annotations

import json
import re
from typing import Any

import anyio
import pytest
from fakes.fake_stripe import PUBLISHABLE_KEY, StripeShop, event, iter_sources, tool_error
from mcp import Client

from mcp_checkout.domain import CatalogRow, utc_now
from mcp_checkout.store.catalog_write import upsert_catalog
from tests.support import tool_data

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

MUGS = {"sku": "MUG-01", "quantity": 2}  # 2 x 18.00 USD


async def new_order(client: Client, key: str, items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return tool_data(await client.call_tool("create_order", {"idempotency_key": key, "items": items or [MUGS]}))


async def payments_rows(shop: StripeShop, order_id: str) -> int:
    return int(await shop.scalar("select count(*) from payments where order_id = :o", o=order_id))


async def test_handoff_returns_the_client_secret_and_amount_of_the_order_and_is_idempotent(
    stripe_shop: StripeShop,
) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order = await new_order(client, "k-handoff")
        first = tool_data(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))
        assert first["gateway"] == "stripe" and first["attempt"] == 1
        assert first["publishable_key"] == PUBLISHABLE_KEY
        assert first["client_secret"].startswith(first["intent_id"] + "_secret_")
        assert first["amount"]["amount"] == 3600 and first["amount"]["currency"] == "USD"
        assert first["status"] == "requires_payment_method"

        [intent] = fake.intents.values()
        assert intent["id"] == first["intent_id"]
        assert (intent["amount"], intent["currency"]) == (3600, "usd")
        assert intent["metadata"] == {"order_id": order["order_id"], "attempt": "1", "number": order["number"]}
        assert intent["automatic_payment_methods"]["enabled"] is True
        [create] = fake.calls("POST", "/v1/payment_intents")
        assert create.idempotency_key == f"mcpco:{order['order_id']}:1"

        again = tool_data(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))
        assert (again["intent_id"], again["client_secret"], again["attempt"]) == (
            first["intent_id"],
            first["client_secret"],
            1,
        )
        assert len(fake.intents) == 1 and len(fake.calls("POST", "/v1/payment_intents")) == 1
        assert await payments_rows(shop, order["order_id"]) == 1
        view = tool_data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert view["payment"]["intent_id"] == first["intent_id"] and view["status"] == "pending_payment"


async def test_sdk_retry_after_a_fault_makes_one_intent(stripe_shop: StripeShop, subtests: pytest.Subtests) -> None:
    """The SDK retries (max_network_retries) with the same Idempotency-Key; timeout and drop have already
    created the intent at the fake, so the retry must be answered from the idempotency cache."""
    stripe_shop.fake.timeout_sleep = 1.0
    shop = stripe_shop.with_gateway(stripe_shop.stripe_gateway(timeout_seconds=0.4, max_network_retries=2))
    fake = shop.fake
    async with shop.web, Client(shop.server) as client:
        for fault in ("500", "timeout", "drop"):
            with subtests.test(msg=fault):
                order = await new_order(client, f"k-{fault}")
                fake.fail_next(fault, path="/v1/payment_intents")
                handoff = tool_data(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))
                creates = [
                    c
                    for c in fake.calls("POST", "/v1/payment_intents")
                    if c.params["metadata"]["order_id"] == order["order_id"]
                ]
                assert [c.fault for c in creates] == [fault, None]
                assert len({c.idempotency_key for c in creates}) == 1
                assert creates[1].replayed is (fault != "500")
                assert [i["id"] for i in fake.intents_for_order(order["order_id"])] == [handoff["intent_id"]]
                assert await payments_rows(shop, order["order_id"]) == 1


async def test_agent_retry_after_the_sdk_gave_up_makes_one_intent(
    stripe_shop: StripeShop, subtests: pytest.Subtests
) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        for fault in ("500", "drop"):
            with subtests.test(msg=fault):
                order = await new_order(client, f"k-gaveup-{fault}")
                fake.fail_next(fault, times=3, path="/v1/payment_intents")  # the first call and both SDK retries
                failed = await client.call_tool("create_payment_intent", {"order_id": order["order_id"]})
                assert tool_error(failed) == "payment_gateway_error"
                assert json.loads(failed.content[1].text)["error"]["retryable"] is True
                # "500" did nothing at the fake; "drop" created the intent but nobody heard the answer
                assert len(fake.intents_for_order(order["order_id"])) == (1 if fault == "drop" else 0)
                view = tool_data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
                assert view["payment"]["status"] == "creating" and view["payment"]["intent_id"] is None

                retry = tool_data(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))
                assert [i["id"] for i in fake.intents_for_order(order["order_id"])] == [retry["intent_id"]]
                assert retry["attempt"] == 1
                keys = {c.idempotency_key for c in fake.calls("POST", "/v1/payment_intents")}
                assert f"mcpco:{order['order_id']}:1" in keys
                assert await payments_rows(shop, order["order_id"]) == 1


async def test_the_stripe_timeout_setting_bounds_each_gateway_call(stripe_shop: StripeShop) -> None:
    """MCP_CHECKOUT_STRIPE_TIMEOUT_SECONDS reaches the SDK: a Stripe that answers late fails the call
    (retryable) after about that long instead of holding the agent for the SDK's 80 s default."""
    settings = stripe_shop.settings.model_copy(update={"stripe_timeout_seconds": 0.3, "stripe_max_network_retries": 0})
    shop = StripeShop(settings, stripe_shop.db, stripe_shop.fake)
    shop.fake.timeout_sleep = 3.0
    async with shop.web, Client(shop.server) as client:
        order = await new_order(client, "k-timeout-setting")
        shop.fake.fail_next("timeout", path="/v1/payment_intents")
        started = anyio.current_time()
        failed = await client.call_tool("create_payment_intent", {"order_id": order["order_id"]})
        waited = anyio.current_time() - started
        assert tool_error(failed) == "payment_gateway_error"
        assert json.loads(failed.content[1].text)["error"]["retryable"] is True
        assert waited < 2.0, f"waited {waited:.1f}s for a 0.3 s timeout"


class CrashAfterCreate:
    """The gateway call succeeds, then the process dies before our commit (once)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.crashes = 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def create_intent(self, **kwargs: Any) -> Any:
        intent = await self.inner.create_intent(**kwargs)
        if self.crashes:
            self.crashes -= 1
            raise RuntimeError("the process died after the gateway call")
        return intent


async def test_crash_between_the_gateway_call_and_the_commit_makes_no_second_intent(stripe_shop: StripeShop) -> None:
    shop = stripe_shop.with_gateway(CrashAfterCreate(stripe_shop.stripe_gateway()))
    async with shop.web, Client(shop.server) as client:
        order = await new_order(client, "k-crash")
        crashed = await client.call_tool("create_payment_intent", {"order_id": order["order_id"]})
        assert tool_error(crashed) == "internal_error"
        assert len(shop.fake.intents) == 1
        handoff = tool_data(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))
        assert list(shop.fake.intents) == [handoff["intent_id"]]
        assert await payments_rows(shop, order["order_id"]) == 1


async def test_the_amount_comes_from_the_order_even_after_the_price_changes(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order = await new_order(client, "k-price")
        raised = CatalogRow(
            "Stoneware Coffee Mug", "MUG-01", 2500, "USD", 10, "A 12 oz stoneware mug.", None, "", "Kitchen"
        )
        now = utc_now()
        await shop.db.write(lambda conn: upsert_catalog(conn, [raised], now))
        product = tool_data(await client.call_tool("get_product", {"sku": "MUG-01"}))
        assert product["variants"][0]["price"]["amount"] == 2500
        handoff = tool_data(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))
        assert handoff["amount"]["amount"] == 3600
        assert fake.intents[handoff["intent_id"]]["amount"] == 3600
        assert fake.calls("POST", "/v1/payment_intents")[0].params["amount"] == "3600"


async def test_checkout_page_renders_the_payment_element_under_a_stripe_only_csp(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order = await new_order(client, "k-page")
        link = tool_data(await client.call_tool("create_checkout_link", {"order_id": order["order_id"]}))
        fake.fail_next("500", times=3)  # Stripe is down when the buyer first opens the link
        down = await shop.web.get(shop.path_of(link["url"]), headers={"accept": "application/json"})
        assert down.status_code == 502 and down.json()["error"] == "payment_gateway_error"
        assert fake.intents == {}
        page = await shop.web.get(shop.path_of(link["url"]))
        assert page.status_code == 200, page.text
        [intent] = fake.intents.values()
        html = page.text
        assert "test payment" not in html.lower()
        assert '<script src="https://js.stripe.com/v3/"' in html
        assert f"Stripe({PUBLISHABLE_KEY!r}".replace("'", '"') in html
        assert intent["client_secret"] in html and 'elements.create("payment")' in html
        assert "$36.00" in html

        csp = page.headers["content-security-policy"]
        nonce = re.search(r"'nonce-([^']+)'", csp)
        assert nonce is not None
        assert set(iter_sources(csp, "script-src")) == {"'self'", f"'nonce-{nonce.group(1)}'", "https://js.stripe.com"}
        assert set(iter_sources(csp, "frame-src")) <= {"https://js.stripe.com", "https://hooks.stripe.com"}
        assert set(iter_sources(csp, "connect-src")) == {"'self'", "https://api.stripe.com"}
        assert "'unsafe-eval'" not in csp and "*" not in " ".join(iter_sources(csp, "script-src"))
        scripts = re.findall(r"<script\b([^>]*)>", html)
        assert len(scripts) == 2
        for attrs in scripts:
            assert f'nonce="{nonce.group(1)}"' in attrs
            src = re.search(r'src="([^"]+)"', attrs)
            assert src is None or src.group(1).startswith("https://js.stripe.com/")

        # reopening resumes the same intent; the JSON view never carries the client secret
        again = await shop.web.get(shop.path_of(link["url"]), headers={"accept": "application/json"})
        assert again.status_code == 200 and "client_secret" not in again.json()
        assert again.json()["publishable_key"] == PUBLISHABLE_KEY and again.json()["gateway"] == "stripe"
        assert len(fake.intents) == 1
        assert [c.status for c in fake.calls("POST", "/v1/payment_intents")] == [500, 500, 500, 200]


async def test_return_route_asks_the_gateway_and_never_trusts_the_query(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order = await new_order(client, "k-return")
        link = tool_data(await client.call_tool("create_checkout_link", {"order_id": order["order_id"]}))
        path = shop.path_of(link["url"])
        assert (await shop.web.get(path)).status_code == 200
        [intent] = fake.intents.values()

        # someone else's intent that did succeed, named in the query, proves nothing about this order
        other = await new_order(client, "k-return-other", [{"sku": "MUG-02", "quantity": 1}])
        other_intent = tool_data(await client.call_tool("create_payment_intent", {"order_id": other["order_id"]}))
        fake.succeed(other_intent["intent_id"])

        forged = {
            "payment_intent": other_intent["intent_id"],
            "payment_intent_client_secret": intent["client_secret"],
            "redirect_status": "succeeded",
        }
        response = await shop.web.get(path + "/return", params=forged)
        assert response.status_code == 303 and response.headers["location"].endswith(path + "?error=payment")
        fake.fail_payment(intent["id"])
        response = await shop.web.get(path + "/return", params=forged)
        assert response.status_code == 303 and response.headers["location"].endswith("?error=payment")
        view = tool_data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert view["status"] == "pending_payment" and view["stock"] == "reserved"
        assert view["payment"]["status"] == "failed" and "declined" in view["payment"]["last_error"]

        fake.succeed(intent["id"])
        response = await shop.web.get(path + "/return", params={"redirect_status": "failed"})
        assert response.status_code == 303 and "/checkout/done/" in response.headers["location"]
        view = tool_data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert view["status"] == "paid" and view["stock"] == "committed"
        assert [h["to_status"] for h in view["status_history"]] == ["pending_payment", "paid"]
        gone = await shop.web.get(path, headers={"accept": "application/json"})
        assert gone.status_code == 410 and gone.json()["error"] == "link_consumed"


async def test_concurrent_handoffs_for_one_order_make_one_intent(stripe_shop: StripeShop) -> None:
    """While a keyed request is in flight Stripe answers 409 idempotency_key_in_use to the same key; the
    concurrent callers either get the one intent or a retryable error, never a second intent."""
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order = await new_order(client, "k-concurrent")
        fake.work_delay = 0.3
        results: list[Any] = []

        async def one() -> None:
            results.append(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))

        async with anyio.create_task_group() as tasks:
            for _ in range(8):
                tasks.start_soon(one)
        fake.work_delay = 0.0
        ok = [tool_data(r) for r in results if not r.is_error]
        assert {tool_error(r) for r in results if r.is_error} <= {"payment_gateway_error"}
        assert ok and len({r["intent_id"] for r in ok}) == 1
        assert any(c.status == 409 for c in fake.calls("POST", "/v1/payment_intents"))
        assert len(fake.intents) == 1 and await payments_rows(shop, order["order_id"]) == 1
        final = tool_data(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))
        assert final["intent_id"] == ok[0]["intent_id"]


async def test_the_buyer_canceling_on_the_page_cancels_the_intent_at_stripe(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order = await new_order(client, "k-buyer-cancel")
        link = tool_data(await client.call_tool("create_checkout_link", {"order_id": order["order_id"]}))
        page = await shop.web.get(shop.path_of(link["url"]))
        assert page.status_code == 200 and len(fake.intents) == 1
        confirm = await shop.web.get(shop.path_of(link["url"]) + "/cancel")  # the page's cancel asks first
        csrf = re.search(r'name="csrf" value="([^"]+)"', confirm.text)
        assert csrf is not None and "Cancel this order?" in confirm.text
        canceled = await shop.web.post(shop.path_of(link["url"]) + "/cancel", data={"csrf": csrf.group(1)})
        assert canceled.status_code == 303
        [intent] = fake.intents.values()
        assert intent["status"] == "canceled"
        view = tool_data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert view["status"] == "canceled" and view["stock"] == "released"
        assert view["payment"]["status"] == "canceled"
        [cancel_call] = fake.calls("POST", f"/v1/payment_intents/{intent['id']}/cancel")
        assert cancel_call.idempotency_key == f"mcpco:cancel:{order['order_id']}:1"


async def test_cancel_order_cancels_the_open_intent_at_stripe(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order = await new_order(client, "k-agent-cancel")
        handoff = tool_data(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))
        tool_data(await client.call_tool("cancel_order", {"order_id": order["order_id"]}))
        assert fake.intents[handoff["intent_id"]]["status"] == "canceled"


async def test_a_payment_that_lands_after_cancel_order_is_flagged_not_silently_lost(stripe_shop: StripeShop) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order = await new_order(client, "k-late-pay")
        handoff = tool_data(await client.call_tool("create_payment_intent", {"order_id": order["order_id"]}))
        tool_data(await client.call_tool("cancel_order", {"order_id": order["order_id"]}))
        fake.succeed(handoff["intent_id"])
        response = await shop.post_event(event("payment_intent.succeeded", fake.snapshot(handoff["intent_id"])))
        assert response.status_code == 200 and response.json()["outcome"] == "paid after close"
        view = tool_data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert view["status"] == "canceled" and view["stock"] == "released"
        assert [issue["code"] for issue in view["issues"]] == ["paid_after_close"]
        # the merchant can give the money back
        refunded = tool_data(
            await client.call_tool("refund_order", {"order_id": order["order_id"], "idempotency_key": "r-late"})
        )
        assert refunded["status"] == "succeeded" and fake.refunded_total(handoff["intent_id"]) == 3600


async def test_reopening_the_link_after_the_payment_went_through_does_not_offer_the_form_again(
    stripe_shop: StripeShop,
) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        order = await new_order(client, "k-reopen")
        link = tool_data(await client.call_tool("create_checkout_link", {"order_id": order["order_id"]}))
        assert (await shop.web.get(shop.path_of(link["url"]))).status_code == 200
        [intent] = fake.intents.values()
        fake.succeed(intent["id"])
        again = await shop.web.get(shop.path_of(link["url"]), headers={"accept": "application/json"})
        assert again.status_code == 410 and again.json()["error"] == "link_consumed"


async def test_the_fake_holds_stripe_semantics_the_gateway_relies_on(fake_stripe: Any) -> None:
    """No database: StripeGateway straight against the fake (keys, idempotency conflicts, auth, unknown ids)."""
    from fakes.fake_stripe import SECRET_KEY

    from mcp_checkout.errors import PaymentGatewayError
    from mcp_checkout.payments.stripe_gateway import StripeGateway

    gateway = StripeGateway(SECRET_KEY, PUBLISHABLE_KEY, None, api_base=fake_stripe.url)
    meta = {"order_id": "ord_1", "attempt": "1"}
    first = await gateway.create_intent(amount=1800, currency="USD", metadata=meta, idempotency_key="k")
    same = await gateway.create_intent(amount=1800, currency="USD", metadata=meta, idempotency_key="k")
    assert same == first and first.currency == "USD" and first.metadata == meta
    with pytest.raises(PaymentGatewayError):
        await gateway.create_intent(amount=1900, currency="USD", metadata=meta, idempotency_key="k")
    assert len(fake_stripe.intents) == 1
    assert [c.status for c in fake_stripe.calls("POST", "/v1/payment_intents")] == [200, 200, 400]
    with pytest.raises(PaymentGatewayError):
        await gateway.retrieve_intent("pi_missing")
    with pytest.raises(PaymentGatewayError):
        await gateway.refund(first.id, amount=100, idempotency_key="r", reason=None)  # nothing captured yet
    wrong_key = StripeGateway("sk_test_wrong", None, None, api_base=fake_stripe.url)
    with pytest.raises(PaymentGatewayError) as refused:
        await wrong_key.retrieve_intent(first.id)
    assert "sk_test_wrong" not in str(refused.value)
    with pytest.raises(Exception, match="not configured"):
        gateway.verify_webhook(b"{}", "t=1,v1=00")
