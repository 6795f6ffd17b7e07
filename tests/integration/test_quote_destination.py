"""A cart quoted for a destination that is only a country (or country, region, postal code), as platforms
send before the buyer types a street, on SQLite and PostgreSQL: shipping options priced by country and tax
estimated through the UCP REST binding, the same cart seen with the native tools, and the full address asked
for (naming the missing parts) only to complete or place the order. Before, such a destination was refused
("shipping_address.name is required"): no options, and the checkout stayed incomplete."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from mcp import Client
from sqlalchemy import text

from mcp_checkout.config import Settings
from mcp_checkout.domain import Principal
from mcp_checkout.service.container import Services, build_services
from tests.ucp_client import DESTINATION, Platform, conforms, priced_store, totals, ucp_app

BASE = "http://shop.test"
MERCHANT = Principal(id="merchant", kind="merchant")
FULL_ADDRESS = {"name": "Ada Lovelace", "line1": "1 Main St", "city": "San Francisco", "region": "CA",
                "postal_code": "94105", "country": "US"}  # fmt: skip
ON_DESTINATION = "$.fulfillment.methods[0].destinations[0]"


@pytest.fixture
async def shop(settings: Settings, seeded: Services) -> AsyncIterator[tuple[Platform, Services]]:
    services = build_services(settings.model_copy(update={"public_base_url": BASE}), db=seeded.db)
    key = (await services.access.create_key("platform", "buyer")).key
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ucp_app(services)), base_url=BASE) as client:
        yield Platform(client, key), services


def shipping_to(destination: dict[str, Any], option: str | None = None) -> dict[str, Any]:
    method: dict[str, Any] = {"type": "shipping", "destinations": [destination], "selected_destination_id": "d1"}
    if option is not None:
        method["groups"] = [{"id": "shipping_group", "selected_option_id": option}]
    return {"methods": [method]}


def problems(checkout: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m["code"], m.get("path", "")) for m in checkout.get("messages", []) if m["type"] == "error"}


async def orders_of(services: Services, cart_id: str) -> int:
    query = text("select count(*) from orders where cart_id = :cart_id")
    return int(await services.db.read(lambda conn: conn.execute(query, {"cart_id": cart_id}).scalar_one()))


async def test_a_country_alone_prices_the_options_and_the_full_address_is_asked_for_to_complete(shop: Any) -> None:
    platform, services = shop
    await services.db.write(priced_store)  # ground 5.99 and express 19.99 to the US; California tax 7.25 %
    created = conforms(
        await platform.create(
            [("MUG-01", 2)], fulfillment=shipping_to({"id": "d1", "address_country": "US"}, "express")
        )
    )
    assert created["status"] == "incomplete"
    [method] = created["fulfillment"]["methods"]
    assert (method["id"], method["type"]) == ("shipping", "shipping")
    assert method["destinations"] == [{"id": "destination_1", "address_country": "US"}]
    [group] = method["groups"]
    assert [(o["id"], o["title"], o["totals"]) for o in group["options"]] == [
        ("ground", "Ground", [{"type": "total", "amount": 599}]),
        ("express", "Express", [{"type": "total", "amount": 1999}]),
    ]
    assert group["selected_option_id"] == "express"
    assert totals(created) == {"subtotal": 3600, "fulfillment": 1999, "total": 5599}  # no region: no CA tax
    missing = {"street_address", "address_locality", "postal_code", "first_name"}
    assert problems(created) == {("shipping_address_required", f"{ON_DESTINATION}.{part}") for part in missing}
    assert not [m["content"] for m in created["messages"] if "update_cart" in m["content"]]  # UCP words

    # Region and postal code: tax is estimated for California; still no street, so it cannot complete.
    region = shipping_to({"id": "d1", "address_country": "US", "address_region": "CA", "postal_code": "94105"})
    regional = conforms(await platform.update(created["id"], [("MUG-01", 2)], fulfillment=region))
    assert regional["fulfillment"]["methods"][0]["destinations"] == [
        {"id": "destination_1", "address_country": "US", "address_region": "CA", "postal_code": "94105"}
    ]
    tax = round((3600 + 1999) * 0.0725)
    assert totals(regional) == {"subtotal": 3600, "fulfillment": 1999, "tax": tax, "total": 5599 + tax}
    assert {path.rpartition(".")[2] for _, path in problems(regional)} == {
        "street_address", "address_locality", "first_name"
    }  # fmt: skip
    refused = conforms(await platform.complete(created["id"], str(uuid.uuid4())))
    assert refused["status"] == "incomplete" and "continue_url" not in refused
    assert await orders_of(services, created["id"]) == 0

    # The full address: ready, at the quoted total, and completion places the order.
    full = conforms(await platform.update(created["id"], [("MUG-01", 2)], fulfillment=shipping_to(DESTINATION)))
    assert full["status"] == "ready_for_complete", full.get("messages")
    assert totals(full) == totals(regional)
    escalated = conforms(await platform.complete(created["id"], str(uuid.uuid4())))
    assert escalated["status"] == "requires_escalation"
    native = await services.carts.get(MERCHANT, created["id"])
    order = await services.orders.get(MERCHANT, native.order_id or "")
    assert order.fulfillment_option is not None
    assert (order.total.amount, order.fulfillment_option.option_id) == (5599 + tax, "express")
    assert order.shipping_address is not None and order.shipping_address.line1 == "1 Main St"


async def test_a_destination_that_is_not_a_country_or_region_is_refused_at_its_path(shop: Any) -> None:
    platform, services = shop
    await services.db.write(priced_store)
    checkout = conforms(await platform.create([("MUG-01", 1)]))
    for bad, field in (({"address_country": "ZZ"}, "address_country"),
                       ({"address_country": "US", "address_region": "Atlantis"}, "address_region")):  # fmt: skip
        answer = conforms(await platform.update(checkout["id"], [("MUG-01", 1)], fulfillment=shipping_to(bad)))
        assert ("invalid", f"{ON_DESTINATION}.{field}") in problems(answer)
        assert "destination_1" not in json.dumps(answer)  # nothing of it was kept


async def test_an_unknown_selected_option_is_a_message_and_the_destination_sent_with_it_stays(shop: Any) -> None:
    platform, services = shop
    await services.db.write(priced_store)
    created = conforms(
        await platform.create([("MUG-01", 1)], fulfillment=shipping_to({"id": "d1", "address_country": "US"}, "std"))
    )
    assert ("invalid", "$.fulfillment.methods[0].groups[0].selected_option_id") in problems(created)
    [method] = created["fulfillment"]["methods"]
    assert method["destinations"] == [{"id": "destination_1", "address_country": "US"}]
    assert [o["id"] for o in method["groups"][0]["options"]] == ["ground", "express"]


async def test_a_name_sent_with_the_country_is_kept_and_not_asked_for_again(shop: Any) -> None:
    platform, services = shop
    await services.db.write(priced_store)
    named = {"id": "d1", "first_name": "Ada", "last_name": "Lovelace", "address_country": "US"}
    created = conforms(await platform.create([("MUG-01", 1)], fulfillment=shipping_to(named, "ground")))
    assert created["fulfillment"]["methods"][0]["destinations"] == [
        {"id": "destination_1", "first_name": "Ada", "last_name": "Lovelace", "address_country": "US"}
    ]
    assert {path.rpartition(".")[2] for _, path in problems(created)} == {
        "street_address", "address_locality", "postal_code"
    }  # fmt: skip


async def test_a_country_alone_is_enough_when_nothing_ships(shop: Any) -> None:
    """The store has no shipping rate: nothing ships, so a country-only destination keeps nothing from
    completing, and the order is placed without an address."""
    platform, services = shop
    created = conforms(
        await platform.create([("MUG-01", 1)], fulfillment=shipping_to({"id": "d1", "address_country": "US"}))
    )
    assert created["status"] == "ready_for_complete", created.get("messages")
    escalated = conforms(await platform.complete(created["id"], str(uuid.uuid4())))
    assert escalated["status"] == "requires_escalation"
    order = await services.orders.get(MERCHANT, (await services.carts.get(MERCHANT, created["id"])).order_id or "")
    assert order.shipping_address is None


def data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    return dict(result.structured_content)


async def test_the_native_tools_see_the_quote_and_create_order_names_the_missing_parts(shop: Any, server: Any) -> None:
    platform, services = shop
    await services.db.write(priced_store)
    fulfillment = shipping_to({"id": "d1", "address_country": "US", "address_region": "CA"}, "ground")
    checkout_id = conforms(await platform.create([("MUG-01", 1)], fulfillment=fulfillment))["id"]
    async with Client(server) as client:
        cart = data(await client.call_tool("get_cart", {"cart_id": checkout_id}))
        assert cart["shipping_address"] is None
        assert cart["quote_destination"] == {"country": "US", "region": "CA", "postal_code": None, "name": None}
        assert [o["option_id"] for o in cart["fulfillment_options"]] == ["ground", "express"]
        tax = round((1800 + 599) * 0.0725)
        assert (cart["shipping_total"]["amount"], cart["tax_total"]["amount"]) == (599, tax)
        assert cart["ready"] is False
        assert [(m["code"], m["path"]) for m in cart["messages"]] == [
            ("shipping_address_required", f"shipping_address.{part}")
            for part in ("line1", "city", "postal_code", "name")
        ]

        refused = await client.call_tool("create_order", {"cart_id": checkout_id, "idempotency_key": "order-1"})
        assert refused.is_error
        error = json.loads(refused.content[1].text)["error"]
        assert error["code"] == "invalid_input" and error["details"]["field"] == "shipping_address.line1"
        assert error["details"]["missing"] == [
            f"shipping_address.{p}" for p in ("line1", "city", "postal_code", "name")
        ]
        assert "update_cart" in error["next_actions"]
        assert await orders_of(services, checkout_id) == 0

        full = data(await client.call_tool("update_cart", {"cart_id": checkout_id, "shipping_address": FULL_ADDRESS}))
        assert full["quote_destination"] is None and full["ready"] is True
        assert full["total"]["amount"] == cart["total"]["amount"]  # the quote held
        order = data(await client.call_tool("create_order", {"cart_id": checkout_id, "idempotency_key": "order-2"}))
        assert order["total"]["amount"] == cart["total"]["amount"]
        assert order["shipping_address"]["line1"] == "1 Main St"


async def test_native_update_cart_takes_a_country_alone_and_a_direct_order_needs_the_full_address(
    seeded: Services, server: Any
) -> None:
    """The native tools speak the same rule: update_cart with country and region quotes (a full address
    works as before); create_order for items that ship names the missing parts; a pickup point still needs
    a full address. Before, the tool refused a country alone ("name: Field required")."""
    await seeded.db.write(priced_store)
    async with Client(server) as client:
        cart_id = data(await client.call_tool("create_cart", {}))["cart_id"]
        await client.call_tool("add_to_cart", {"cart_id": cart_id, "sku": "MUG-01", "quantity": 1})
        quoted = data(await client.call_tool(
            "update_cart",
            {"cart_id": cart_id, "shipping_address": {"country": "us", "region": "California"},
             "fulfillment_option_id": "ground"},
        ))  # fmt: skip
        assert quoted["quote_destination"] == {"country": "US", "region": "CA", "postal_code": None, "name": None}
        assert (quoted["shipping_total"]["amount"], quoted["tax_total"]["amount"]) == (599, round(2399 * 0.0725))
        assert [m["path"] for m in quoted["messages"]] == [
            f"shipping_address.{part}" for part in ("line1", "city", "postal_code", "name")
        ]
        full = data(await client.call_tool("update_cart", {"cart_id": cart_id, "shipping_address": FULL_ADDRESS}))
        assert full["shipping_address"]["line1"] == "1 Main St" and full["ready"] is True

        direct = await client.call_tool(
            "create_order",
            {"idempotency_key": "direct-1", "items": [{"sku": "MUG-01", "quantity": 1}],
             "shipping_address": {"country": "US", "postal_code": "94105"}},
        )  # fmt: skip
        assert direct.is_error
        error = json.loads(direct.content[1].text)["error"]
        assert (error["code"], error["details"]["missing"]) == (
            "invalid_input", ["shipping_address.line1", "shipping_address.city", "shipping_address.name"]
        )  # fmt: skip
        half = await client.call_tool(
            "create_order",
            {"idempotency_key": "direct-2", "items": [{"sku": "MUG-01", "quantity": 1}],
             "shipping_address": {"country": "US", "line1": "1 Main St"}},
        )  # fmt: skip
        assert json.loads(half.content[1].text)["error"]["details"]["field"] == "shipping_address.name"
        pickup = await client.call_tool(
            "upsert_shipping_rate",
            {"rate_id": "shop", "name": "Pick up", "countries": ["US"], "price": 0, "kind": "pickup",
             "pickup_address": {"country": "US"}},
        )  # fmt: skip
        assert json.loads(pickup.content[1].text)["error"]["details"]["field"] == "pickup_address.name"
