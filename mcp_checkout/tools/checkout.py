"""Checkout-link tools: get a human buyer to a payment page."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context

from mcp_checkout.service.checkout_links import CreateLink
from mcp_checkout.service.idempotency import sent_fields
from mcp_checkout.service.views import LinkOut
from mcp_checkout.tools.annotations import CREATES, READ_ONLY
from mcp_checkout.tools.context import principal, raw_arguments, services
from mcp_checkout.tools.types import (
    Email,
    HttpUrl,
    IdempotencyKey,
    LinkId,
    MerchantReference,
    OrderId,
    Quantity,
    Sku,
    TtlMinutes,
)


def register(server: MCPServer[Any]) -> None:
    @server.tool(title="Create a checkout link", annotations=CREATES)
    async def create_checkout_link(
        ctx: Context[Any],
        order_id: OrderId | None = None,
        sku: Sku | None = None,
        quantity: Quantity | None = None,
        idempotency_key: IdempotencyKey | None = None,
        email: Email | None = None,
        merchant_reference_id: MerchantReference | None = None,
        success_url: HttpUrl | None = None,
        cancel_url: HttpUrl | None = None,
        ttl_minutes: TtlMinutes | None = None,
    ) -> LinkOut:
        """A single-use URL where the buyer pays in a browser: send them `url`.

        For an unpaid order (order_id) or one SKU (sku + quantity; creates the order). Same key and
        arguments: same link (`replayed: true`). email locks it to that buyer. `link_exists`: send the live
        link or regenerate_checkout_link.
        """
        command = CreateLink(
            order_id=order_id, sku=sku, quantity=quantity, idempotency_key=idempotency_key, email=email,
            merchant_reference_id=merchant_reference_id, success_url=success_url, cancel_url=cancel_url,
            ttl_minutes=ttl_minutes, sent=sent_fields(raw_arguments(ctx)),
        )  # fmt: skip
        return await services(ctx).links.create_link(principal(ctx), command)

    @server.tool(title="Regenerate a checkout link", annotations=CREATES)
    async def regenerate_checkout_link(
        ctx: Context[Any], link_id: LinkId | None = None, url: HttpUrl | None = None
    ) -> LinkOut:
        """A new URL for a link's order (link_id or old url) when the buyer lost it or it expired; the old one
        stops working. `invalid_state`: the order is paid, canceled or expired.
        """
        return await services(ctx).links.regenerate(principal(ctx), link_id, url)

    @server.tool(title="Get a checkout link", annotations=READ_ONLY)
    async def get_checkout_link(ctx: Context[Any], link_id: LinkId) -> LinkOut:
        """A checkout link's state and its buyer session's; the URL is not shown again."""
        return await services(ctx).links.get_link(principal(ctx), link_id)
