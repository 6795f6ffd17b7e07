"""Order SQL: orders, their lines and their status history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, func, insert, or_, select, update

from mcp_checkout.store.catalog import ORDER_LINES_MAX
from mcp_checkout.store.db import note_changed
from mcp_checkout.store.lean import Builder, Lean, LeanFamily, bound_values
from mcp_checkout.store.models import checkout_links, order_events, order_items, orders
from mcp_checkout.store.sealing import email_hash

# Built once: building a Core statement per call costs more than running it (values come as parameters).
_INSERT_EVENT = insert(order_events)

ORDER_FIELDS = (
    "id", "cart_id", "principal_id", "client_name", "status", "stock_state", "currency", "subtotal_minor",
    "total_minor", "discount_total_minor", "shipping_total_minor", "tax_total_minor", "prices_include_tax",
    "requires_shipping", "email", "email_hash", "buyer", "merchant_reference_id", "shipping_address",
    "fulfillment_option_id", "fulfillment_option", "discount_codes", "request_fingerprint", "created_at",
    "updated_at", "expires_at",
)  # fmt: skip
"""The columns a new order is written with (:func:`insert_order`; ``email_hash`` is computed here)."""
ITEM_FIELDS = (
    "line_no", "sku", "title", "unit_price_minor", "quantity", "line_total_minor", "discount_minor", "tax_minor",
    "tax_category", "requires_shipping", "image_url",
)  # fmt: skip
EVENT_FIELDS = ("from_status", "to_status", "actor", "principal_id", "reason", "at")
_ORDER_ID = bindparam("id", type_=orders.c.id.type)


def _new_order() -> Any:
    return insert(orders).values(bound_values(orders, ORDER_FIELDS)).returning(orders.c.seq)


def _new_items(count: int) -> Any:
    rows = [bound_values(order_items, ITEM_FIELDS, f"_{i}", order_id=_ORDER_ID) for i in range(count)]
    return insert(order_items).values(rows)


def _new_event() -> Any:
    return insert(order_events).values(bound_values(order_events, EVENT_FIELDS, "_event", order_id=_ORDER_ID))


def _new_order_at_once(count: int) -> Builder:
    """PostgreSQL: the order, its lines and its first event in ONE statement (one round trip): data-modifying
    CTEs; the lines' foreign key is checked at the end of the statement, when the order exists."""

    def build(_dialect: str) -> Any:
        order = _new_order().cte("new_order")
        return select(order.c.seq).add_cte(_new_items(count).cte("new_items"), _new_event().cte("new_event"))

    return build


_INSERT_ORDER = Lean(_new_order(), "insert order")
_INSERT_ITEMS = LeanFamily(_new_items, ORDER_LINES_MAX)
_INSERT_FIRST_EVENT = Lean(_new_event(), "insert order event")
_INSERT_ALL = LeanFamily(_new_order_at_once, ORDER_LINES_MAX)


def order_number(seq: int) -> str:
    """The human number of the order in row ``seq``, as the database sets it on insert (migration 0009)."""
    return f"MC-{seq:06d}"


def insert_order(
    conn: Connection, values: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], event: Mapping[str, Any]
) -> str:
    """Insert a new order (:data:`ORDER_FIELDS` but ``email_hash``), its lines (:data:`ITEM_FIELDS`) and its
    first status event (:data:`EVENT_FIELDS`); return its human number (set from the row's sequence on insert).
    Lean statements: on PostgreSQL one, on SQLite three (no round trips there)."""
    params: dict[str, Any] = dict(values)
    params["email_hash"] = email_hash(conn, values.get("email"))
    for name, key in _EVENT_KEYS:
        params[key] = event[name]
    count = len(lines)
    if conn.dialect.name == "postgresql" and count <= ORDER_LINES_MAX:
        _bind_lines(params, lines)
        seq = _INSERT_ALL.get(count).rows(conn, params)[0][0]
    else:
        seq = _INSERT_ORDER.rows(conn, params)[0][0]
        for start in range(0, count, ORDER_LINES_MAX):
            part = lines[start : start + ORDER_LINES_MAX]
            _bind_lines(params, part)  # the statement for len(part) lines reads only these lines' keys
            _INSERT_ITEMS.get(len(part)).rows(conn, params)
        _INSERT_FIRST_EVENT.rows(conn, params)
    note_changed(conn, values["id"])  # waiters and subscribers of this order hear of it after the commit
    return order_number(seq)


def _bind_lines(params: dict[str, Any], lines: Sequence[Mapping[str, Any]]) -> None:
    for keys, line in zip(_LINE_KEYS, lines, strict=False):
        for name, key in keys:
            params[key] = line[name]


# The bind names of the insert statements' per-line and event values (field, bind name), made once.
_LINE_KEYS = tuple(tuple((name, f"{name}_{i}") for name in ITEM_FIELDS) for i in range(ORDER_LINES_MAX))
_EVENT_KEYS = tuple((name, f"{name}_event") for name in EVENT_FIELDS)


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
