"""Cart SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, delete, insert, select, update

from mcp_checkout.store.catalog import SKU_COLUMNS
from mcp_checkout.store.models import cart_items, carts, skus
from mcp_checkout.store.sealing import email_hash
from mcp_checkout.store.store_profile import CONFIG_STAMP


def create(conn: Connection, cart_id: str, principal_id: str, currency: str, now: datetime) -> None:
    conn.execute(
        insert(carts).values(
            id=cart_id, principal_id=principal_id, currency=currency, status="open", created_at=now, updated_at=now
        )
    )


# Built once: every cart call runs them, and building a statement costs more than running it.
_GET = select(carts, CONFIG_STAMP).where(carts.c.id == bindparam("cart_id"))
_LINES = (
    select(cart_items.c.quantity, *SKU_COLUMNS)
    .join_from(cart_items, skus, skus.c.sku == cart_items.c.sku)
    .where(cart_items.c.cart_id == bindparam("cart_id"))
    .order_by(cart_items.c.added_at, cart_items.c.sku)
)


def get(conn: Connection, cart_id: str) -> RowMapping | None:
    """The cart row, with the store's configuration stamp read in the same statement (``config_stamp``)."""
    return conn.execute(_GET, {"cart_id": cart_id}).mappings().first()


def lines(conn: Connection, cart_id: str) -> Sequence[RowMapping]:
    """Cart lines joined with their SKU's current price and stock, in the order they were added."""
    return conn.execute(_LINES, {"cart_id": cart_id}).mappings().all()


def line_count(conn: Connection, cart_id: str) -> int:
    return len(conn.execute(select(cart_items.c.sku).where(cart_items.c.cart_id == cart_id)).all())


def get_quantity(conn: Connection, cart_id: str, sku: str) -> int | None:
    query = select(cart_items.c.quantity).where(cart_items.c.cart_id == cart_id, cart_items.c.sku == sku)
    return conn.execute(query).scalar_one_or_none()


def set_quantity(conn: Connection, cart_id: str, sku: str, quantity: int, now: datetime) -> None:
    changed = conn.execute(
        update(cart_items).where(cart_items.c.cart_id == cart_id, cart_items.c.sku == sku).values(quantity=quantity)
    )
    if changed.rowcount == 0:
        conn.execute(insert(cart_items).values(cart_id=cart_id, sku=sku, quantity=quantity, added_at=now))
    touch(conn, cart_id, now)


def remove(conn: Connection, cart_id: str, sku: str, now: datetime) -> bool:
    removed = conn.execute(delete(cart_items).where(cart_items.c.cart_id == cart_id, cart_items.c.sku == sku))
    touch(conn, cart_id, now)
    return removed.rowcount == 1


def set_details(conn: Connection, cart_id: str, values: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Set some of the cart's buyer (its email's keyed hash beside it), shipping address, fulfillment option
    and discount codes. Returns the columns written, as a read of the row would now give them."""
    changes = dict(values)
    if "buyer" in changes:
        buyer = changes["buyer"]
        changes["email_hash"] = email_hash(conn, buyer.get("email") if buyer else None)
    changes["updated_at"] = now
    conn.execute(update(carts).where(carts.c.id == cart_id).values(**changes))
    return changes


def touch(conn: Connection, cart_id: str, now: datetime) -> None:
    conn.execute(update(carts).where(carts.c.id == cart_id).values(updated_at=now))


def mark_ordered(conn: Connection, cart_id: str, order_id: str, now: datetime) -> bool:
    """Bind the cart to its one order; False if another order got it first."""
    result = conn.execute(
        update(carts)
        .where(carts.c.id == cart_id, carts.c.order_id.is_(None), carts.c.status == "open")
        .values(status="ordered", order_id=order_id, updated_at=now)
    )
    return result.rowcount == 1


def cancel(conn: Connection, cart_id: str, now: datetime) -> bool:
    """Close an open cart for good; False if it was not open (ordered or canceled already)."""
    result = conn.execute(
        update(carts).where(carts.c.id == cart_id, carts.c.status == "open").values(status="canceled", updated_at=now)
    )
    return result.rowcount == 1
