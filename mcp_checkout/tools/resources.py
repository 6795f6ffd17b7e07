"""Resources: products by SKU and orders by id, as JSON documents. Errors are raised as CheckoutErrors:
the server maps them once (tools/gate.py; a missing or someone else's order is resource-not-found)."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context

from mcp_checkout.tools.context import principal, services


def register(server: MCPServer[Any]) -> None:
    @server.resource("catalog://products/{sku}", name="product", mime_type="application/json")
    async def product_by_sku(sku: str, ctx: Context[Any]) -> str:
        """A product (with all its variants, prices and availability) found by one of its SKUs."""
        product = await services(ctx).catalog.get_product(sku=sku)
        return product.model_dump_json()

    @server.resource("orders://{order_id}", name="order", mime_type="application/json")
    async def order_by_id(order_id: str, ctx: Context[Any]) -> str:
        """An order with its lines, totals and status history."""
        order = await services(ctx).orders.get(principal(ctx), order_id)  # buyers: their own only (policy)
        return order.model_dump_json()
