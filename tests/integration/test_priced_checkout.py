"""The priced buyer flow through a real MCP client, on SQLite and PostgreSQL: update_cart (set semantics,
validation naming the field), the breakdown on carts and orders, every checkout message code, orders placed
without an address (finished later with set_delivery), and discount usage counted exactly once."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from mcp import Client
from sqlalchemy import Connection, select, update

from mcp_checkout.domain import Principal, utc_now
from mcp_checkout.errors import CheckoutError, DiscountCodeExhausted
from mcp_checkout.service import quotes
from mcp_checkout.service.container import Services
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.store import pricing as pricing_store
from mcp_checkout.store.models import carts, discount_codes, discount_redemptions, skus
from tests.pricing_rows import add_discount_code, add_shipping_rate, add_tax_rate

ADDRESS = {
    "name": "Ada Buyer",
    "line1": "1 Market St",
    "city": "San Francisco",
    "region": "California",
    "postal_code": "94105",
    "country": "us",
}
LOCAL = Principal(id="local", kind="merchant", client="pytest")


def data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    assert result.structured_content is not None
    return dict(result.structured_content)


def error_of(result: Any) -> dict[str, Any]:
    assert result.is_error, f"expected an error, got {str(result.structured_content)[:300]}"
    return dict(json.loads(result.content[1].text)["error"])


def messages(view: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(m["code"], m["path"]) for m in view["messages"]]


def amounts(view: dict[str, Any]) -> dict[str, int]:
    keys = ("subtotal", "discount_total", "shipping_total", "tax_total", "total")
    return {key: view[key]["amount"] for key in keys}


def store_setup(conn: Connection) -> None:
    add_shipping_rate(conn, "ground", 599, ["US"], free_over=10_000, carrier="USPS", min_days=3, max_days=5)
    add_shipping_rate(conn, "express", 1999, ["US"], carrier="UPS", min_days=1, max_days=2)
    add_tax_rate(conn, "US", 725, region="CA", applies_to_shipping=True)
    add_discount_code(conn, "TEN", "percent", 1000)
    add_discount_code(conn, "OLD", "percent", 1000, ends_at=utc_now() - timedelta(days=1))
    add_discount_code(conn, "BIG", "fixed", 1000, currency="USD", min_subtotal=50_000)
    add_discount_code(conn, "GONE", "percent", 1000, max_uses=1, uses=1)
    add_discount_code(conn, "THREE", "fixed", 500, currency="USD", max_uses=3)


async def test_update_cart_prices_the_cart_and_every_message_code_is_reachable(server: Any, seeded: Services) -> None:
    await seeded.db.write(store_setup)
    async with Client(server) as client:

        async def call(tool: str, **arguments: Any) -> Any:
            return await client.call_tool(tool, arguments)

        cart_id = data(await call("create_cart"))["cart_id"]
        empty = data(await call("get_cart", cart_id=cart_id))
        assert messages(empty) == [("cart_empty", "lines")] and empty["ready"] is False
        cart = data(await call("add_to_cart", cart_id=cart_id, sku="MUG-01", quantity=2))
        assert messages(cart) == [("shipping_address_required", "shipping_address")] and cart["ready"] is False
        assert amounts(cart) == {"subtotal": 3600, "discount_total": 0, "shipping_total": 0, "tax_total": 0,
                                 "total": 3600}  # fmt: skip

        abroad = data(await call("update_cart", cart_id=cart_id, shipping_address={**ADDRESS, "country": "FR",
                                                                                    "region": None}))  # fmt: skip
        assert messages(abroad) == [("address_undeliverable", "shipping_address.country")]

        cart = data(await call("update_cart", cart_id=cart_id, shipping_address=ADDRESS))
        assert cart["shipping_address"]["country"] == "US" and cart["shipping_address"]["region"] == "CA"
        assert messages(cart) == [("fulfillment_option_required", "fulfillment_option_id")]
        options = {o["option_id"]: o for o in cart["fulfillment_options"]}
        assert set(options) == {"ground", "express"}
        assert options["express"]["carrier"] == "UPS" and options["express"]["price"]["amount"] == 1999

        for code, expected in [("nope", "discount_code_invalid"), ("old", "discount_code_expired"),
                               ("big", "discount_minimum_not_met"), ("gone", "discount_code_exhausted")]:  # fmt: skip
            view = data(await call("update_cart", cart_id=cart_id, fulfillment_option_id="express",
                                   discount_codes=[code]))  # fmt: skip
            assert messages(view) == [(expected, "discount_codes[0]")], code
            assert view["ready"] is False and view["discount_total"]["amount"] == 0

        buyer = {"email": "Ada@Example.com", "name": "Ada"}
        cart = data(await call("update_cart", cart_id=cart_id, discount_codes=["ten"], buyer=buyer))
        assert cart["ready"] is True and cart["messages"] == []
        assert cart["buyer"] == {"email": "ada@example.com", "name": "Ada", "phone": None}
        assert cart["fulfillment_option_id"] == "express"  # not sent: kept
        # 3600 - 10 % = 3240; tax 7.25 % of 3240 = 234.9 -> 235, of shipping 1999 -> 144.9 -> 145
        assert amounts(cart) == {"subtotal": 3600, "discount_total": 360, "shipping_total": 1999, "tax_total": 380,
                                 "total": 3240 + 1999 + 380}  # fmt: skip
        assert cart["lines"][0]["discount"]["amount"] == 360 and cart["lines"][0]["tax"]["amount"] == 235
        assert cart["discounts"] == [{"code": "TEN", "amount": {"amount": 360, "currency": "USD", "display": "$3.60"}}]
        again = data(await call("update_cart", cart_id=cart_id, discount_codes=["ten"], buyer=buyer))
        assert amounts(again) == amounts(cart)  # set semantics: safe to retry

        cleared = data(await call("update_cart", cart_id=cart_id, buyer=None))
        assert cleared["buyer"] is None and cleared["discounts"] == cart["discounts"]

        # bad input names the field
        bad = error_of(await call("update_cart", cart_id=cart_id, shipping_address={**ADDRESS, "country": "XX"}))
        assert bad["code"] == "invalid_input" and bad["details"]["field"] == "shipping_address.country"
        bad = error_of(await call("update_cart", cart_id=cart_id, shipping_address={**ADDRESS, "region": "Bavaria"}))
        assert bad["details"]["field"] == "shipping_address.region"
        bad = error_of(await call("update_cart", cart_id=cart_id, fulfillment_option_id="teleport"))
        assert bad["details"]["field"] == "fulfillment_option_id"

        # stock sold elsewhere shows on the cart
        await seeded.db.write(
            lambda conn: conn.execute(update(skus).where(skus.c.sku == "MUG-01").values(stock_on_hand=1))
        )
        short = data(await call("get_cart", cart_id=cart_id))
        assert messages(short) == [("insufficient_stock", "lines[0].quantity")]
        await seeded.db.write(
            lambda conn: conn.execute(update(skus).where(skus.c.sku == "MUG-01").values(stock_on_hand=10))
        )

        data(await call("update_cart", cart_id=cart_id, buyer=buyer))
        order = data(await call("create_order", idempotency_key="priced-1", cart_id=cart_id))
        assert amounts(order) == amounts(cart) and order["ready"] is True and order["messages"] == []
        assert order["email"] == "ada@example.com" and order["buyer"]["name"] == "Ada"
        assert order["fulfillment_option"]["option_id"] == "express"
        assert order["shipping_address"]["region"] == "CA"
        assert order["lines"][0]["discount"]["amount"] == 360 and order["lines"][0]["tax"]["amount"] == 235
        assert order["discounts"][0]["code"] == "TEN"
        shown = data(await call("get_order", order_id=order["order_id"]))
        assert amounts(shown) == amounts(order) and shown["discounts"] == order["discounts"]
        assert shown["fulfillment_option"] == order["fulfillment_option"]


async def test_an_order_without_delivery_is_placed_not_ready_and_set_delivery_prices_it(
    server: Any, seeded: Services
) -> None:
    await seeded.db.write(store_setup)
    async with Client(server) as client:
        order = data(await client.call_tool("create_order", {
            "idempotency_key": "no-address", "items": [{"sku": "MUG-01", "quantity": 1}], "discount_codes": ["ten"],
        }))  # fmt: skip
        assert order["ready"] is False and order["stock"] == "reserved"
        assert messages(order) == [("shipping_address_required", "shipping_address")]  # as a cart says it
        assert amounts(order) == {"subtotal": 1800, "discount_total": 180, "shipping_total": 0, "tax_total": 0,
                                  "total": 1620}  # fmt: skip
        done = await seeded.orders.set_delivery(order["order_id"], {**ADDRESS, "country": "US"}, "ground")
        assert done.ready and done.messages == []
        assert done.shipping_total.amount == 599
        # tax 7.25 % of 1620 = 117.45 -> 117 and of 599 = 43.4 -> 43
        assert done.tax_total.amount == 160 and done.total.amount == 1620 + 599 + 160
        shown = data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert shown["total"]["amount"] == done.total.amount and shown["ready"] is True
        with_key = await client.call_tool("create_order", {
            "idempotency_key": "no-address", "items": [{"sku": "MUG-01", "quantity": 1}], "discount_codes": ["TEN"],
        })  # fmt: skip
        assert error_of(with_key)["code"] == "idempotency_conflict"  # the codes are in the fingerprint
        expired = await client.call_tool("create_order", {
            "idempotency_key": "old-code", "items": [{"sku": "MUG-01", "quantity": 1}], "discount_codes": ["old"],
        })  # fmt: skip
        assert error_of(expired)["code"] == "discount_code_expired"
        data(await client.call_tool("cancel_order", {"order_id": order["order_id"]}))
    with pytest.raises(CheckoutError) as refused:
        await seeded.orders.set_delivery(order["order_id"], ADDRESS, "ground")
    assert refused.value.code == "invalid_state"


async def test_carts_and_orders_in_the_same_state_show_the_same_message_codes(server: Any, seeded: Services) -> None:
    """get_cart, update_cart, create_order and get_order agree: no address, an address no rate serves
    (address_undeliverable, not fulfillment_option_required), an address without an option."""
    await seeded.db.write(store_setup)
    france = {**ADDRESS, "country": "FR", "region": None}
    async with Client(server) as client:
        for n, address in enumerate((None, france, ADDRESS)):
            cart_id = data(await client.call_tool("create_cart", {}))["cart_id"]
            data(await client.call_tool("add_to_cart", {"cart_id": cart_id, "sku": "MUG-01", "quantity": 1}))
            updated = data(await client.call_tool("update_cart", {"cart_id": cart_id, "shipping_address": address}))
            cart = data(await client.call_tool("get_cart", {"cart_id": cart_id}))
            order = data(await client.call_tool("create_order", {"idempotency_key": f"same-{n}", "cart_id": cart_id}))
            shown = data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
            expected = [
                [("shipping_address_required", "shipping_address")],
                [("address_undeliverable", "shipping_address.country")],
                [("fulfillment_option_required", "fulfillment_option_id")],
            ][n]
            views = {"update_cart": updated, "get_cart": cart, "create_order": order, "get_order": shown}
            assert {tool: messages(view) for tool, view in views.items()} == dict.fromkeys(views, expected)
            assert not any(view["ready"] for view in views.values())


async def test_set_delivery_keeps_a_free_shipping_codes_recorded_amount_equal_to_the_orders(seeded: Services) -> None:
    """The redemption row (what the code's use is recorded at) follows the order's breakdown when the buyer
    picks another option on the page: free shipping is worth the charge it waives now."""
    await seeded.db.write(store_setup)
    await seeded.db.write(lambda conn: add_discount_code(conn, "SHIPFREE", "free_shipping", 0))
    cmd = CreateOrder(idempotency_key="free-ship", items=[("MUG-01", 1)], discount_codes=["shipfree"])
    order_id = (await seeded.orders.create(LOCAL, cmd)).order_id

    async def recorded() -> list[tuple[str, int]]:
        return await seeded.db.read(lambda conn: pricing_store.redemptions_of(conn, order_id))

    assert await recorded() == [("SHIPFREE", 0)]  # no option yet: nothing waived
    for option, charge in (("express", 1999), ("ground", 599)):
        done = await seeded.orders.set_delivery(order_id, ADDRESS, option)
        assert done.shipping_total.amount == 0
        assert [(d.code, d.amount.amount) for d in done.discounts] == [("SHIPFREE", charge)]
        assert await recorded() == [("SHIPFREE", charge)], option


async def _uses(services: Services, code: str) -> int:
    return int(
        await services.db.read(
            lambda conn: conn.execute(select(discount_codes.c.uses).where(discount_codes.c.code == code)).scalar_one()
        )
    )


async def test_ten_concurrent_orders_on_a_code_with_three_uses_left_exactly_three_get_it(seeded: Services) -> None:
    await seeded.db.write(store_setup)

    async def order(n: int) -> str:
        cmd = CreateOrder(idempotency_key=f"race-{n}", items=[("SOCK-M-GRY", 1)], discount_codes=["THREE"])
        try:
            return (await seeded.orders.create(LOCAL, cmd)).order_id
        except DiscountCodeExhausted:
            return "exhausted"

    outcomes = await asyncio.gather(*(order(n) for n in range(10)))
    placed = [o for o in outcomes if o != "exhausted"]
    assert len(placed) == 3 and outcomes.count("exhausted") == 7
    assert await _uses(seeded, "THREE") == 3
    redemptions = await seeded.db.read(
        lambda conn: conn.execute(select(discount_redemptions.c.order_id, discount_redemptions.c.status)).all()
    )
    assert sorted(redemptions) == sorted((order_id, "applied") for order_id in placed)
    stock = await seeded.catalog.get_product(sku="SOCK-M-GRY")
    assert stock.variants[0].available == 50 - 3  # the refused orders reserved nothing

    # canceling an unpaid order gives its use back, once
    await seeded.orders.cancel(LOCAL, placed[0], None)
    await seeded.orders.cancel(LOCAL, placed[0], None)
    assert await _uses(seeded, "THREE") == 2
    assert await order(99) != "exhausted"
    assert await order(100) == "exhausted"


class _QuoteSeesNoBuyerUses:
    """store/pricing as a quote sees it when another order of the same buyer commits just after the quote
    read: no use of this buyer yet. Only the order's own transaction can then hold the limit."""

    def __getattr__(self, name: str) -> Any:
        return getattr(pricing_store, name)

    @staticmethod
    def buyer_uses(conn: Connection, code: str, buyer_key: str) -> int:
        return 0


async def test_a_buyers_limit_is_counted_again_in_the_orders_transaction(
    seeded: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seeded.db.write(lambda conn: add_discount_code(conn, "TWICE", "percent", 1000, max_uses_per_buyer=2))
    monkeypatch.setattr(quotes, "pricing_store", _QuoteSeesNoBuyerUses())

    async def order(n: int, email: str = "ada@example.com") -> str:
        cmd = CreateOrder(idempotency_key=f"twice-{n}", items=[("SOCK-M-GRY", 1)], email=email,
                          discount_codes=["TWICE"])  # fmt: skip
        return (await seeded.orders.create(LOCAL, cmd)).order_id

    first, second = await order(1), await order(2)  # the buyer's 1st and 2nd use: both allowed
    with pytest.raises(DiscountCodeExhausted):
        await order(3)
    assert await order(4, email="bob@example.com")  # another buyer's first
    assert await _uses(seeded, "TWICE") == 3  # the refused order counted nothing and recorded nothing
    redemptions = await seeded.db.read(
        lambda conn: (
            conn.execute(select(discount_redemptions.c.order_id).where(discount_redemptions.c.code == "TWICE"))
            .scalars()
            .all()
        )
    )
    assert first in redemptions and second in redemptions and len(redemptions) == 3


async def test_concurrent_orders_of_one_buyer_get_the_code_only_as_often_as_the_buyer_may(seeded: Services) -> None:
    await seeded.db.write(lambda conn: add_discount_code(conn, "TWICE", "percent", 1000, max_uses_per_buyer=2))

    async def order(n: int) -> str:
        cmd = CreateOrder(idempotency_key=f"twice-{n}", items=[("SOCK-M-GRY", 1)], email="ada@example.com",
                          discount_codes=["TWICE"])  # fmt: skip
        try:
            return (await seeded.orders.create(LOCAL, cmd)).order_id
        except DiscountCodeExhausted:
            return "exhausted"

    outcomes = await asyncio.gather(*(order(n) for n in range(6)))
    assert outcomes.count("exhausted") == 4
    assert await _uses(seeded, "TWICE") == 2


async def test_erasing_a_buyer_clears_their_carts(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        cart_id = data(await client.call_tool("create_cart", {}))["cart_id"]
        data(await client.call_tool("update_cart", {"cart_id": cart_id, "buyer": {"email": "gone@example.com"},
                                                    "shipping_address": ADDRESS}))  # fmt: skip
    await seeded.buyer_data.erase(LOCAL, "gone@example.com")
    row = await seeded.db.read(lambda conn: conn.execute(select(carts).where(carts.c.id == cart_id)).mappings().one())
    assert row["buyer"] is None and row["shipping_address"] is None and row["email_hash"] is None
