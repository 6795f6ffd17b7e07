"""The buyer-agent flow through a real MCP client, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from mcp_checkout.service.container import Services
from tests.support import tool_data as data


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_search_cart_order_replay_lookup(server: Any, seeded: Services, mode: str) -> None:
    async with Client(server, mode=mode) as client:
        hits = data(await client.call_tool("search_catalog", {"query": "mug"}))
        assert {item["sku"] for item in hits["items"]} == {"MUG-01", "MUG-02"}
        product = data(await client.call_tool("get_product", {"sku": "SOCK-M-GRY"}))
        assert [v["sku"] for v in product["variants"]] == ["SOCK-M-GRY", "SOCK-L-GRY"]
        cart = data(await client.call_tool("create_cart", {}))
        data(await client.call_tool("add_to_cart", {"cart_id": cart["cart_id"], "sku": "MUG-01", "quantity": 2}))
        cart = data(await client.call_tool("add_to_cart", {"cart_id": cart["cart_id"], "sku": "SOCK-M-GRY"}))
        assert cart["total"]["amount"] == 2 * 1800 + 2200
        args = {"idempotency_key": "order-1", "cart_id": cart["cart_id"], "merchant_reference_id": "crm:42"}
        first = data(await client.call_tool("create_order", args))
        again = data(await client.call_tool("create_order", args))
        assert first["replayed"] is False and again["replayed"] is True
        assert again["order_id"] == first["order_id"]
        assert first["number"].startswith("MC-")
        assert first["total"]["amount"] == 5800
        order = data(await client.call_tool("get_order", {"order_id": first["order_id"]}))
        assert [h["to_status"] for h in order["status_history"]] == ["pending_payment"]
        assert order["number"] == first["number"] == "MC-000001"  # set by the database on insert (0009)
        found = data(await client.call_tool("lookup_orders", {"merchant_reference_id": "crm:42"}))
        assert found["status"] == "found" and [o["order_id"] for o in found["orders"]] == [first["order_id"]]
    product = await seeded.catalog.get_product(sku="MUG-01")
    assert product.variants[0].available == 8
