"""StripeGateway: the official stripe SDK, async over HTTPX, with retries and idempotency keys."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Literal

import stripe

from mcp_checkout.errors import PaymentGatewayError, WebhookRejected
from mcp_checkout.payments.gateway import Confirmation, GatewayEvent, Intent, Refund

log = logging.getLogger(__name__)


def _intent(data: Mapping[str, Any]) -> Intent:
    error = data.get("last_payment_error") or {}
    return Intent(
        id=str(data["id"]),
        status=str(data.get("status", "")),
        amount=int(data.get("amount", 0)),
        currency=str(data.get("currency", "")).upper(),
        amount_received=int(data.get("amount_received") or 0),
        client_secret=data.get("client_secret"),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
        last_error=str(error.get("message"))[:300] if isinstance(error, Mapping) and error.get("message") else None,
    )


def _failure(action: str, exc: stripe.StripeError) -> PaymentGatewayError:
    # The SDK's messages never contain the secret key, but keep logs to the type and request id.
    log.warning("stripe %s failed: %s (request %s)", action, type(exc).__name__, getattr(exc, "request_id", None))
    return PaymentGatewayError(
        f"The payment provider did not answer the {action} request ({type(exc).__name__}). Nothing was charged "
        "twice: retry the same call in a few seconds.",
        retry_after_seconds=3,
    )


class StripeGateway:
    name: Literal["stripe"] = "stripe"

    def __init__(
        self,
        secret_key: str,
        publishable_key: str | None,
        webhook_secret: str | None,
        *,
        api_base: str | None = None,
        max_network_retries: int = 2,
        timeout_seconds: float = 80.0,
    ) -> None:
        stripe.enable_telemetry = False
        self.publishable_key = publishable_key
        self._webhook_secret = webhook_secret
        self._client = stripe.StripeClient(
            secret_key,
            http_client=stripe.HTTPXClient(timeout=timeout_seconds),
            max_network_retries=max_network_retries,
            base_addresses={"api": api_base} if api_base else None,
        )

    async def create_intent(
        self, *, amount: int, currency: str, metadata: Mapping[str, str], idempotency_key: str
    ) -> Intent:
        try:
            created = await self._client.v1.payment_intents.create_async(
                {
                    "amount": amount,
                    "currency": currency.lower(),
                    "metadata": dict(metadata),
                    "automatic_payment_methods": {"enabled": True},
                },
                {"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _failure("create payment", exc) from None
        return _intent(created.to_dict())

    async def retrieve_intent(self, intent_id: str) -> Intent:
        try:
            found = await self._client.v1.payment_intents.retrieve_async(intent_id)
        except stripe.StripeError as exc:
            raise _failure("retrieve payment", exc) from None
        return _intent(found.to_dict())

    async def cancel_intent(self, intent_id: str, *, idempotency_key: str) -> Intent:
        try:
            canceled = await self._client.v1.payment_intents.cancel_async(
                intent_id, options={"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as exc:
            raise _failure("cancel payment", exc) from None
        return _intent(canceled.to_dict())

    async def confirm_intent(
        self, intent_id: str, *, payment_method: str, return_url: str, idempotency_key: str
    ) -> Confirmation:
        """Confirm with a PaymentMethod a platform sent. A decline (402 card_error) or a payment method Stripe
        will not use (400 naming ``payment_method``) is a refusal, with the intent as it now is."""
        try:
            confirmed = await self._client.v1.payment_intents.confirm_async(
                intent_id,
                {"payment_method": payment_method, "return_url": return_url},
                {"idempotency_key": idempotency_key},
            )
        except stripe.CardError as exc:
            body = exc.json_body if isinstance(exc.json_body, Mapping) else {}
            error = body.get("error")
            inside = error.get("payment_intent") if isinstance(error, Mapping) else None
            intent = _intent(inside) if isinstance(inside, Mapping) else await self.retrieve_intent(intent_id)
            return Confirmation(intent, exc.user_message or "The card was declined.")
        except stripe.InvalidRequestError as exc:
            if exc.param != "payment_method" and exc.code != "payment_intent_unexpected_state":
                raise _failure("confirm payment", exc) from None
            intent = await self.retrieve_intent(intent_id)
            if exc.code == "payment_intent_unexpected_state":  # already paid or canceled: the intent says which
                return Confirmation(intent)
            return Confirmation(intent, f"The payment method was not accepted: {exc.user_message or 'unknown'}.")
        except stripe.StripeError as exc:
            raise _failure("confirm payment", exc) from None
        return Confirmation(_intent(confirmed.to_dict()))

    async def refund(self, intent_id: str, *, amount: int, idempotency_key: str, reason: str | None) -> Refund:
        metadata = {"reason": reason[:400]} if reason else {}
        try:
            made = await self._client.v1.refunds.create_async(
                {"payment_intent": intent_id, "amount": amount, "metadata": metadata},
                {"idempotency_key": idempotency_key},
            )
        except stripe.InvalidRequestError as exc:
            raise PaymentGatewayError(
                f"The payment provider refused the refund: {exc.user_message or 'invalid request'}. "
                "Check the amount against get_order.",
            ) from None
        except stripe.StripeError as exc:
            raise _failure("refund", exc) from None
        data = made.to_dict()
        return Refund(id=str(data["id"]), amount=int(data.get("amount", amount)), status=str(data.get("status", "")))

    def verify_webhook(self, payload: bytes, signature: str | None) -> GatewayEvent:
        if not self._webhook_secret:
            raise WebhookRejected("Webhooks are not configured: set MCP_CHECKOUT_STRIPE_WEBHOOK_SECRET.")
        # The SDK's own check on the raw bytes (signature, scheme, timestamp tolerance), then plain JSON:
        # building a StripeObject only to flatten it again was half the cost of a webhook.
        try:
            stripe.WebhookSignature.verify_header(
                payload.decode("utf-8"), signature or "", self._webhook_secret, stripe.Webhook.DEFAULT_TOLERANCE
            )
            data = json.loads(payload)
        except (stripe.SignatureVerificationError, ValueError):
            raise WebhookRejected("Webhook signature verification failed.") from None
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise WebhookRejected("The webhook body is not a Stripe event.")
        obj = (data.get("data") or {}).get("object") or {}
        kind = str(data.get("type", ""))
        if kind.startswith("payment_intent."):
            return GatewayEvent(id=str(data["id"]), type=kind, intent=_intent(obj), raw=data)
        if kind.startswith("charge."):
            return GatewayEvent(
                id=str(data["id"]),
                type=kind,
                charge_intent_id=obj.get("payment_intent"),
                amount_refunded=int(obj.get("amount_refunded") or 0),
                raw=data,
            )
        return GatewayEvent(id=str(data["id"]), type=kind, raw=data)
