"""Fulfilment: the merchant ships a paid order, in one or several shipments, with tracking (fulfill_order).

Exactly once per idempotency key (service/idempotency.py ``once``, first statement of the one write
transaction). A shipment never ships more of a line than was ordered minus what shipped before
(domain/fulfillment.py plans it; a conditional update counts it). The first shipment that leaves
something unshipped makes the order ``partially_fulfilled``, the one that ships the rest ``fulfilled``
(through ``transition``, which queues ``order.partially_fulfilled`` / ``order.fulfilled``); a further
partial shipment keeps the status but still adds a status-history entry (``restate``: wait_for_order and
orders:// subscribers hear of every shipment) and queues ``order.partially_fulfilled`` again, so each
shipment's tracking reaches the merchant's systems (the event body is the whole order, fulfilments included).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from mcp_checkout import domain
from mcp_checkout.domain import Clock, OrderStatus, Principal
from mcp_checkout.domain.fulfillment import OrderedLine, fully_shipped, plan_shipment
from mcp_checkout.errors import InvalidState
from mcp_checkout.service import audit, policy
from mcp_checkout.service.idempotency import Idempotency, Operation
from mcp_checkout.service.order_state import restate, transition, visible_order
from mcp_checkout.service.order_view import current_view, order_view
from mcp_checkout.service.views import OrderOut
from mcp_checkout.store import fulfillments as fulfillment_store
from mcp_checkout.store import orders as order_store
from mcp_checkout.store.db import Database

FULFILL_ORDER = Operation("fulfill_order", makes="fulfillment", id_field="fulfillment_id", look_up="get_order")
SHIPPABLE = frozenset({OrderStatus.PAID, OrderStatus.PARTIALLY_FULFILLED})


@dataclass(frozen=True)
class FulfillOrder:
    """A validated fulfill_order request; ``lines`` None ships everything not shipped yet."""

    order_id: str
    idempotency_key: str
    lines: Sequence[tuple[str, int]] | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    sent: Collection[str] | None = None


class FulfillmentService:
    def __init__(self, db: Database, clock: Clock, idempotency: Idempotency) -> None:
        self._db = db
        self._clock = clock
        self._idempotency = idempotency

    async def fulfill(self, principal: Principal, cmd: FulfillOrder) -> OrderOut:
        policy.require(principal, "fulfill_order")
        if cmd.tracking_url is not None:
            domain.redirect_origin("tracking_url", cmd.tracking_url)
        call = FULFILL_ORDER.request(cmd)
        fulfillment_id = domain.new_id("ful")

        def run(conn: Connection) -> OrderOut:
            if self._idempotency.once(conn, principal.id, call, fulfillment_id) is not None:
                return order_view(conn, visible_order(conn, principal, cmd.order_id)).as_replay()
            return self._ship(conn, principal, cmd, fulfillment_id)

        return await self._db.write(run)

    def _ship(self, conn: Connection, principal: Principal, cmd: FulfillOrder, fulfillment_id: str) -> OrderOut:
        order = visible_order(conn, principal, cmd.order_id, lock=True)
        status = OrderStatus(order["status"])
        if status not in SHIPPABLE:
            raise InvalidState(
                f"Order {order['number']} is {status.value}; only paid orders (or partly shipped ones) can be "
                "fulfilled. Call get_order; an unpaid order must be paid first (or mark_order_paid).",
                details={"order_id": order["id"], "status": status.value},
                next_actions=["get_order", "mark_order_paid"],
            )
        lines = [
            OrderedLine(item["line_no"], item["sku"], item["quantity"], item["fulfilled_quantity"])
            for item in order_store.items(conn, order["id"])
        ]
        plan = plan_shipment(order["number"], lines, cmd.lines)
        for shipped in plan:
            if not fulfillment_store.ship_units(conn, order["id"], shipped.line_no, shipped.quantity):
                raise AssertionError("a planned shipment exceeded its line under the order's lock")
        now = self._clock()
        shipped_lines = [{"line_no": s.line_no, "sku": s.sku, "quantity": s.quantity} for s in plan]
        tracking = {"carrier": cmd.carrier, "tracking_number": cmd.tracking_number, "tracking_url": cmd.tracking_url}
        fulfillment_store.insert_fulfillment(
            conn,
            {
                "id": fulfillment_id,
                "order_id": order["id"],
                "lines": shipped_lines,
                **tracking,
                "principal_id": principal.id,
                "created_at": now,
            },
        )
        target = OrderStatus.FULFILLED if fully_shipped(lines, plan) else OrderStatus.PARTIALLY_FULFILLED
        units = sum(s.quantity for s in plan)
        reason = f"shipped {units} unit(s) ({fulfillment_id})"
        if target is status:  # one more partial shipment: the status stays; history and webhook say it shipped
            restate(conn, order, actor=principal.actor, principal_id=principal.id, reason=reason, now=now)
        else:
            transition(conn, order, target, actor=principal.actor, principal_id=principal.id, reason=reason, now=now)
        audit.record(
            conn, principal, "order.fulfill", order["id"], before={"status": status.value},
            after={"status": target.value, "fulfillment_id": fulfillment_id, "lines": shipped_lines, **tracking},
            at=now,
        )  # fmt: skip
        return current_view(conn, order["id"])
