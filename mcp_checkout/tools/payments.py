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
        """For a client with its own payment UI (else create_checkout_link): a Stripe client_secret and
        publishable_key for an unpaid order; safe to repeat. `payment_gateway_error`: retry.
        """
        return await services(ctx).payments.handoff(principal(ctx), order_id)

    @server.tool(title="Sync payment state", annotations=CREATES_IDEMPOTENT)
    async def sync_payment(ctx: Context[Any], order_id: OrderId) -> SyncOut:
        """Fetch the order's payment state from the gateway and apply it, when a payment was expected but
        get_order says pending_payment. Safe to repeat. `payment_not_started`: share a checkout link.
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
        """Refund a paid order in full (omit amount) or in part.

        Retry with the same key (`replayed: true`); a new refund needs a new one. Errors: `refund_too_large`
        (says what is left), `invalid_state` (nothing captured).
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
        """Record money taken outside the gateway: the order becomes paid (stock sold, order.paid sent), its
        card payment canceled. Same key again: `replayed: true`. `invalid_state`: not pending_payment.
        """
        command = MarkOrderPaid(order_id, idempotency_key, method, reference, sent=sent_fields(raw_arguments(ctx)))
        return await services(ctx).payments.mark_paid(principal(ctx), command)
