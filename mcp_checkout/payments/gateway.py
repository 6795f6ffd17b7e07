"""The payment gateway port: what services need from Stripe (or the offline stand-in)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

IntentStatus = Literal[
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "requires_capture",
    "succeeded",
    "canceled",
]


@dataclass(frozen=True)
class Intent:
    """A PaymentIntent as the gateway reports it."""

    id: str
    status: str
    amount: int
    currency: str  # upper-case ISO-4217
    amount_received: int = 0
    client_secret: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    last_error: str | None = None


@dataclass(frozen=True)
class Confirmation:
    """A PaymentIntent confirmed with a payment method: the intent after it and, when the payment method
    was refused (a decline, an unusable or unknown method), why, in words a platform can show."""

    intent: Intent
    declined: str | None = None


@dataclass(frozen=True)
class Refund:
    id: str
    amount: int
    status: str


@dataclass(frozen=True)
class GatewayEvent:
    """A verified webhook event, reduced to what the services use."""

    id: str
    type: str
    intent: Intent | None = None
    charge_intent_id: str | None = None
    amount_refunded: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


class PaymentGateway(Protocol):
    @property
    def name(self) -> Literal["stripe", "offline"]: ...

    @property
    def publishable_key(self) -> str | None: ...

    async def create_intent(
        self, *, amount: int, currency: str, metadata: Mapping[str, str], idempotency_key: str
    ) -> Intent: ...

    async def retrieve_intent(self, intent_id: str) -> Intent: ...

    async def cancel_intent(self, intent_id: str, *, idempotency_key: str) -> Intent: ...

    async def confirm_intent(
        self, intent_id: str, *, payment_method: str, return_url: str, idempotency_key: str
    ) -> Confirmation: ...

    async def refund(self, intent_id: str, *, amount: int, idempotency_key: str, reason: str | None) -> Refund: ...

    def verify_webhook(self, payload: bytes, signature: str | None) -> GatewayEvent: ...
