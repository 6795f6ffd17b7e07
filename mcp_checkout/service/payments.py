"""Payment use cases: the PaymentIntent handoff, gateway state, webhooks, sync and money taken elsewhere
(refunds and paid cancels: service/refunds.py).

At most one live PaymentIntent per order: attempt N of an order is a database row (unique
(order, attempt)) created before the gateway call, and the gateway call carries the idempotency key
``mcpco:<order>:<attempt>`` (service/idempotency.py), so a retry or a crash between the call and the
commit never makes a second intent. Amount and currency always come from the order row.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, RowMapping

from mcp_checkout.domain import Actor, Clock, Money, OrderStatus, Principal, SessionStatus
from mcp_checkout.errors import (
    CheckoutError,
    InvalidState,
    PaymentNotStarted,
)
from mcp_checkout.payments.gateway import GatewayEvent, Intent, PaymentGateway
from mcp_checkout.payments.offline import OfflineGateway
from mcp_checkout.service import audit, policy, quotes
from mcp_checkout.service.idempotency import (
    Idempotency,
    Operation,
    cancel_key,
    intent_key,
)
from mcp_checkout.service.order_state import transition, visible_order
from mcp_checkout.service.order_view import current_view, order_view
from mcp_checkout.service.refunds import MANUAL_GATEWAY, after_refund
from mcp_checkout.service.views import MoneyOut, OrderOut, PaymentHandoff, SyncOut
from mcp_checkout.store import checkout as checkout_store
from mcp_checkout.store import offline_intents
from mcp_checkout.store import orders as order_store
from mcp_checkout.store import payments as payment_store
from mcp_checkout.store.db import Database
from mcp_checkout.store.offline_intents import OfflineIntentRepository

log = logging.getLogger(__name__)

# Gateway states in the order a payment moves through them; nothing moves a payment backwards
# (a late `payment_failed` after `succeeded` is ignored), which makes out-of-order delivery safe.
# The unsettled states share a rank: Stripe itself moves between them both ways (an asynchronous
# payment goes `processing` → `requires_payment_method` with an error when it fails, and a new
# attempt goes back to `processing`), so among them the latest word wins.
_RANK = {
    "creating": 0,
    "requires_payment_method": 1,
    "requires_confirmation": 1,
    "requires_action": 1,
    "failed": 1,
    "processing": 1,
    "requires_capture": 2,
    "amount_mismatch": 3,
    "canceled": 3,
    "succeeded": 4,
}


# A latest attempt in these states is replaced by attempt N+1 on the next handoff.
_REPLACED = ("canceled", "amount_mismatch")

# States in which an intent can no longer be canceled (the buyer's money is on its way).
_UNSTOPPABLE = ("processing", "requires_capture", "succeeded")

MARK_ORDER_PAID = Operation("mark_order_paid", makes="payment", id_field="order_id", look_up="get_order")


@dataclass(frozen=True)
class MarkOrderPaid:
    """A mark_order_paid request: money for the order was taken outside the gateway."""

    order_id: str
    idempotency_key: str
    method: Literal["bank_transfer", "cash", "other"]
    reference: str
    sent: Collection[str] | None = None


@dataclass(frozen=True)
class _Attempt:
    payment_id: int
    attempt: int
    intent_id: str | None
    amount: int
    currency: str
    order_id: str
    order_number: str


@dataclass(frozen=True)
class PreparedIntent:
    """What :meth:`PaymentService.prepare_intent` did in its transaction: the order's current payment attempt
    and, when that transaction could make or read it (the offline gateway), its live intent."""

    attempt: _Attempt
    intent: Intent | None


class PaymentService:
    def __init__(self, db: Database, clock: Clock, gateway: PaymentGateway, idempotency: Idempotency) -> None:
        self._db = db
        self._clock = clock
        self.gateway = gateway
        self._idempotency = idempotency
        # The offline gateway keeps its intents in this very database: a transaction of ours can make and
        # read them, so the attempt, its intent and the record of it commit together.
        self._local: OfflineGateway | None = None
        if isinstance(gateway, OfflineGateway) and isinstance(gateway.intents, OfflineIntentRepository):
            self._local = gateway if gateway.intents.db is db else None

    # ------------------------------------------------------------ handoff
    async def ensure_intent(self, order_id: str) -> tuple[Intent, int]:
        """The order's live PaymentIntent, created on first need. Returns it and its attempt number."""
        prepared = await self._db.write(lambda conn: self.prepare_intent(conn, order_id))
        return await self.finish_intent(order_id, prepared)

    def prepare_intent(
        self, conn: Connection, order_id: str, locked: tuple[Mapping[Any, Any], Mapping[Any, Any] | None] | None = None
    ) -> PreparedIntent:
        """In the caller's write transaction: the order's current attempt (made if needed) and, on the
        offline gateway, its live intent, made and recorded here. Then :meth:`finish_intent`. ``locked``:
        the order and its latest payment attempt (None: it has none) when the caller has already read them
        in this transaction, the order row-locked and the payment current (locked, or read under SQLite's
        write lock); else they are read here, locked."""
        order, latest = locked if locked is not None else self._lock_order(conn, order_id)
        self._check_payable(conn, order)
        gateway = self._local
        if gateway is not None and (latest is None or latest["status"] in _REPLACED):
            # A new attempt on the offline gateway: its intent first, then the attempt's row already carrying
            # it (one INSERT each; what the attempt, its intent and _record_intent make, in one transaction).
            number = (latest["attempt"] + 1) if latest is not None else 1
            values = gateway.new_intent(
                amount=order["total_minor"],
                currency=order["currency"],
                metadata=_metadata(order, number),
                idempotency_key=intent_key(order["id"], number),
            )
            intent = gateway.intent_of(offline_intents.create_once_in(conn, values))
            row = self._insert_attempt(conn, order, number, intent_id=intent.id, status=intent.status)
            if row is not None:
                return PreparedIntent(_attempt_of(row, order), intent)
            attempt = self._attempt(conn, order, latest)  # made meanwhile by another caller: record ours on it
            self._record_intent(conn, attempt, intent)
            return PreparedIntent(attempt, intent)
        attempt = self._attempt(conn, order, latest)
        if gateway is None:
            return PreparedIntent(attempt, None)
        if attempt.intent_id is not None:
            row = offline_intents.get_in(conn, attempt.intent_id)
            found = gateway.intent_of(row) if row is not None else None
            # canceled, or for an old total: finish_intent replaces it with attempt N+1
            return PreparedIntent(attempt, found if found is not None and _usable(found, attempt) else None)
        values = gateway.new_intent(
            amount=attempt.amount,
            currency=attempt.currency,
            metadata=_intent_metadata(attempt),
            idempotency_key=intent_key(attempt.order_id, attempt.attempt),
        )
        intent = gateway.intent_of(offline_intents.create_once_in(conn, values))
        self._record_intent(conn, attempt, intent)
        return PreparedIntent(attempt, intent)

    def local_intent(self, conn: Connection, intent_id: str) -> Intent | None:
        """The intent as read in the caller's transaction when this database holds it (the offline gateway);
        None otherwise: ask the gateway."""
        if self._local is None:
            return None
        row = offline_intents.get_in(conn, intent_id)
        return None if row is None else self._local.intent_of(row)

    async def finish_intent(self, order_id: str, prepared: PreparedIntent) -> tuple[Intent, int]:
        """The live intent of a :meth:`prepare_intent`: the one it found or made, else asked of the gateway
        (created there on first need, with the attempt's idempotency key). Returns it and its attempt number."""
        attempt = prepared.attempt
        if prepared.intent is not None:
            return prepared.intent, attempt.attempt
        if attempt.intent_id is not None:
            intent = await self.gateway.retrieve_intent(attempt.intent_id)
            if _usable(intent, attempt):
                return intent, attempt.attempt
            if intent.status != "canceled":  # the order was priced again (its delivery changed): replace it
                intent = await self.gateway.cancel_intent(
                    intent.id, idempotency_key=cancel_key(order_id, attempt.attempt)
                )
            # Canceled at the gateway (by the buyer, the dashboard or just above): record it, then attempt N+1.
            await self.apply_intent(intent, actor=Actor.SYSTEM, source="handoff")
            attempt = await self._db.write(lambda conn: self._current_attempt(conn, order_id))
        intent = await self.gateway.create_intent(
            amount=attempt.amount,
            currency=attempt.currency,
            metadata=_intent_metadata(attempt),
            idempotency_key=intent_key(attempt.order_id, attempt.attempt),
        )
        await self._db.write(lambda conn: self._record_intent(conn, attempt, intent))
        return intent, attempt.attempt

    def _current_attempt(self, conn: Connection, order_id: str) -> _Attempt:
        order, latest = self._lock_order(conn, order_id)
        self._check_payable(conn, order)
        return self._attempt(conn, order, latest)

    def _lock_order(self, conn: Connection, order_id: str) -> tuple[Mapping[Any, Any], Mapping[Any, Any] | None]:
        """The order and its latest payment attempt, locked in that order."""
        order = order_store.get(conn, order_id, for_update=True)
        if order is None:
            raise InvalidState(f"Order {order_id} does not exist.")
        return order, payment_store.latest_payment(conn, order_id, for_update=True)

    def _check_payable(self, conn: Connection, order: Mapping[Any, Any]) -> None:
        order_id = order["id"]
        if order["status"] != OrderStatus.PENDING_PAYMENT.value:
            raise InvalidState(
                f"Order {order_id} is {order['status']}; only pending_payment orders can be paid. "
                "Call get_order to see what happened.",
                details={"order_id": order_id, "status": order["status"]},
                next_actions=["get_order"],
            )
        if missing := quotes.order_notices(conn, order):  # its total is not final before its delivery is chosen
            raise InvalidState(
                f"Order {order_id} cannot be paid yet: " + " ".join(notice.message for notice in missing),
                details={"order_id": order_id, "missing": [notice.code for notice in missing]},
                next_actions=["create_checkout_link"],
            )

    def _attempt(self, conn: Connection, order: Mapping[Any, Any], latest: Mapping[Any, Any] | None) -> _Attempt:
        """The order's current attempt: its latest, unless that one was replaced (then attempt N+1, made)."""
        if latest is not None and latest["status"] not in _REPLACED:
            return _attempt_of(latest, order)
        number = (latest["attempt"] + 1) if latest is not None else 1
        row = self._insert_attempt(conn, order, number) or payment_store.payment_by_attempt(conn, order["id"], number)
        assert row is not None
        return _attempt_of(row, order)

    def _insert_attempt(
        self, conn: Connection, order: Mapping[Any, Any], number: int, *, intent_id: str | None = None,
        status: str = "creating",
    ) -> Mapping[Any, Any] | None:  # fmt: skip
        now = self._clock()
        return payment_store.insert_payment(
            conn,
            {
                "order_id": order["id"],
                "attempt": number,
                "gateway": self.gateway.name,
                "intent_id": intent_id,
                "status": status,
                "amount_minor": order["total_minor"],
                "currency": order["currency"],
                "amount_received_minor": 0,
                "refunded_minor": 0,
                "created_at": now,
                "updated_at": now,
            },
        )

    def _record_intent(self, conn: Connection, attempt: _Attempt, intent: Intent) -> None:
        row = payment_store.payment_by_attempt(conn, attempt.order_id, attempt.attempt)
        if row is not None and row["intent_id"] is None:
            status = intent.status if _RANK.get(intent.status, 0) >= _RANK.get(row["status"], 0) else row["status"]
            payment_store.update_payment(conn, row["id"], self._clock(), intent_id=intent.id, status=status)

    async def handoff(self, principal: Principal, order_id: str) -> PaymentHandoff:
        await self._db.read(lambda conn: visible_order(conn, principal, order_id))
        intent, attempt = await self.ensure_intent(order_id)
        return PaymentHandoff(
            order_id=order_id,
            gateway=self.gateway.name,
            intent_id=intent.id,
            attempt=attempt,
            status=intent.status,
            amount=MoneyOut.minor(intent.amount, intent.currency),
            client_secret=intent.client_secret,
            publishable_key=self.gateway.publishable_key,
        )

    # ------------------------------------------------------------ gateway state → order state
    async def apply_intent(self, intent: Intent, *, actor: Actor, source: str) -> str:
        """Bring the payment and its order in line with the gateway's view of an intent."""
        return await self._db.write(lambda conn: self._apply(conn, intent, actor, source))

    def _apply(self, conn: Connection, intent: Intent, actor: Actor, source: str) -> str:
        now = self._clock()
        locked = self._lock_intent(conn, intent)
        if locked is None:
            log.warning("%s: payment intent %s matches no order; ignored", source, intent.id[:14])
            return "unknown_intent"
        order, payment = locked
        current = payment["status"]
        if _RANK.get(intent.status, 0) < _RANK.get(current, 0):
            return f"ignored {intent.status} after {current}"
        if intent.status == "succeeded":
            return self._succeeded(conn, order, payment, intent, actor, source, now)
        updates: dict[str, object] = {"status": intent.status}
        if intent.status == "requires_payment_method" and intent.last_error:
            updates = {"status": "failed", "last_error": intent.last_error}
        payment_store.update_payment(conn, payment["id"], now, **updates)
        if intent.status == "processing":
            checkout_store.set_sessions_of_order(
                conn, order["id"], [SessionStatus.OPEN.value], SessionStatus.PAYMENT_PENDING.value, now
            )
        elif updates["status"] in ("failed", "canceled"):
            checkout_store.set_sessions_of_order(
                conn, order["id"], [SessionStatus.PAYMENT_PENDING.value], SessionStatus.OPEN.value, now
            )
        return f"payment {updates['status']}"

    def _lock_intent(self, conn: Connection, intent: Intent) -> tuple[RowMapping, RowMapping] | None:
        """The order and the payment of an intent, locked in the one lock order of every path that changes
        both: the order row first, then the payment (the reverse deadlocks against them on PostgreSQL)."""
        found = payment_store.payment_by_intent(conn, intent.id)
        order_id = found["order_id"] if found is not None else intent.metadata.get("order_id")
        order = order_store.get(conn, order_id, for_update=True) if order_id else None
        if order is None:
            return None
        payment = payment_store.payment_by_intent(conn, intent.id, for_update=True) or self._adopt(conn, intent)
        return None if payment is None or payment["order_id"] != order["id"] else (order, payment)

    def _adopt(self, conn: Connection, intent: Intent) -> RowMapping | None:
        """An event for an intent whose id we never recorded (the webhook beat our own commit, or we
        crashed after the gateway call): find its attempt through the metadata we sent. The caller holds
        the order's lock."""
        order_id = intent.metadata.get("order_id")
        attempt = intent.metadata.get("attempt", "")
        if not order_id or not attempt.isdigit():
            return None
        row = payment_store.payment_by_attempt(conn, order_id, int(attempt))
        if row is None or (row["intent_id"] not in (None, intent.id)):
            return None
        payment_store.update_payment(conn, row["id"], self._clock(), intent_id=intent.id)
        return payment_store.payment_by_intent(conn, intent.id, for_update=True)

    def _succeeded(
        self,
        conn: Connection,
        order: RowMapping,
        payment: RowMapping,
        intent: Intent,
        actor: Actor,
        source: str,
        now: datetime,
    ) -> str:
        expected = Money(order["total_minor"], order["currency"])
        received = Money(intent.amount_received or intent.amount, intent.currency.upper())
        if received != expected or intent.amount != expected.amount:
            payment_store.update_payment(
                conn, payment["id"], now, status="amount_mismatch", amount_received_minor=received.amount
            )
            payment_store.add_issue(
                conn,
                order["id"],
                "amount_mismatch",
                f"Payment {intent.id} succeeded for {received.display()} but the order is {expected.display()}; "
                "the order was NOT marked paid. Check the payment in the gateway dashboard and refund or "
                "reconcile it.",
                now,
            )
            log.error("amount mismatch on order %s (%s)", order["id"], source)
            return "amount_mismatch"
        payment_store.update_payment(
            conn, payment["id"], now, status="succeeded", amount_received_minor=received.amount
        )
        if order["status"] == OrderStatus.PENDING_PAYMENT.value:
            transition(
                conn, order, OrderStatus.PAID, actor=actor, principal_id=None,
                reason=f"payment {intent.id} succeeded ({source})", now=now,
            )  # fmt: skip
            return "order paid"
        if order["status"] in (OrderStatus.CANCELED.value, OrderStatus.EXPIRED.value):
            payment_store.add_issue(
                conn,
                order["id"],
                "paid_after_close",
                f"Payment {intent.id} succeeded after the order was {order['status']} (its stock was released). "
                "Refund it with refund_order or fulfil it by hand.",
                now,
            )
            return "paid after close"
        if payment["status"] != "succeeded":  # this intent just succeeded, but something else paid the order
            payment_store.add_issue(
                conn,
                order["id"],
                "paid_twice",
                f"Payment {intent.id} succeeded but the order was already {order['status']} (e.g. marked paid by "
                "hand). Refund this payment in the gateway's dashboard.",
                now,
            )
        return "already paid"

    # ------------------------------------------------------------ webhooks and sync
    async def handle_webhook(self, payload: bytes, signature: str | None) -> str:
        """Verify, deduplicate by event id, and apply one gateway event. Returns what happened."""
        event = self.gateway.verify_webhook(payload, signature)
        # Redeliveries are common; answer them from a quick read without taking the write lock. The
        # insert in _apply_event stays the real guard against two deliveries racing.
        if await self._db.read(lambda conn: payment_store.event_seen(conn, event.id), quick=True, one_statement=True):
            return "duplicate"
        return await self._db.write(lambda conn: self._apply_event(conn, event))

    def _apply_event(self, conn: Connection, event: GatewayEvent) -> str:
        now = self._clock()
        intent_id = event.intent.id if event.intent else event.charge_intent_id
        if not payment_store.record_event_once(conn, event.id, event.type, intent_id, "received", now):
            return "duplicate"
        if event.intent is not None and event.type in (
            "payment_intent.succeeded",
            "payment_intent.payment_failed",
            "payment_intent.canceled",
            "payment_intent.processing",
        ):
            return self._apply(conn, event.intent, Actor.BUYER, f"webhook {event.type}")
        if event.type == "charge.refunded" and event.charge_intent_id and event.amount_refunded is not None:
            return self._refunded_at_gateway(conn, event.charge_intent_id, event.amount_refunded, now)
        return "ignored"

    def _refunded_at_gateway(self, conn: Connection, intent_id: str, amount_refunded: int, now: datetime) -> str:
        found = payment_store.payment_by_intent(conn, intent_id)
        if found is None:
            return "unknown_intent"
        order_store.get(conn, found["order_id"], for_update=True)  # lock order: the order row, then the payment
        payment = payment_store.payment_by_intent(conn, intent_id, for_update=True)
        assert payment is not None
        refunded = min(max(payment["refunded_minor"], amount_refunded), payment["amount_received_minor"])
        more = refunded > payment["refunded_minor"]
        payment_store.update_payment(conn, payment["id"], now, refunded_minor=refunded)
        after_refund(conn, payment["order_id"], refunded, payment["amount_received_minor"], now, announce=more)
        return f"refunded {refunded}"

    async def sync(self, principal: Principal, order_id: str) -> SyncOut:
        """Pull the latest intent's state from the gateway and apply it (for a missed webhook)."""
        await self._db.read(lambda conn: visible_order(conn, principal, order_id))
        status, outcome = await self.sync_order(order_id)
        order = await self._db.read(lambda conn: order_view(conn, visible_order(conn, principal, order_id)))
        return SyncOut(gateway_status=status, outcome=outcome, order=order)

    async def sync_order(self, order_id: str) -> tuple[str, str]:
        payment = await self._db.read(lambda conn: payment_store.latest_payment(conn, order_id))
        if payment is None or payment["intent_id"] is None:
            raise PaymentNotStarted(
                f"Order {order_id} has no payment yet. Share a checkout link (create_checkout_link) or call "
                "create_payment_intent first.",
                details={"order_id": order_id},
                next_actions=["create_checkout_link", "create_payment_intent"],
            )
        intent = await self.gateway.retrieve_intent(payment["intent_id"])
        outcome = await self.apply_intent(intent, actor=Actor.SYSTEM, source="sync_payment")
        return intent.status, outcome

    async def drop_stale_intent(self, order_id: str) -> None:
        """After the order was priced again: cancel its live intent if that asks for another amount, so no
        tab still open on the old total can pay it (the next handoff makes the intent for the new total)."""

        def stale(conn: Connection) -> bool:
            order = order_store.get(conn, order_id)
            payment = payment_store.latest_payment(conn, order_id)
            return (
                order is not None
                and payment is not None
                and payment["status"] not in ("canceled", "amount_mismatch", "succeeded")
                and payment["amount_minor"] != order["total_minor"]
            )

        if await self._db.read(stale):
            await self.cancel_open_intent(order_id)

    async def cancel_open_intent(self, order_id: str) -> None:
        """Best effort: cancel the order's unpaid intent at the gateway so it cannot be paid later."""
        payment = await self._db.read(lambda conn: payment_store.latest_payment(conn, order_id))
        await self._cancel_intent(order_id, payment)

    async def _cancel_intent(self, order_id: str, payment: RowMapping | None) -> None:
        if payment is None or payment["intent_id"] is None or payment["status"] in ("succeeded", "canceled"):
            return
        try:
            intent = await self.gateway.cancel_intent(
                payment["intent_id"], idempotency_key=cancel_key(order_id, payment["attempt"])
            )
        except CheckoutError as exc:
            log.warning("could not cancel intent of order %s at the gateway: %s", order_id, exc.code)
            return
        await self.apply_intent(intent, actor=Actor.SYSTEM, source="cancel")

    # ------------------------------------------------------------ money taken elsewhere
    async def mark_paid(self, principal: Principal, cmd: MarkOrderPaid) -> OrderOut:
        """Mark an unpaid order paid by bank transfer, cash or otherwise, exactly once per key: a payments row
        (gateway ``manual``), then ``transition`` to paid (stock committed, links consumed, order.paid). The
        order's live intent, if any, is canceled at the gateway afterwards so the buyer cannot pay twice."""
        policy.require(principal, "mark_order_paid")
        call = MARK_ORDER_PAID.request(cmd)

        def run(conn: Connection) -> tuple[OrderOut, RowMapping | None]:
            if self._idempotency.once(conn, principal.id, call, cmd.order_id) is not None:
                return order_view(conn, visible_order(conn, principal, cmd.order_id)).as_replay(), None
            order = visible_order(conn, principal, cmd.order_id, lock=True)
            if order["status"] != OrderStatus.PENDING_PAYMENT.value:
                raise InvalidState(
                    f"Order {order['number']} is {order['status']}; only pending_payment orders can be marked paid.",
                    details={"order_id": order["id"], "status": order["status"]},
                    next_actions=["get_order"],
                )
            live = payment_store.latest_payment(conn, order["id"], for_update=True)
            now = self._clock()
            payment_store.try_insert_payment(
                conn,
                {
                    "order_id": order["id"],
                    "attempt": (live["attempt"] + 1) if live is not None else 1,
                    "gateway": MANUAL_GATEWAY,
                    "status": "succeeded",
                    "amount_minor": order["total_minor"],
                    "currency": order["currency"],
                    "amount_received_minor": order["total_minor"],
                    "refunded_minor": 0,
                    "method": cmd.method,
                    "reference": cmd.reference,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            transition(
                conn, order, OrderStatus.PAID, actor=principal.actor, principal_id=principal.id,
                reason=f"paid by {cmd.method} outside the gateway", now=now,
            )  # fmt: skip
            audit.record(
                conn, principal, "order.mark_paid", order["id"], before={"status": order["status"]},
                after={"status": OrderStatus.PAID.value, "method": cmd.method, "reference": cmd.reference}, at=now,
            )  # fmt: skip
            return current_view(conn, order["id"]), live

        view, live = await self._db.write(run)
        await self._cancel_intent(cmd.order_id, live)  # the view shows the manual payment, not this attempt
        return view


def _intent_metadata(attempt: _Attempt) -> dict[str, str]:
    return {"order_id": attempt.order_id, "attempt": str(attempt.attempt), "number": attempt.order_number}


def _metadata(order: Mapping[Any, Any], attempt: int) -> dict[str, str]:
    """:func:`_intent_metadata` of the order's attempt ``attempt``, before its row exists."""
    return {"order_id": order["id"], "attempt": str(attempt), "number": order["number"]}


def _usable(intent: Intent, attempt: _Attempt) -> bool:
    """An attempt's intent still serves: not canceled, and for the order's total now (or past stopping)."""
    return intent.status != "canceled" and (intent.amount == attempt.amount or intent.status in _UNSTOPPABLE)


def _attempt_of(row: Mapping[Any, Any], order: Mapping[Any, Any]) -> _Attempt:
    return _Attempt(
        payment_id=row["id"],
        attempt=row["attempt"],
        intent_id=row["intent_id"],
        amount=order["total_minor"],
        currency=order["currency"],
        order_id=order["id"],
        order_number=order["number"],
    )


__all__ = ["MarkOrderPaid", "OrderOut", "PaymentService"]
