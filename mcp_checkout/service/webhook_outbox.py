"""The webhook outbox: an order change writes its event, and one pending delivery per subscribed endpoint,
in the very transaction that makes the change (:func:`record_order_event`, called by order state changes
and refunds). No committed change goes unannounced and no rolled-back change is announced; the
dispatcher (``webhook_dispatch``) sends what the outbox holds once it is committed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import Connection

from mcp_checkout import domain
from mcp_checkout.domain import OrderStatus
from mcp_checkout.store import webhooks as store
from mcp_checkout.store.db import note_changed

EVENT_OF_STATUS = {
    OrderStatus.PENDING_PAYMENT: "order.created",
    OrderStatus.PAID: "order.paid",
    OrderStatus.PARTIALLY_FULFILLED: "order.partially_fulfilled",
    OrderStatus.FULFILLED: "order.fulfilled",
    OrderStatus.CANCELED: "order.canceled",
    OrderStatus.EXPIRED: "order.expired",
    OrderStatus.REFUNDED: "order.refunded",
}
EVENT_TYPES = tuple(EVENT_OF_STATUS.values())
# Noted in a transaction that queued deliveries; this process's dispatcher hears it once that commits.
DELIVERIES_QUEUED = "~webhook-deliveries-queued"


def event_body(event_type: str, now: datetime, order: BaseModel) -> str:
    """The exact JSON every delivery of the event carries (and is signed over): type, timestamp and the
    whole order as get_order shows it."""
    envelope = {
        "type": event_type,
        "timestamp": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": order.model_dump(mode="json"),
    }
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


def record_order_event(
    conn: Connection,
    status: OrderStatus,
    order_id: str,
    now: datetime,
    view: Callable[[], BaseModel],
    *,
    endpoints_active: bool = True,
    followers: bool = True,
) -> None:
    """Queue the event for an order that just reached ``status``, in ``conn``'s transaction.

    The merchant's endpoints subscribed to the event hear it, and the UCP platforms' endpoints following
    the order (:func:`follow_order`). Without any this is two small reads and nothing is written.
    ``view`` renders the order as it is now (only called when someone will receive it).
    ``endpoints_active=False``: this transaction has already read that no endpoint of any kind is active
    (then nothing is read at all); ``followers=False``: no UCP platform's endpoint is active, or the order is
    new (nothing can follow it yet), so its followers are not read.
    """
    event_type = EVENT_OF_STATUS.get(status)
    if event_type is None or not endpoints_active:
        return
    endpoint_ids = store.subscribers(conn, event_type, order_id, followers=followers)
    if not endpoint_ids:
        return
    event = {
        "id": domain.new_id("evt"),
        "type": event_type,
        "order_id": order_id,
        "body": event_body(event_type, now, view()),
        "created_at": now,
    }
    store.insert_event(conn, event, endpoint_ids, [domain.new_id("msg") for _ in endpoint_ids])
    note_changed(conn, DELIVERIES_QUEUED)


def follow_order(
    conn: Connection, order_id: str, endpoint_id: str, now: datetime, view: Callable[[], BaseModel]
) -> bool:
    """Send ``order_id``'s events to a UCP platform's endpoint from now on, and queue it the order as it is
    now (the spec's "order created" event with the full order). False (nothing queued) if it already did."""
    if not store.follow(conn, order_id, endpoint_id, now):
        return False
    event_type = EVENT_OF_STATUS[OrderStatus.PENDING_PAYMENT]
    event = {"id": domain.new_id("evt"), "type": event_type, "order_id": order_id,
             "body": event_body(event_type, now, view()), "created_at": now}  # fmt: skip
    store.insert_event(conn, event, [endpoint_id], [domain.new_id("msg")])
    note_changed(conn, DELIVERIES_QUEUED)
    return True
