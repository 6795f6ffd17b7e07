"""Cart tools."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context

from mcp_checkout.service.carts import CartDetails
from mcp_checkout.service.idempotency import sent_fields
from mcp_checkout.service.views import CartOut
from mcp_checkout.tools.annotations import CREATES, OVERWRITES, READ_ONLY
from mcp_checkout.tools.context import principal, raw_arguments, services
from mcp_checkout.tools.types import (
    Buyer,
    CartId,
    Currency,
    DiscountCodes,
    FulfillmentOptionId,
    Quantity,
    ShippingAddress,
    Sku,
)


def register(server: MCPServer[Any]) -> None:
    @server.tool(title="Create a cart", annotations=CREATES)
    async def create_cart(ctx: Context[Any], currency: Currency | None = None) -> CartOut:
        """Start an empty cart for one purchase; returns `cart_id` for add_to_cart.

        Its SKUs must be priced in its currency (default: the store's).
        """
        return await services(ctx).carts.create(principal(ctx), currency)

    @server.tool(title="Add to cart", annotations=CREATES)
    async def add_to_cart(ctx: Context[Any], cart_id: CartId, sku: Sku, quantity: Quantity = 1) -> CartOut:
        """Add quantity of a SKU ON TOP of what the cart holds; returns the cart.

        Not idempotent: retry with update_cart_item. Errors: `insufficient_stock` (says how many are left),
        `sku_not_found`, `currency_mismatch`, `cart_not_open` (ordered: use a new cart).
        """
        return await services(ctx).carts.add(principal(ctx), cart_id, sku, quantity)

    @server.tool(title="Set a cart line's quantity", annotations=OVERWRITES)
    async def update_cart_item(ctx: Context[Any], cart_id: CartId, sku: Sku, quantity: Quantity) -> CartOut:
        """Set a cart line to exactly quantity units (adding it if missing); returns the cart.

        Safe to retry. Errors as add_to_cart.
        """
        return await services(ctx).carts.set_quantity(principal(ctx), cart_id, sku, quantity)

    @server.tool(title="Remove from cart", annotations=OVERWRITES)
    async def remove_from_cart(ctx: Context[Any], cart_id: CartId, sku: Sku) -> CartOut:
        """Remove a SKU's line from the cart; returns the cart. A SKU not in the cart is a no-op."""
        return await services(ctx).carts.remove(principal(ctx), cart_id, sku)

    @server.tool(title="Set a cart's buyer, address, shipping, codes", annotations=OVERWRITES)
    async def update_cart(
        ctx: Context[Any],
        cart_id: CartId,
        buyer: Buyer | None = None,
        shipping_address: ShippingAddress | None = None,
        fulfillment_option_id: FulfillmentOptionId | None = None,
        discount_codes: DiscountCodes | None = None,
    ) -> CartOut:
        """Set the cart's buyer, shipping address, shipping option and discount codes; returns the priced cart.

        A field sent replaces its value (null clears it), one left out stays; safe to retry. Pick
        fulfillment_option_id from `fulfillment_options`. `messages`: what is missing or wrong.
        A shipping_address of country alone (+ region, postal_code) quotes options and tax; ordering needs it all.
        """
        details = CartDetails(
            buyer=buyer.model_dump() if buyer else None,
            shipping_address=shipping_address.model_dump() if shipping_address else None,
            fulfillment_option_id=fulfillment_option_id,
            discount_codes=discount_codes,
            sent=sent_fields(raw_arguments(ctx)),
        )
        return await services(ctx).carts.update(principal(ctx), cart_id, details)

    @server.tool(title="Get a cart", annotations=READ_ONLY)
    async def get_cart(ctx: Context[Any], cart_id: CartId) -> CartOut:
        """A cart's lines, current prices, availability and totals.

        A line with `available` below `quantity` would fail create_order.
        """
        return await services(ctx).carts.get(principal(ctx), cart_id)
