"""Text the databases cannot store is refused at the door, naming the field, on SQLite and PostgreSQL.

PostgreSQL rejects NUL (U+0000) in text; before the fix `get_product{sku:"KIT\\u0000MUG"}` and other tools
answered `[storage_unavailable] … retry` there (a retry can never succeed) and something else on SQLite.
"""

from __future__ import annotations

import json
from typing import Any

from mcp import Client

from mcp_checkout.service.container import Services

NUL = "\u0000"


def refusal(result: Any) -> dict[str, Any]:
    assert result.is_error, f"expected an error, got {str(result.structured_content)[:300]}"
    return dict(json.loads(result.content[1].text)["error"])


async def test_nul_in_any_text_argument_is_invalid_input_naming_the_field(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        cart_id = (await client.call_tool("create_cart", {})).structured_content["cart_id"]
        calls: list[tuple[str, dict[str, Any], str]] = [
            ("get_product", {"sku": f"KIT{NUL}MUG"}, "sku"),
            ("search_catalog", {"query": f"mug{NUL}"}, "query"),
            ("search_catalog", {"query": "mug", "category": f"Kit{NUL}chen"}, "category"),
            ("add_to_cart", {"cart_id": cart_id, "sku": f"MUG-01{NUL}", "quantity": 1}, "sku"),
            ("update_cart_item", {"cart_id": cart_id, "sku": f"{NUL}", "quantity": 1}, "sku"),
            ("remove_from_cart", {"cart_id": cart_id, "sku": f"MUG{NUL}01"}, "sku"),
            (
                "create_order",
                {"idempotency_key": "nul-1", "items": [{"sku": f"MUG-01{NUL}", "quantity": 1}]},
                "items[0].sku",
            ),
            ("upsert_product", {"product_name": f"Mug{NUL}", "sku": "MUG-77", "price": 100}, "product_name"),
        ]
        for tool, arguments, field in calls:
            error = refusal(await client.call_tool(tool, arguments))
            assert error["code"] == "invalid_input", (tool, error)
            assert error["retryable"] is False, tool
            assert error["details"]["field"] == field, (tool, error)
            assert f"{field} contains a NUL character" in error["message"], error["message"]
        surrogate = refusal(await client.call_tool("get_product", {"sku": "MUG\ud800"}))
        assert surrogate["code"] == "invalid_input" and surrogate["details"]["field"] == "sku"
        # the same tools still work with clean text
        assert not (await client.call_tool("get_product", {"sku": "MUG-01"})).is_error
    assert (await seeded.catalog.get_product(sku="MUG-01")).variants[0].available == 10
