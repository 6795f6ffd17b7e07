"""delete_product: never-ordered SKUs are deleted, ordered ones archived (unfindable, unsellable, kept for
their orders), through a real MCP client on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

from mcp import Client

from mcp_checkout.config import Settings
from mcp_checkout.domain import Principal
from mcp_checkout.payments.offline import OfflineGateway
from mcp_checkout.server import build_server
from mcp_checkout.service.container import Services
from tests.support import tool_data as data

MERCHANT = Principal(id="local", kind="merchant")


def code(result: Any) -> str:
    assert result.is_error, f"expected an error, got {str(result.structured_content)[:300]}"
    return str(json.loads(result.content[1].text)["error"]["code"])


async def found(client: Client, query: str) -> set[str]:
    hits = data(await client.call_tool("search_catalog", {"query": query}))
    return {item["sku"] for item in hits["items"]}


async def test_a_never_ordered_sku_is_deleted_with_its_product(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        removed = data(await client.call_tool("delete_product", {"sku": "MUG-02"}))
        assert removed["deleted"] == ["MUG-02"] and removed["archived"] == []
        assert len(removed["products_deleted"]) == 1
        assert "MUG-02" not in await found(client, "enamel camp mug")
        assert code(await client.call_tool("get_product", {"sku": "MUG-02"})) == "sku_not_found"
        again = await client.call_tool("delete_product", {"sku": "MUG-02"})
        assert code(again) == "sku_not_found"
        both = await client.call_tool("delete_product", {"sku": "MUG-01", "product_id": "prod_x"})
        assert code(both) == "invalid_input"


async def test_an_ordered_sku_is_archived_unsellable_and_its_order_still_completes(
    server: Any, seeded: Services
) -> None:
    async with Client(server) as client:
        cart = data(await client.call_tool("create_cart", {}))
        data(await client.call_tool("add_to_cart", {"cart_id": cart["cart_id"], "sku": "MUG-01", "quantity": 2}))
        order = data(
            await client.call_tool("create_order", {"idempotency_key": "removal-1", "cart_id": cart["cart_id"]})
        )
        other_cart = data(await client.call_tool("create_cart", {}))
        data(await client.call_tool("add_to_cart", {"cart_id": other_cart["cart_id"], "sku": "MUG-01"}))
        assert "MUG-01" in await found(client, "stoneware mug")

        removed = data(await client.call_tool("delete_product", {"sku": "MUG-01"}))
        assert (removed["deleted"], removed["archived"], removed["products_deleted"]) == ([], ["MUG-01"], [])

        assert "MUG-01" not in await found(client, "stoneware mug")
        assert "MUG-01" not in await found(client, "")  # browsing without a query
        assert code(await client.call_tool("get_product", {"sku": "MUG-01"})) == "sku_not_found"
        new_cart = data(await client.call_tool("create_cart", {}))
        refused = await client.call_tool("add_to_cart", {"cart_id": new_cart["cart_id"], "sku": "MUG-01"})
        assert code(refused) == "sku_not_found"
        direct = await client.call_tool(
            "create_order", {"idempotency_key": "removal-2", "items": [{"sku": "MUG-01", "quantity": 1}]}
        )
        assert code(direct) == "sku_not_found"
        assert data(await client.call_tool("get_cart", {"cart_id": other_cart["cart_id"]}))["item_count"] == 0

        # The order placed before keeps its line and can still be paid.
        kept = data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert [line["sku"] for line in kept["lines"]] == ["MUG-01"]
        handoff = await seeded.payments.handoff(MERCHANT, order["order_id"])
        gateway = seeded.payments.gateway
        assert isinstance(gateway, OfflineGateway)
        await gateway.simulate_payment(handoff.intent_id)
        paid = await seeded.payments.sync(MERCHANT, order["order_id"])
        assert (paid.order.status, paid.order.stock) == ("paid", "committed")

        # upsert_product with the same code lists it again.
        data(await client.call_tool("upsert_product", {"product_name": "Stoneware Coffee Mug", "sku": "MUG-01",
                                                       "price": 1800}))  # fmt: skip
        assert "MUG-01" in await found(client, "stoneware mug")


async def test_deleting_a_product_archives_ordered_variants_and_deletes_the_rest(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        product = data(await client.call_tool("get_product", {"sku": "SOCK-M-GRY"}))
        data(await client.call_tool("create_order", {"idempotency_key": "socks-1",
                                                     "items": [{"sku": "SOCK-M-GRY", "quantity": 1}]}))  # fmt: skip
        removed = data(await client.call_tool("delete_product", {"product_id": product["product_id"]}))
        assert (removed["deleted"], removed["archived"], removed["products_deleted"]) == (
            ["SOCK-L-GRY"], ["SOCK-M-GRY"], []
        )  # fmt: skip
        gone = await client.call_tool("get_product", {"product_id": product["product_id"]})
        assert code(gone) == "product_not_found"
        assert await found(client, "merino socks") == set()


async def test_buyers_cannot_delete_products(settings: Settings, seeded: Services) -> None:
    buyer = build_server(settings.model_copy(update={"local_principal_kind": "buyer"}))
    async with Client(buyer) as client:
        assert "delete_product" not in {tool.name for tool in (await client.list_tools()).tools}
        assert code(await client.call_tool("delete_product", {"sku": "MUG-02"})) == "forbidden"
    assert (await seeded.catalog.get_product(sku="MUG-02")).variants
