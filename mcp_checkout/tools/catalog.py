"""Catalog tools."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context

from mcp_checkout.service.views import ProductOut, SearchResult
from mcp_checkout.tools.annotations import READ_ONLY
from mcp_checkout.tools.context import services
from mcp_checkout.tools.types import Category, Cursor, Flag, MinorUnits, PageSize, ProductId, SearchQuery, Sku


def register(server: MCPServer[Any]) -> None:
    @server.tool(title="Search the catalog", annotations=READ_ONLY)
    async def search_catalog(
        ctx: Context[Any],
        query: SearchQuery = "",
        category: Category | None = None,
        min_price: MinorUnits | None = None,
        max_price: MinorUnits | None = None,
        in_stock_only: Flag = False,
        limit: PageSize = 20,
        cursor: Cursor | None = None,
    ) -> SearchResult:
        """Find products to sell; use it first when the buyer names what they want.

        Pass their words as they are; best first. Items have `sku` (for add_to_cart), price (minor units:
        2000 = 20.00) and `available`. Next page: cursor=next_cursor.
        """
        return await services(ctx).catalog.search(
            query, category=category, min_price=min_price, max_price=max_price,
            in_stock_only=in_stock_only, limit=limit, cursor=cursor,
        )  # fmt: skip

    @server.tool(title="Get a product", annotations=READ_ONLY)
    async def get_product(ctx: Context[Any], product_id: ProductId | None = None, sku: Sku | None = None) -> ProductOut:
        """One product with its variants (SKUs), prices and availability, by product_id or sku.

        `product_not_found` / `sku_not_found`: search again.
        """
        return await services(ctx).catalog.get_product(product_id=product_id, sku=sku)
