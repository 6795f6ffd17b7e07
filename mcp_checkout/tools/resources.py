"""Resources: products by SKU and orders by id, as JSON documents."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError

from mcp_checkout.errors import CheckoutError
from mcp_checkout.tools.context import principal, services


def register(server: MCPServer[Any]) -> None:
    @server.resource("catalog://products/{sku}", name="product", mime_type="application/json")
    async def product_by_sku(sku: str, ctx: Context[Any]) -> str:
        """A product (with all its variants, prices and availability) found by one of its SKUs."""
        try:
            product = await services(ctx).catalog.get_product(sku=sku)
        except CheckoutError as exc:
            raise ResourceError(f"[{exc.code}] {exc.message}") from None
        return product.model_dump_json()

    @server.resource("orders://{order_id}", name="order", mime_type="application/json")
    async def order_by_id(order_id: str, ctx: Context[Any]) -> str:
        """An order with its lines, totals and status history."""
        try:
            order = await services(ctx).orders.get(principal(ctx), order_id)
        except CheckoutError as exc:
            raise ResourceError(f"[{exc.code}] {exc.message}") from None
        return order.model_dump_json()
