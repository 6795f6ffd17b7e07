"""Order tools."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context

from mcp_checkout.domain import OrderStatus
from mcp_checkout.service.fulfillment import FulfillOrder
from mcp_checkout.service.idempotency import sent_fields
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.service.views import OrderLookup, OrderOut, OrderWaitOut
from mcp_checkout.tools.annotations import CREATES_IDEMPOTENT, OVERWRITES, READ_ONLY
from mcp_checkout.tools.context import principal, raw_arguments, services
from mcp_checkout.tools.types import (
    Buyer,
    Carrier,
    CartId,
    DiscountCodes,
    Email,
    Flag,
    FulfillmentOptionId,
    HttpUrl,
    IdempotencyKey,
    MerchantReference,
    OrderId,
    OrderLines,
    OrderStatuses,
    Reason,
    ShipLines,
    ShippingAddress,
    TrackingNumber,
    WaitSeconds,
)

OUTCOMES = [status for status in OrderStatus if status is not OrderStatus.PENDING_PAYMENT]


def register(server: MCPServer[Any]) -> None:
    @server.tool(title="Create an order (exactly once)", annotations=CREATES_IDEMPOTENT)
    async def create_order(
        ctx: Context[Any],
        idempotency_key: IdempotencyKey,
        cart_id: CartId | None = None,
        items: OrderLines | None = None,
        email: Email | None = None,
        merchant_reference_id: MerchantReference | None = None,
        shipping_address: ShippingAddress | None = None,
        buyer: Buyer | None = None,
        fulfillment_option_id: FulfillmentOptionId | None = None,
        discount_codes: DiscountCodes | None = None,
    ) -> OrderOut:
        """Turn a cart (cart_id) or items into an order exactly once, reserving stock; returns it
        (pending_payment, totals, expires_at).

        A cart's buyer, address, option and codes apply (arguments win). Lacking address or option it is
        placed with `ready: false`: the buyer completes it on the checkout page. After a timeout or error,
        retry with the SAME key and arguments: same order, `replayed: true`. Errors: `insufficient_stock`,
        `cart_empty`, `cart_already_ordered` (get_order it), `idempotency_conflict` (key used for another
        order), `discount_*` (drop the code).
        """
        command = CreateOrder(
            idempotency_key=idempotency_key,
            cart_id=cart_id,
            items=[(line.sku, line.quantity) for line in items] if items is not None else None,
            email=email.strip().lower() if email else None,
            merchant_reference_id=merchant_reference_id,
            shipping_address=shipping_address.model_dump() if shipping_address else None,
            buyer=buyer.model_dump() if buyer else None,
            fulfillment_option_id=fulfillment_option_id,
            discount_codes=list(discount_codes) if discount_codes is not None else None,
            sent=sent_fields(raw_arguments(ctx)),
        )
        return await services(ctx).orders.create(principal(ctx), command)

    @server.tool(title="Get an order", annotations=READ_ONLY)
    async def get_order(ctx: Context[Any], order_id: OrderId) -> OrderOut:
        """An order's status, lines, totals, history and `fulfillments` (shipments, tracking).

        `order_not_found`: check the id or use lookup_orders.
        """
        return await services(ctx).orders.get(principal(ctx), order_id)

    @server.tool(title="Find orders by reference", annotations=READ_ONLY)
    async def lookup_orders(
        ctx: Context[Any], merchant_reference_id: MerchantReference, allow_missing: Flag = False
    ) -> OrderLookup:
        """Orders with this merchant_reference_id, latest first (at most 20): check before creating one that
        may exist. allow_missing=true: status "not_found" instead of the error `order_not_found`.
        """
        return await services(ctx).orders.lookup(principal(ctx), merchant_reference_id, allow_missing=allow_missing)

    @server.tool(title="Cancel an order", annotations=OVERWRITES)
    async def cancel_order(ctx: Context[Any], order_id: OrderId, reason: Reason | None = None) -> OrderOut:
        """Cancel an unpaid order and release its stock; safe to retry.

        A merchant may also cancel a paid, unshipped one (full refund, restock). `invalid_state`: shipped,
        expired or refunded, or paid and you are not the merchant.
        """
        return await services(ctx).orders.cancel(principal(ctx), order_id, reason)

    @server.tool(title="Wait for an order's outcome", annotations=READ_ONLY)
    async def wait_for_order(
        ctx: Context[Any],
        order_id: OrderId,
        statuses: OrderStatuses | None = None,
        timeout_seconds: WaitSeconds = 30,
    ) -> OrderWaitOut:
        """Wait until an order reaches one of statuses (default: any outcome) instead of polling get_order,
        e.g. after sending a checkout link.

        Returns when `reached`, when it no longer can be (`reached` false) or at timeout_seconds. Still
        pending_payment: the buyer has not paid; call wait_for_order again or tell the user.
        """
        wanted = list(dict.fromkeys(statuses)) if statuses else OUTCOMES

        async def progress(waited: float, total: float, status: str) -> None:
            await ctx.report_progress(waited, total, f"order is {status}; waiting")

        return await services(ctx).order_watch.wait_for(
            principal(ctx), order_id, wanted, timeout_seconds, progress=progress
        )

    @server.tool(title="Ship an order (merchant)", annotations=CREATES_IDEMPOTENT)
    async def fulfill_order(
        ctx: Context[Any],
        order_id: OrderId,
        idempotency_key: IdempotencyKey,
        lines: ShipLines | None = None,
        carrier: Carrier | None = None,
        tracking_number: TrackingNumber | None = None,
        tracking_url: HttpUrl | None = None,
    ) -> OrderOut:
        """Record a shipment of a paid order, with tracking; partially_fulfilled until all has shipped.

        lines: what ships now (omit: all that is left). Same key again: `replayed: true`. `invalid_state`:
        not paid.
        """
        command = FulfillOrder(
            order_id=order_id,
            idempotency_key=idempotency_key,
            lines=[(line.sku, line.quantity) for line in lines] if lines is not None else None,
            carrier=carrier,
            tracking_number=tracking_number,
            tracking_url=tracking_url,
            sent=sent_fields(raw_arguments(ctx)),
        )
        return await services(ctx).fulfillment.fulfill(principal(ctx), command)
