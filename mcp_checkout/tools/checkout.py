"""Checkout-link tools: get a human buyer to a payment page."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context

from mcp_checkout.service.checkout import CreateLink
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
        """Mint a single-use checkout URL for the human buyer to pay in a browser. Send them `url`.

        Either for an existing unpaid order (order_id), or straight from one SKU (sku + quantity:
        creates the order and its link together). Pass an idempotency_key and reuse it on retries:
        the same key and arguments give back the same link and URL (`replayed: true`), never a second
        one. An order has ONE live link: `link_exists` means it has one already — send that, or call
        regenerate_checkout_link for a new URL. `email` locks the link to that buyer's email (the lock
        stays on the order's later links); `merchant_reference_id` lets you find the order later with
        lookup_orders. The link stops working once paid (410), when it expires, or when regenerated.
        Errors: `invalid_state` (the order is not pending_payment), `insufficient_stock`,
        `idempotency_conflict` (that key was used for a different request).
        """
        command = CreateLink(
            order_id=order_id, sku=sku, quantity=quantity, idempotency_key=idempotency_key, email=email,
            merchant_reference_id=merchant_reference_id, success_url=success_url, cancel_url=cancel_url,
            ttl_minutes=ttl_minutes, sent=sent_fields(raw_arguments(ctx)),
        )  # fmt: skip
        return await services(ctx).checkout.create_link(principal(ctx), command)

    @server.tool(title="Regenerate a checkout link", annotations=CREATES)
    async def regenerate_checkout_link(
        ctx: Context[Any], link_id: LinkId | None = None, url: HttpUrl | None = None
    ) -> LinkOut:
        """Replace a checkout link with a new URL for the same order (the old URL then answers 410
        link_revoked). Use it when the buyer lost the link, it expired, or a retry lost the URL.
        An open buyer session and its payment carry over. Pass link_id or the old url.
        `invalid_state`: the order is already paid, canceled or expired — create a new order instead.
        """
        return await services(ctx).checkout.regenerate(principal(ctx), link_id, url)

    @server.tool(title="Get a checkout link", annotations=READ_ONLY)
    async def get_checkout_link(ctx: Context[Any], link_id: LinkId) -> LinkOut:
        """A checkout link's state: active (not opened yet), in_session (the buyer opened it),
        consumed (paid), expired or revoked; and its buyer session's state. The URL is not shown again."""
        return await services(ctx).checkout.get_link(principal(ctx), link_id)
