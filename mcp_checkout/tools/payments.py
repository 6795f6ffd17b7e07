"""Payment tools: the direct Stripe handoff, reconciliation and refunds."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import Field

from mcp_checkout.service.idempotency import sent_fields
from mcp_checkout.service.payments import MarkOrderPaid, RefundOrder
from mcp_checkout.service.views import OrderOut, PaymentHandoff, RefundOut, SyncOut
from mcp_checkout.tools.annotations import CREATES_IDEMPOTENT, OVERWRITES
from mcp_checkout.tools.context import principal, raw_arguments, services
from mcp_checkout.tools.types import IdempotencyKey, OrderId, Reason, RefundAmount

PaymentReference = Annotated[str, Field(min_length=1, max_length=200, description="e.g. the bank transfer's id.")]


def register(server: MCPServer[Any]) -> None:
    @server.tool(title="Create a payment intent", annotations=CREATES_IDEMPOTENT)
    async def create_payment_intent(ctx: Context[Any], order_id: OrderId) -> PaymentHandoff:
        """Hand an unpaid order to Stripe for a client that renders its own payment UI.

        Returns the PaymentIntent's `client_secret` and the `publishable_key` for Stripe.js. Safe to
        call again: an order has at most one live PaymentIntent, and the amount always comes from
        the order. Most agents should prefer create_checkout_link, which hosts the payment page.
        Errors: `invalid_state` (order not pending_payment), `payment_gateway_error` (retry).
        """
        return await services(ctx).payments.handoff(principal(ctx), order_id)

    @server.tool(title="Sync payment state", annotations=CREATES_IDEMPOTENT)
    async def sync_payment(ctx: Context[Any], order_id: OrderId) -> SyncOut:
        """Ask the payment gateway for the order's payment state and apply it (e.g. mark it paid) —
        for when you expected a payment but get_order still says pending_payment. Safe to repeat.
        `payment_not_started`: no payment was attempted yet (share a checkout link)."""
        return await services(ctx).payments.sync(principal(ctx), order_id)

    @server.tool(title="Refund an order (merchant)", annotations=OVERWRITES)
    async def refund_order(
        ctx: Context[Any],
        order_id: OrderId,
        idempotency_key: IdempotencyKey,
        amount: RefundAmount | None = None,
        reason: Reason | None = None,
    ) -> RefundOut:
        """Refund a paid order in full (omit amount) or in part (amount in minor units). Merchant only.

        Reuse the same idempotency_key to retry the same refund (`replayed: true`); never more than
        was paid is refunded. A full refund moves the order to `refunded`. Errors: `refund_too_large`
        (the message says how much is refundable), `invalid_state` (nothing captured to refund),
        `idempotency_conflict` (that key was used for a different refund: a new refund needs a new key).
        """
        command = RefundOrder(order_id, idempotency_key, amount, reason, sent=sent_fields(raw_arguments(ctx)))
        return await services(ctx).payments.refund(principal(ctx), command)

    @server.tool(title="Mark an order paid outside the gateway (merchant)", annotations=CREATES_IDEMPOTENT)
    async def mark_order_paid(
        ctx: Context[Any],
        order_id: OrderId,
        idempotency_key: IdempotencyKey,
        method: Literal["bank_transfer", "cash", "other"],
        reference: PaymentReference,
    ) -> OrderOut:
        """Record money taken outside the gateway: the order becomes paid (stock sold, order.paid sent) and
        its open card payment is canceled. Merchant only. Same key again: `replayed: true`.
        Errors: `invalid_state` (not pending_payment).
        """
        command = MarkOrderPaid(order_id, idempotency_key, method, reference, sent=sent_fields(raw_arguments(ctx)))
        return await services(ctx).payments.mark_paid(principal(ctx), command)
