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
        """Find products to sell. Use this first when the buyer names what they want.

        Plain words are matched against names, descriptions, SKUs and categories, best matches first;
        the last word also matches as a prefix. Operators and punctuation are ignored, so pass the
        buyer's words as they are. An empty query browses the catalog by title.
        Prices are integer minor units (cents): min_price=2000 means 20.00.
        Each item has a `sku` (pass it to get_product or add_to_cart), its price and `available`
        units. When `next_cursor` is not null, call again with the same arguments plus
        cursor=next_cursor for more. `invalid_cursor`: repeat without cursor.
        """
        return await services(ctx).catalog.search(
            query, category=category, min_price=min_price, max_price=max_price,
            in_stock_only=in_stock_only, limit=limit, cursor=cursor,
        )  # fmt: skip

    @server.tool(title="Get a product", annotations=READ_ONLY)
    async def get_product(ctx: Context[Any], product_id: ProductId | None = None, sku: Sku | None = None) -> ProductOut:
        """Get one product with all its variants (SKUs), prices and current availability.

        Pass exactly one of `product_id` or `sku`, both from search_catalog. Use it to show the
        buyer details or to pick the right variant before add_to_cart.
        `product_not_found` / `sku_not_found`: search again with search_catalog.
        """
        return await services(ctx).catalog.get_product(product_id=product_id, sku=sku)
