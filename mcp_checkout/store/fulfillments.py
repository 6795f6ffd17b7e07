"""Fulfilment SQL: shipments of an order (``fulfillments``) and the shipped units of its lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, insert, select, update

from mcp_checkout.store.models import fulfillments, order_items

_OF_ORDER = (
    select(fulfillments)
    .where(fulfillments.c.order_id == bindparam("order_id"))
    .order_by(fulfillments.c.created_at, fulfillments.c.id)
)


def insert_fulfillment(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(fulfillments).values(**values))


def of_order(conn: Connection, order_id: str) -> Sequence[RowMapping]:
    return conn.execute(_OF_ORDER, {"order_id": order_id}).mappings().all()


def ship_units(conn: Connection, order_id: str, line_no: int, quantity: int) -> bool:
    """Count ``quantity`` more units of a line as shipped, never beyond what was ordered; False if that
    many are no longer left to ship (nothing changes then)."""
    result = conn.execute(
        update(order_items)
        .where(
            order_items.c.order_id == order_id,
            order_items.c.line_no == line_no,
            order_items.c.fulfilled_quantity + quantity <= order_items.c.quantity,
        )
        .values(fulfilled_quantity=order_items.c.fulfilled_quantity + quantity)
    )
    return result.rowcount == 1
