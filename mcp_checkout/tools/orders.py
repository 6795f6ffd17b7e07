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
    Carrier,
    CartId,
    Email,
    Flag,
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
    ) -> OrderOut:
        """Turn a cart (cart_id) or a list of items into an order, exactly once, and reserve its stock.

        idempotency_key: make one up for THIS order (e.g. a UUID) and keep it. If the call times
        out or fails with a retryable error, retry with the SAME key and the SAME arguments: you get
        the same order back with `replayed: true`, never a second order. Do NOT invent a new key
        for a retry - a new key means a new order (a cart still becomes at most one order).
        Pass exactly one of cart_id or items (≤100 lines of {sku, quantity}).
        Returns the order: `order_id`, human `number` (MC-…), status `pending_payment`, lines and
        totals computed by the server from catalog prices, and `expires_at` (unpaid orders expire
        and release their stock).
        Errors: `insufficient_stock` (lower the quantity with update_cart_item), `cart_empty`,
        `idempotency_conflict` (that key was used for a different order: use a new key only if this
        really is a new order), `idempotency_in_flight` (the same call is still running: wait and
        retry with the same key), `cart_already_ordered` (the cart is already order X: get_order).
        """
        command = CreateOrder(
            idempotency_key=idempotency_key,
            cart_id=cart_id,
            items=[(line.sku, line.quantity) for line in items] if items is not None else None,
            email=email.strip().lower() if email else None,
            merchant_reference_id=merchant_reference_id,
            shipping_address=shipping_address.model_dump() if shipping_address else None,
            sent=sent_fields(raw_arguments(ctx)),
        )
        return await services(ctx).orders.create(principal(ctx), command)

    @server.tool(title="Get an order", annotations=READ_ONLY)
    async def get_order(ctx: Context[Any], order_id: OrderId) -> OrderOut:
        """Get an order's current status, lines, totals and full status history (who changed what, when).

        Status: pending_payment, paid, partially_fulfilled, fulfilled, canceled, expired or refunded;
        `fulfillments` lists shipments with tracking.
        `order_not_found`: check the id, or find it by reference with lookup_orders.
        """
        return await services(ctx).orders.get(principal(ctx), order_id)

    @server.tool(title="Find orders by reference", annotations=READ_ONLY)
    async def lookup_orders(
        ctx: Context[Any], merchant_reference_id: MerchantReference, allow_missing: Flag = False
    ) -> OrderLookup:
        """Find orders by the merchant_reference_id given to create_order, latest first (at most 20).

        Use it to check whether an order for a purchase already exists before creating one, or to
        follow up later. With allow_missing=true a miss answers status "not_found" instead of the
        error `order_not_found`.
        """
        return await services(ctx).orders.lookup(principal(ctx), merchant_reference_id, allow_missing=allow_missing)

    @server.tool(title="Cancel an order", annotations=OVERWRITES)
    async def cancel_order(ctx: Context[Any], order_id: OrderId, reason: Reason | None = None) -> OrderOut:
        """Cancel an unpaid order and put its reserved stock back on sale. Safe to retry.

        The merchant may also cancel a paid order that has not shipped: it is refunded in full and
        restocked. Canceling a canceled order returns it unchanged. `invalid_state`: the order is
        shipped, expired or refunded, or paid and you are not the merchant (the message says which).
        """
        return await services(ctx).orders.cancel(principal(ctx), order_id, reason)

    @server.tool(title="Wait for an order's outcome", annotations=READ_ONLY)
    async def wait_for_order(
        ctx: Context[Any],
        order_id: OrderId,
        statuses: OrderStatuses | None = None,
        timeout_seconds: WaitSeconds = 30,
    ) -> OrderWaitOut:
        """Wait until an order reaches one of `statuses` (e.g. the buyer paid), then return the order.

        Use it after handing the buyer a checkout link, instead of calling get_order over and over.
        statuses: what to wait for; default: any status but pending_payment (e.g. ["fulfilled"] for shipped).
        Returns as soon as the order is in one of them (`reached: true`), or when it can no longer get
        there (e.g. waiting for paid but it was canceled: `reached: false` at once), or after
        timeout_seconds (1-60, default 30) with `reached: false` and the order as it is now.
        `message` says what to do next. When `reached` is false and the order is still pending_payment
        the buyer has not paid yet: call wait_for_order again to keep waiting, or tell the user.
        Errors: `order_not_found` (check the id; you only see orders you created).
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
        """Record a shipment of a paid order, with tracking. Merchant only.

        lines: what ships now (omit: everything not shipped yet). Partial shipments make the order
        partially_fulfilled; the last one fulfilled. Retry with the same key: `replayed: true`.
        Errors: `invalid_state` (not paid), `invalid_input` (more than is left to ship).
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
