"""OfflineGateway: the embedded default when no Stripe key is configured.

Intents live in the database, so the whole flow (link → page → pay → paid) works on a fresh machine.
The checkout page shows a clearly labelled test-payment button that calls :meth:`simulate_payment`.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy import Connection, RowMapping

from mcp_checkout.domain import Clock
from mcp_checkout.errors import PaymentGatewayError, WebhookRejected
from mcp_checkout.payments.gateway import GatewayEvent, Intent, Refund
from mcp_checkout.store import offline_intents
from mcp_checkout.store.db import Database


def _intent(row: RowMapping) -> Intent:
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

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create_intent(
        self, *, amount: int, currency: str, metadata: Mapping[str, str], idempotency_key: str
    ) -> Intent:
        now = self._clock()
        values = {
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
        row = await self._db.write(lambda conn: offline_intents.create_once(conn, values))
        return _intent(row)

    async def retrieve_intent(self, intent_id: str) -> Intent:
        row = await self._db.read(lambda conn: offline_intents.get(conn, intent_id))
        if row is None:
            raise _unknown(intent_id)
        return _intent(row)

    async def cancel_intent(self, intent_id: str, *, idempotency_key: str) -> Intent:
        def run(conn: Connection) -> RowMapping:
            row = offline_intents.get(conn, intent_id)
            if row is None:
                raise _unknown(intent_id)
            if row["status"] != "succeeded":
                offline_intents.set_state(conn, intent_id, self._clock(), status="canceled")
            found = offline_intents.get(conn, intent_id)
            assert found is not None
            return found

        return _intent(await self._db.write(run))

    async def simulate_payment(self, intent_id: str) -> Intent:
        """What a buyer's successful card payment would do: the intent succeeds for its full amount."""

        def run(conn: Connection) -> RowMapping:
            row = offline_intents.get(conn, intent_id)
            if row is None:
                raise _unknown(intent_id)
            if row["status"] not in ("succeeded", "canceled"):
                offline_intents.set_state(
                    conn, intent_id, self._clock(), status="succeeded", amount_received_minor=row["amount_minor"]
                )
            found = offline_intents.get(conn, intent_id)
            assert found is not None
            return found

        return _intent(await self._db.write(run))

    async def refund(self, intent_id: str, *, amount: int, idempotency_key: str, reason: str | None) -> Refund:
        refund_id = "re_offline_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]

        def run(conn: Connection) -> None:
            row = offline_intents.get(conn, intent_id)
            if row is None:
                raise _unknown(intent_id)
            meta: dict[str, Any] = dict(row["metadata"])
            keys = list(meta.get("refund_keys") or [])
            if idempotency_key in keys:
                return
            if row["amount_refunded_minor"] + amount > row["amount_received_minor"]:
                raise PaymentGatewayError("The offline gateway refused the refund: more than was received.")
            meta["refund_keys"] = [*keys, idempotency_key]
            offline_intents.set_state(
                conn,
                intent_id,
                self._clock(),
                amount_refunded_minor=row["amount_refunded_minor"] + amount,
                metadata=meta,
            )

        await self._db.write(run)
        return Refund(id=refund_id, amount=amount, status="succeeded")

    def verify_webhook(self, payload: bytes, signature: str | None) -> GatewayEvent:
        raise WebhookRejected("This store runs the offline gateway: it takes no Stripe webhooks.")
