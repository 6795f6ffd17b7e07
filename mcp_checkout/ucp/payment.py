"""Payment instruments sent with ``complete_checkout``, charged where a declared handler takes one inline.

- ``offline_test`` (offline test mode): token ``success_token`` pays, ``decline_token`` is declined.
- ``stripe`` (Stripe configured): the token is a Stripe PaymentMethod id (``pm_…``); the order's PaymentIntent
  (the order's total, from the database) is confirmed with it once per Idempotency-Key
  (``service.inline_payment``). A decline is ``payment_failed`` (recoverable: send another instrument under a
  new key); a payment that needs the buyer (3-D Secure) is ``requires_buyer_input``: the checkout is
  ``requires_escalation`` and the buyer finishes on the page at ``continue_url``.

Each answer is a list of UCP messages (empty: nothing to say, the order is paid or waits for the buyer).
"""

from __future__ import annotations

from typing import Any

from ucp_sdk.models.schemas.shopping.checkout_complete_request import CheckoutCompleteRequest

from mcp_checkout.domain import Principal
from mcp_checkout.errors import InvalidState
from mcp_checkout.service.checkout_links import token_from
from mcp_checkout.service.container import Services
from mcp_checkout.service.inline_payment import pay_with_method
from mcp_checkout.ucp import spec

Message = dict[str, Any]
STRIPE_MODES = frozenset({"stripe_test", "stripe_live"})


def _failed(content: str, path: str, *, code: str = "payment_failed", severity: str = "recoverable") -> Message:
    return {"type": "error", "code": code, "content": content, "severity": severity, "path": path}


async def pay(
    services: Services,
    principal: Principal,
    request: CheckoutCompleteRequest,
    *,
    order_id: str,
    continue_url: str | None,
    idempotency_key: str,
) -> list[Message]:
    """Charge the first instrument of the request through its handler (none sent: nothing to do)."""
    mode = services.settings.payment_mode
    for index, instrument in enumerate(request.payment.instruments or []):
        path = f"$.payment.instruments[{index}]"
        token = getattr(instrument.credential, "token", None) if instrument.credential is not None else None
        try:
            if mode == "offline" and instrument.handler_id == spec.OFFLINE_HANDLER_ID:
                return await _offline(services, token, continue_url, path)
            if mode in STRIPE_MODES and instrument.handler_id == spec.STRIPE_HANDLER_ID:
                return await _stripe(services, principal, token, order_id, continue_url, idempotency_key, path)
        except InvalidState:  # paid (or canceled) meanwhile by a concurrent call: the caller answers its state
            return []
        return [_failed(f"No payment handler {instrument.handler_id!r} here.", f"{path}.handler_id")]
    return []


async def _offline(services: Services, token: Any, continue_url: str | None, path: str) -> list[Message]:
    link_token = token_from(continue_url) if continue_url else None
    if token == spec.SUCCESS_TOKEN and link_token is not None:
        await services.checkout.pay_offline(link_token)
        return []
    if token == spec.DECLINE_TOKEN:
        return [_failed("The payment was declined (test token decline_token).", f"{path}.credential")]
    return [_failed("Unknown test token: send success_token or decline_token.", f"{path}.credential")]


async def _stripe(
    services: Services,
    principal: Principal,
    token: Any,
    order_id: str,
    continue_url: str | None,
    idempotency_key: str,
    path: str,
) -> list[Message]:
    if not isinstance(token, str) or not token.startswith("pm_") or len(token) > 255:
        return [_failed("Send a Stripe PaymentMethod id (pm_…) as the credential's token.", f"{path}.credential")]
    base = continue_url or services.settings.resolved_public_base_url()
    done = await pay_with_method(
        services.payments,
        order_id,
        payment_method=token,
        request_key=f"{principal.id}\n{idempotency_key}",
        return_url=f"{base}/return" if continue_url else base,
    )
    if done.declined is not None:
        retry = "Send another payment method under a new Idempotency-Key."
        return [_failed(f"{done.declined} {retry}", f"{path}.credential")]
    if done.intent.status == "requires_action":
        return [
            _failed(
                "The card needs the buyer's own confirmation (3-D Secure): hand the buyer to continue_url to finish "
                "paying.",
                path,
                code="requires_buyer_authentication",
                severity="requires_buyer_input",
            )
        ]
    return []
