"""Payment tools: the direct Stripe handoff, reconciliation and refunds."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import Field

from mcp_checkout.service.idempotency import sent_fields
from mcp_checkout.service.payments import MarkOrderPaid
from mcp_checkout.service.refunds import RefundOrder
from mcp_checkout.service.views import OrderOut, PaymentHandoff, RefundOut, SyncOut
from mcp_checkout.tools.annotations import CREATES_IDEMPOTENT, OVERWRITES
from mcp_checkout.tools.context import principal, raw_arguments, services
from mcp_checkout.tools.types import IdempotencyKey, OrderId, Reason, RefundAmount

PaymentReference = Annotated[str, Field(min_length=1, max_length=200, description="e.g. the bank transfer's id.")]


def register(server: MCPServer[Any]) -> None:
    @server.tool(title="Create a payment intent", annotations=CREATES_IDEMPOTENT)
    async def create_payment_intent(ctx: Context[Any], order_id: OrderId) -> PaymentHandoff:
        """Hand an unpaid order to Stripe for a client with its own payment UI.

        Returns client_secret and publishable_key; safe to repeat (one live PaymentIntent per order). Most
        agents should use create_checkout_link. Errors: `invalid_state`, `payment_gateway_error` (retry).
        """
        return await services(ctx).payments.handoff(principal(ctx), order_id)

    @server.tool(title="Sync payment state", annotations=CREATES_IDEMPOTENT)
    async def sync_payment(ctx: Context[Any], order_id: OrderId) -> SyncOut:
        """Fetch the order's payment state from the gateway and apply it (e.g. mark it paid).

        For when a payment was expected but get_order says pending_payment. Safe to repeat.
        `payment_not_started`: nobody tried to pay yet (share a checkout link).
        """
        return await services(ctx).payments.sync(principal(ctx), order_id)

    @server.tool(title="Refund an order (merchant)", annotations=OVERWRITES)
    async def refund_order(
        ctx: Context[Any],
        order_id: OrderId,
        idempotency_key: IdempotencyKey,
        amount: RefundAmount | None = None,
        reason: Reason | None = None,
    ) -> RefundOut:
        """Refund a paid order in full (omit amount) or in part (minor units).

        Retry with the same idempotency_key (`replayed: true`); never more than was paid. Errors:
        `refund_too_large` (the message says what is refundable), `invalid_state` (nothing captured),
        `idempotency_conflict` (a new refund needs a new key).
        """
        command = RefundOrder(order_id, idempotency_key, amount, reason, sent=sent_fields(raw_arguments(ctx)))
        return await services(ctx).refunds.refund(principal(ctx), command)

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
