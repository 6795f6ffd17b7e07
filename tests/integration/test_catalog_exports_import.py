"""Shopify and WooCommerce exports through import_catalog_csv (a real MCP client) on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from mcp import Client

from mcp_checkout.service.container import Services
from tests.support import tool_data as data
from tests.unit.test_catalog_exports import IMG, SHOPIFY_HEADER, SHOPIFY_ROWS, TEE_BODY, WOO_HEADER, WOO_ROWS, export


async def test_exports_import_as_they_are_and_a_second_import_changes_nothing(server: Any, seeded: Services) -> None:
    shopify, woo = export(SHOPIFY_HEADER, SHOPIFY_ROWS), export(WOO_HEADER, WOO_ROWS)
    async with Client(server) as client:
        first = data(await client.call_tool("import_catalog_csv", {"csv_text": shopify}))
        assert (first["created"], first["updated"], first["skipped"]) == (4, 0, 0)
        hits = data(await client.call_tool("search_catalog", {"query": "organic cotton tee"}))
        assert {item["sku"] for item in hits["items"]} == {"TEE-S-BLU", "TEE-M-BLU", "classic-tee-l-red"}
        tee = data(await client.call_tool("get_product", {"sku": "TEE-M-BLU"}))
        assert tee["name"] == "Classic Tee" and tee["category"] == "T-Shirts"
        assert tee["description"].startswith("Soft organic cotton & a relaxed fit.")
        assert "<p>" not in tee["description"] and tee["description_html"] == TEE_BODY
        images = {variant["sku"]: variant["image_url"] for variant in tee["variants"]}
        assert images["TEE-S-BLU"] == f"{IMG}/tee-blue.jpg" and images["TEE-M-BLU"] == f"{IMG}/tee-front.jpg"
        assert sorted(variant["title"] for variant in tee["variants"]) == [
            "Classic Tee - L / Red", "Classic Tee - M / Blue", "Classic Tee - S / Blue",
        ]  # fmt: skip
        again = data(await client.call_tool("import_catalog_csv", {"csv_text": shopify}))
        assert (again["created"], again["updated"]) == (0, 4)

        woo_report = data(await client.call_tool("import_catalog_csv", {"csv_text": woo}))
        assert (woo_report["created"], woo_report["skipped"]) == (3, 0)
        hoodie = data(await client.call_tool("get_product", {"sku": "woo-24"}))
        assert hoodie["name"] == "Hoodie" and len(hoodie["variants"]) == 2
        beanie = data(await client.call_tool("get_product", {"sku": "woo-beanie"}))
        assert beanie["variants"][0]["price"]["amount"] == 1800  # the sale price
