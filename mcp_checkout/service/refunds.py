"""Money back: refunds (exactly once per key, booked before the gateway call) and the merchant's cancel of a
paid, unshipped order (restocked, refunded in full once, keyed by the order)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, RowMapping

from mcp_checkout import domain
from mcp_checkout.domain import Actor, Clock, Money, OrderStatus, Principal
from mcp_checkout.errors import IdempotencyInFlight, InvalidState, PaymentGatewayError, RefundTooLarge
from mcp_checkout.payments.gateway import PaymentGateway
from mcp_checkout.service import audit, policy, webhook_outbox
from mcp_checkout.service.idempotency import Claim, Idempotency, Keyed, Operation, Prior, refund_key
from mcp_checkout.service.order_state import transition
from mcp_checkout.service.order_view import current_view, order_view
from mcp_checkout.service.views import MoneyOut, OrderOut, RefundOut
from mcp_checkout.store import orders as order_store
from mcp_checkout.store import payments as payment_store
from mcp_checkout.store.db import Database

log = logging.getLogger(__name__)

REFUND_ORDER = Operation("refund_order", makes="refund", id_field="refund_id", look_up="get_order")
CANCEL_REFUND = Operation("cancel_order", makes="refund", id_field="refund_id", look_up="get_order")
PAID_CANCEL_SCOPE = "paid-cancel"  # the key scope of paid cancels' refunds: one per order, whoever cancels
MANUAL_GATEWAY = "manual"  # payments.gateway of money taken outside the gateway (mark_order_paid)


@dataclass(frozen=True)
class RefundOrder:
    """A refund_order request: ``amount`` None refunds what is left. ``sent``: see KeyedCommand."""

    order_id: str
    idempotency_key: str
    amount: int | None = None
    reason: str | None = None
    sent: Collection[str] | None = None


class RefundService:
    def __init__(self, db: Database, clock: Clock, gateway: PaymentGateway, idempotency: Idempotency) -> None:
        self._db = db
        self._clock = clock
        self.gateway = gateway
        self._idempotency = idempotency

    async def refund(self, principal: Principal, cmd: RefundOrder) -> RefundOut:
        policy.require(principal, "refund_order")
        return await self._refund(principal, principal.id, REFUND_ORDER.request(cmd), cmd)

    async def _refund(
        self, principal: Principal, scope: str, call: Keyed, cmd: RefundOrder, first: _First | None = None
    ) -> RefundOut:
        """The one refund protocol: claim the key and book the refund (one transaction, the order row locked
        first), call the gateway under the claim's key, then finish or fail it. ``scope``: whose keys
        ``call``'s key is among; ``first`` runs under the order's lock before anything else (a paid cancel)."""
        new_id = domain.new_id("re")

        def reserve(conn: Connection) -> Prior | tuple[Claim, _ReservedRefund]:
            step = self._reserve_refund(conn, scope, call, cmd, new_id, first)
            if not isinstance(step, Prior) and step[1].booked:  # audited in the transaction that books it
                change = {"refund_id": step[0].resource_id, "amount_minor": step[1].amount, "reason": cmd.reason}
                audit.record(conn, principal, "order.refund", cmd.order_id, after=change, at=self._clock())
            return step

        step = await self._db.write(reserve)
        if isinstance(step, Prior):
            return await self._refund_view(cmd.order_id, step.resource_id, replayed=True)
        claim, reserved = step
        if reserved.status != "succeeded":
            try:
                made = await self.gateway.refund(
                    reserved.intent_id, amount=reserved.amount, idempotency_key=refund_key(claim), reason=cmd.reason
                )
            except Exception:
                await self._db.write(lambda conn: self._fail_refund(conn, claim.resource_id))
                await self._idempotency.release(claim)
                raise
        else:
            made = None

        def finish(conn: Connection) -> None:
            if made is not None:
                self._finish_refund(conn, claim.resource_id, made.id)
            self._idempotency.complete(conn, claim)

        await self._db.write(finish)
        return await self._refund_view(cmd.order_id, claim.resource_id, replayed=False)

    def _reserve_refund(
        self, conn: Connection, scope: str, call: Keyed, cmd: RefundOrder, new_id: str, first: _First | None
    ) -> Prior | tuple[Claim, _ReservedRefund]:
        order_id = cmd.order_id
        order = order_store.get(conn, order_id, for_update=True)
        if order is None:
            raise InvalidState(f"No order {order_id!r}.", next_actions=["list_orders"])
        if first is not None:
            first(conn, order)
        claim = self._idempotency.claim(conn, scope, call, new_id)
        if isinstance(claim, Prior):
            return claim
        refund_id = claim.resource_id
        # A claim taken over from an attempt that died or failed: that attempt's refund, as far as it got.
        existing = payment_store.refund_by_id(conn, refund_id) if claim.taken_over else None
        payment = payment_store.latest_payment(conn, order_id, for_update=True)
        if existing is not None and existing["status"] != "failed":
            assert payment is not None
            return claim, _ReservedRefund(existing["status"], payment["intent_id"], existing["amount_minor"], False)
        if payment is None or payment["status"] != "succeeded" or payment["intent_id"] is None:
            raise InvalidState(
                f"Order {order_id} is {order['status']} and has no captured payment to refund.",
                details={"order_id": order_id, "status": order["status"]},
                next_actions=["get_order", "sync_payment"],
            )
        remaining = payment["amount_received_minor"] - payment["refunded_minor"]
        # A retry of a failed attempt asks for what that attempt asked for: the gateway may have made it
        # and only the answer was lost, and the same gateway idempotency key then replays it there.
        wanted = existing["amount_minor"] if existing is not None else remaining if cmd.amount is None else cmd.amount
        currency = payment["currency"]
        if wanted <= 0 or wanted > remaining:
            raise RefundTooLarge(
                f"Order {order_id} can be refunded at most {Money(remaining, currency).display()} more "
                f"(received {Money(payment['amount_received_minor'], currency).display()}, already refunded "
                f"{Money(payment['refunded_minor'], currency).display()}). Lower the amount.",
                details={"order_id": order_id, "refundable": remaining, "requested": wanted},
            )
        now = self._clock()
        if existing is not None:  # count the failed attempt again, as pending
            payment_store.set_refund_status(conn, refund_id, "pending", None)
        else:
            payment_store.add_refund(
                conn,
                {
                    "id": refund_id,
                    "order_id": order_id,
                    "payment_id": payment["id"],
                    "amount_minor": wanted,
                    "currency": currency,
                    "reason": cmd.reason,
                    "status": "pending",
                    "created_at": now,
                },
            )
        payment_store.update_payment(conn, payment["id"], now, refunded_minor=payment["refunded_minor"] + wanted)
        return claim, _ReservedRefund("pending", payment["intent_id"], wanted, True)

    def _fail_refund(self, conn: Connection, refund_id: str) -> None:
        refund = payment_store.refund_by_id(conn, refund_id)
        if refund is None or refund["status"] != "pending":
            return
        now = self._clock()
        order_store.get(conn, refund["order_id"], for_update=True)  # lock order: the order row, then the payment
        payment_store.set_refund_status(conn, refund_id, "failed", None)
        payment = payment_store.latest_payment(conn, refund["order_id"], for_update=True)
        if payment is not None:
            payment_store.update_payment(
                conn, payment["id"], now, refunded_minor=max(payment["refunded_minor"] - refund["amount_minor"], 0)
            )

    def _finish_refund(self, conn: Connection, refund_id: str, gateway_refund_id: str) -> None:
        refund = payment_store.refund_by_id(conn, refund_id)
        assert refund is not None
        if refund["status"] == "succeeded":
            return
        # Lock the order row before the payment, as _reserve_refund does: the other order deadlocks on PostgreSQL.
        order_store.get(conn, refund["order_id"], for_update=True)
        payment_store.set_refund_status(conn, refund_id, "succeeded", gateway_refund_id)
        payment = payment_store.latest_payment(conn, refund["order_id"], for_update=True)
        assert payment is not None
        after_refund(
            conn, refund["order_id"], payment["refunded_minor"], payment["amount_received_minor"], self._clock(),
            announce=True,
        )  # fmt: skip

    # ------------------------------------------------------------ the merchant cancels a paid order
    async def cancel_paid(self, principal: Principal, order_id: str, reason: str | None) -> OrderOut:
        """Cancel a paid order that has not shipped: ``transition`` to canceled puts its units back on hand, and
        the full refund goes through the refund protocol in the same transaction's claim, keyed by the order
        (not the caller), so however often and by whomever it is canceled, at most one refund is made; a
        cancel_order after a failed or interrupted refund retries it under the same gateway key. Money taken
        outside the gateway (mark_order_paid) cannot be refunded here: the order is canceled and restocked
        and an issue asks the merchant to return the money the way it came."""

        def cancel(conn: Connection, order: RowMapping) -> None:
            if order["status"] == OrderStatus.PAID.value:
                now = self._clock()
                transition(
                    conn, order, OrderStatus.CANCELED, actor=principal.actor, principal_id=principal.id,
                    reason=reason or "canceled after payment: refunded in full and restocked", now=now,
                )  # fmt: skip
                audit.record(conn, principal, "order.cancel", order["id"], before={"status": order["status"]},
                             after={"status": OrderStatus.CANCELED.value, "reason": reason}, at=now)  # fmt: skip
            elif order["status"] != OrderStatus.CANCELED.value:  # shipped or refunded meanwhile: invalid_state
                domain.check_transition(order["id"], OrderStatus(order["status"]), OrderStatus.CANCELED)

        def paid_by_hand(conn: Connection) -> OrderOut | None:
            order = order_store.get(conn, order_id, for_update=True)
            payment = payment_store.latest_payment(conn, order_id)
            if order is None or payment is None or payment["gateway"] != MANUAL_GATEWAY:
                return None
            if order["status"] != OrderStatus.CANCELED.value:
                cancel(conn, order)
                payment_store.add_issue(
                    conn, order_id, "refund_by_hand",
                    f"Order {order['number']} was paid by {payment['method']} outside the gateway (reference "
                    f"{payment['reference']}). It is canceled and restocked; return the money the same way.",
                    self._clock(),
                )  # fmt: skip
            return current_view(conn, order_id)

        if (view := await self._db.write(paid_by_hand)) is not None:
            return view
        cmd = RefundOrder(order_id, f"cancel:{order_id}", None, "order canceled", sent=frozenset({"order_id"}))
        try:
            refunded = await self._refund(principal, PAID_CANCEL_SCOPE, CANCEL_REFUND.request(cmd), cmd, cancel)
        except IdempotencyInFlight:  # another cancel of this order is making its refund right now
            return await self._db.read(lambda conn: current_view(conn, order_id))
        except PaymentGatewayError:
            message = "The order is canceled but its refund failed at the gateway; call cancel_order again to retry it."
            await self._db.write(
                lambda conn: payment_store.add_issue(conn, order_id, "refund_failed", message, self._clock())
            )
            raise
        return refunded.order

    async def _refund_view(self, order_id: str, refund_id: str, *, replayed: bool) -> RefundOut:
        def run(conn: Connection) -> RefundOut:
            refund = payment_store.refund_by_id(conn, refund_id)
            order = order_store.get(conn, order_id)
            assert refund is not None and order is not None
            return RefundOut(
                refund_id=refund_id,
                status=refund["status"],
                amount=MoneyOut.minor(refund["amount_minor"], refund["currency"]),
                replayed=replayed,
                order=order_view(conn, order),
            )

        return await self._db.read(run)


def after_refund(
    conn: Connection, order_id: str, refunded: int, received: int, now: datetime, *, announce: bool
) -> None:
    """A refund went through: a fully refunded order becomes ``refunded``; a partial refund leaves it
    paid (and a canceled order stays canceled). Either way the merchant's systems hear ``order.refunded``
    once (as with Stripe's charge.refunded); ``announce`` is False when the refund was already known (a
    repeated webhook)."""
    order = order_store.get(conn, order_id, for_update=True)
    refundable = (OrderStatus.PAID.value, OrderStatus.PARTIALLY_FULFILLED.value, OrderStatus.FULFILLED.value)
    if order is None or received == 0 or order["status"] not in (*refundable, OrderStatus.CANCELED.value):
        return
    if refunded >= received and order["status"] in refundable:
        transition(
            conn, order, OrderStatus.REFUNDED, actor=Actor.MERCHANT, principal_id=None,
            reason="payment fully refunded", now=now,
        )  # fmt: skip
    elif announce:
        webhook_outbox.record_order_event(conn, OrderStatus.REFUNDED, order_id, now, lambda: order_view(conn, order))


_First = Callable[[Connection, RowMapping], None]


@dataclass(frozen=True)
class _ReservedRefund:
    status: str
    intent_id: str
    amount: int
    booked: bool  # this attempt counted the refund (not one a dead attempt had counted)


__all__ = ["MANUAL_GATEWAY", "REFUND_ORDER", "RefundOrder", "RefundService", "after_refund"]
