"""Paying an order with a payment method a caller sends (a UCP platform's Stripe PaymentMethod at
``complete_checkout``) instead of the buyer on the checkout page.

The charge is the order's own live PaymentIntent (:meth:`PaymentService.ensure_intent`: amount and currency
from the order row, one live intent per order), confirmed with the gateway idempotency key of the caller's
request (:func:`confirm_key`): a retried request confirms once; a new request (say, after a decline) may
confirm the same intent again with another payment method. The gateway's answer is applied like any other
(:meth:`PaymentService.apply_intent`): ``succeeded`` pays the order, a decline leaves it awaiting payment,
``requires_action`` (3-D Secure) waits for the buyer, who finishes on the checkout page.
"""

from __future__ import annotations

from mcp_checkout.domain import Actor
from mcp_checkout.payments.gateway import Confirmation
from mcp_checkout.service.idempotency import confirm_key
from mcp_checkout.service.payments import PaymentService

# Intent states in which the money is already on its way: nothing to confirm.
_UNDER_WAY = frozenset({"processing", "requires_capture", "succeeded"})


async def pay_with_method(
    payments: PaymentService, order_id: str, *, payment_method: str, request_key: str, return_url: str
) -> Confirmation:
    """Confirm the order's live intent with ``payment_method``, once per ``request_key``; returns the gateway's
    answer after applying it to the order."""
    intent, attempt = await payments.ensure_intent(order_id)
    if intent.status in _UNDER_WAY:
        done = Confirmation(intent)
    else:
        done = await payments.gateway.confirm_intent(
            intent.id,
            payment_method=payment_method,
            return_url=return_url,
            idempotency_key=confirm_key(order_id, attempt, request_key),
        )
    await payments.apply_intent(done.intent, actor=Actor.AGENT, source="payment method sent at completion")
    return done
