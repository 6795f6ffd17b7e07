"""Order SQL: orders, their lines and their status history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, func, insert, or_, select, update

from mcp_checkout.store.db import note_changed
from mcp_checkout.store.models import checkout_links, order_events, order_items, orders
from mcp_checkout.store.sealing import email_hash

# Built once: building a Core statement per call costs more than running it (values come as parameters).
_INSERT_ORDER = insert(orders).returning(orders.c.seq)
_INSERT_ITEMS = insert(order_items)
_INSERT_EVENT = insert(order_events)


def order_number(seq: int) -> str:
    """The human number of the order in row ``seq``, as the database sets it on insert (migration 0009)."""
    return f"MC-{seq:06d}"


def insert_order(conn: Connection, values: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> str:
    """Insert an order and its lines; return its human number (set from the row's sequence on insert)."""
    hashed = {**values, "email_hash": email_hash(conn, values.get("email"))}
    seq = conn.execute(_INSERT_ORDER, hashed).scalar_one()
    conn.execute(_INSERT_ITEMS, [{"order_id": values["id"], **line} for line in lines])
    return order_number(seq)


def add_event(
    conn: Connection,
    order_id: str,
    from_status: str | None,
    to_status: str,
    actor: str,
    principal_id: str | None,
    reason: str | None,
    at: datetime,
) -> None:
    conn.execute(
        _INSERT_EVENT,
        {
            "order_id": order_id,
            "from_status": from_status,
            "to_status": to_status,
            "actor": actor,
            "principal_id": principal_id,
            "reason": reason,
            "at": at,
        },
    )
    note_changed(conn, order_id)  # waiters and subscribers of this order hear of it after the commit


# Statements on the get_order path are built once (building a Core statement costs more than running it).
_ORDER = select(orders).where(orders.c.id == bindparam("order_id"))
_ORDER_FOR_UPDATE = _ORDER.with_for_update()  # PostgreSQL row lock; SQLite already holds the write lock
_ITEMS = select(order_items).where(order_items.c.order_id == bindparam("order_id")).order_by(order_items.c.line_no)
_SET_STATUS = update(orders).where(orders.c.id == bindparam("b_id"), orders.c.status == bindparam("b_expected"))
_EVENTS = select(order_events).where(order_events.c.order_id == bindparam("order_id")).order_by(order_events.c.id)


def get(conn: Connection, order_id: str, *, for_update: bool = False) -> RowMapping | None:
    query = _ORDER_FOR_UPDATE if for_update else _ORDER
    return conn.execute(query, {"order_id": order_id}).mappings().first()


def get_by_number(conn: Connection, number: str) -> RowMapping | None:
    return conn.execute(select(orders).where(orders.c.number == number)).mappings().first()


def get_by_cart(conn: Connection, cart_id: str) -> RowMapping | None:
    return conn.execute(select(orders).where(orders.c.cart_id == cart_id)).mappings().first()


def items(conn: Connection, order_id: str) -> Sequence[RowMapping]:
    return conn.execute(_ITEMS, {"order_id": order_id}).mappings().all()


def events(conn: Connection, order_id: str) -> Sequence[RowMapping]:
    return conn.execute(_EVENTS, {"order_id": order_id}).mappings().all()


def last_event_ids(conn: Connection, order_ids: Sequence[str]) -> dict[str, int]:
    """Per order, the id of its newest status-history entry: a version that grows with every change."""
    query = (
        select(order_events.c.order_id, func.max(order_events.c.id))
        .where(order_events.c.order_id.in_(order_ids))
        .group_by(order_events.c.order_id)
    )
    return {order_id: int(last) for order_id, last in conn.execute(query).all()}


def by_reference(conn: Connection, reference: str, limit: int, owner: str | None) -> Sequence[RowMapping]:
    """The newest ``limit`` orders carrying ``reference`` themselves or on one of their checkout links,
    made by ``owner`` (None: by anyone). The owner is filtered before the limit: other callers' orders
    with the same reference can never push the caller's own out of the answer."""
    on_link = select(checkout_links.c.order_id).where(checkout_links.c.merchant_reference_id == reference)
    query = select(orders).where(or_(orders.c.merchant_reference_id == reference, orders.c.id.in_(on_link)))
    if owner is not None:
        query = query.where(orders.c.principal_id == owner)
    query = query.order_by(orders.c.created_at.desc(), orders.c.seq.desc()).limit(limit)
    return conn.execute(query).mappings().all()


def set_status(conn: Connection, order_id: str, expected: str, target: str, stock_state: str, now: datetime) -> bool:
    """Move an order from ``expected`` to ``target``; False if it was no longer ``expected``."""
    values = {"status": target, "stock_state": stock_state, "updated_at": now, "b_id": order_id, "b_expected": expected}
    return conn.execute(_SET_STATUS, values).rowcount == 1


def due_for_expiry(conn: Connection, now: datetime, limit: int) -> Sequence[str]:
    query = (
        select(orders.c.id)
        .where(orders.c.status == "pending_payment", orders.c.expires_at <= now)
        .order_by(orders.c.expires_at)
        .limit(limit)
    )
    return list(conn.execute(query).scalars().all())


def reserved_quantities_of_open_orders(conn: Connection) -> dict[str, int]:
    """Per SKU, the units that orders still holding a reservation hold (for consistency checks)."""
    query = (
        select(order_items.c.sku, order_items.c.quantity)
        .join_from(order_items, orders, orders.c.id == order_items.c.order_id)
        .where(orders.c.stock_state == "reserved")
    )
    totals: dict[str, int] = {}
    for sku, quantity in conn.execute(query).all():
        totals[sku] = totals.get(sku, 0) + quantity
    return totals
