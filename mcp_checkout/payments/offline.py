"""OfflineGateway: the embedded default when no Stripe key is configured.

Intents live in the database, so the whole flow (link → page → pay → paid) works on a fresh machine.
The checkout page shows a clearly labelled test-payment button that calls :meth:`simulate_payment`.
The gateway keeps its intents through :class:`OfflineIntentStore`, a port it is given: payments never
import the store.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal, Protocol

from mcp_checkout.domain import Clock
from mcp_checkout.errors import PaymentGatewayError, WebhookRejected
from mcp_checkout.payments.gateway import Confirmation, GatewayEvent, Intent, Refund

IntentRow = Mapping[str, Any]
# Given the stored intent, the columns to change (None: leave it as it is). Runs inside the write
# transaction that reads the row, so a check and its change are atomic.
IntentChange = Callable[[IntentRow], Mapping[str, Any] | None]


class OfflineIntentStore(Protocol):
    async def create_once(self, values: Mapping[str, Any]) -> IntentRow:
        """Insert unless an intent with ``values["idempotency_key"]`` exists; return the stored one."""
        ...

    async def get(self, intent_id: str) -> IntentRow | None: ...

    async def change(self, intent_id: str, now: datetime, decide: IntentChange) -> IntentRow | None:
        """Apply ``decide`` to the stored intent atomically; None when there is no such intent."""
        ...


def _intent(row: IntentRow) -> Intent:
    return Intent(
        id=row["id"],
        status=row["status"],
        amount=row["amount_minor"],
        currency=row["currency"],
        amount_received=row["amount_received_minor"],
        client_secret=None,
        metadata={str(k): str(v) for k, v in (row["metadata"].get("user") or {}).items()},
    )


def _unknown(intent_id: str) -> PaymentGatewayError:
    return PaymentGatewayError(f"The offline gateway has no payment {intent_id!r}.")


class OfflineGateway:
    name: Literal["offline"] = "offline"
    publishable_key: str | None = None

    def __init__(self, intents: OfflineIntentStore, clock: Clock) -> None:
        self._intents = intents
        self._clock = clock

    @property
    def intents(self) -> OfflineIntentStore:
        """Where this gateway keeps its intents."""
        return self._intents

    @staticmethod
    def intent_of(row: IntentRow) -> Intent:
        """The intent a stored row describes."""
        return _intent(row)

    async def create_intent(
        self, *, amount: int, currency: str, metadata: Mapping[str, str], idempotency_key: str
    ) -> Intent:
        values = self.new_intent(amount=amount, currency=currency, metadata=metadata, idempotency_key=idempotency_key)
        return _intent(await self._intents.create_once(values))

    def new_intent(
        self, *, amount: int, currency: str, metadata: Mapping[str, str], idempotency_key: str
    ) -> dict[str, Any]:
        """The row of a new intent, for :meth:`OfflineIntentStore.create_once` (the store keeps the first row
        made with an idempotency key)."""
        now = self._clock()
        return {
            "id": f"pi_offline_{secrets.token_hex(12)}",
            "idempotency_key": idempotency_key,
            "status": "requires_payment_method",
            "amount_minor": amount,
            "currency": currency.upper(),
            "amount_received_minor": 0,
            "amount_refunded_minor": 0,
            "metadata": {"user": dict(metadata), "refund_keys": []},
            "created_at": now,
            "updated_at": now,
        }

    async def retrieve_intent(self, intent_id: str) -> Intent:
        row = await self._intents.get(intent_id)
        if row is None:
            raise _unknown(intent_id)
        return _intent(row)

    async def _change(self, intent_id: str, decide: IntentChange) -> IntentRow:
        row = await self._intents.change(intent_id, self._clock(), decide)
        if row is None:
            raise _unknown(intent_id)
        return row

    async def cancel_intent(self, intent_id: str, *, idempotency_key: str) -> Intent:
        def cancel(row: IntentRow) -> Mapping[str, Any] | None:
            return None if row["status"] == "succeeded" else {"status": "canceled"}

        return _intent(await self._change(intent_id, cancel))

    async def confirm_intent(
        self, intent_id: str, *, payment_method: str, return_url: str, idempotency_key: str
    ) -> Confirmation:
        raise PaymentGatewayError("The offline gateway takes no payment methods: pay with simulate_payment.")

    async def simulate_payment(self, intent_id: str) -> Intent:
        """What a buyer's successful card payment would do: the intent succeeds for its full amount."""

        def pay(row: IntentRow) -> Mapping[str, Any] | None:
            if row["status"] in ("succeeded", "canceled"):
                return None
            return {"status": "succeeded", "amount_received_minor": row["amount_minor"]}

        return _intent(await self._change(intent_id, pay))

    async def refund(self, intent_id: str, *, amount: int, idempotency_key: str, reason: str | None) -> Refund:
        refund_id = "re_offline_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]

        def refund(row: IntentRow) -> Mapping[str, Any] | None:
            meta: dict[str, Any] = dict(row["metadata"])
            keys = list(meta.get("refund_keys") or [])
            if idempotency_key in keys:
                return None
            if row["amount_refunded_minor"] + amount > row["amount_received_minor"]:
                raise PaymentGatewayError("The offline gateway refused the refund: more than was received.")
            meta["refund_keys"] = [*keys, idempotency_key]
            return {"amount_refunded_minor": row["amount_refunded_minor"] + amount, "metadata": meta}

        await self._change(intent_id, refund)
        return Refund(id=refund_id, amount=amount, status="succeeded")

    def verify_webhook(self, payload: bytes, signature: str | None) -> GatewayEvent:
        raise WebhookRejected("This store runs the offline gateway: it takes no Stripe webhooks.")
