"""Stock on hand changes made by the merchant: one conditional UPDATE that never goes below the
units reserved by unpaid orders (nor below 0, nor above ``max_stock``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Connection, RowMapping, literal, select, update

from mcp_checkout.store.models import skus

_COLUMNS = (skus.c.sku, skus.c.title, skus.c.stock_on_hand, skus.c.reserved)


def stock_of(conn: Connection, sku: str, *, lock: bool = False) -> RowMapping | None:
    """The SKU's code, title, stock on hand and reserved units (row-locked on PostgreSQL with ``lock``)."""
    query = select(*_COLUMNS).where(skus.c.sku == sku)
    if lock:
        query = query.with_for_update()  # SQLite's write transaction already excludes other writers
    return conn.execute(query).mappings().first()


def set_stock(
    conn: Connection,
    sku: str,
    *,
    set_to: int | None = None,
    delta: int | None = None,
    max_stock: int,
    now: datetime,
) -> RowMapping | None:
    """Set stock on hand to ``set_to`` or move it by ``delta`` if the result stays within
    ``reserved .. max_stock``; returns the SKU's new stock row, or None (and no change) otherwise."""
    if (set_to is None) == (delta is None):
        raise ValueError("exactly one of set_to and delta")
    target: ColumnElement[int] = literal(set_to) if set_to is not None else skus.c.stock_on_hand + (delta or 0)
    statement = (
        update(skus)
        .where(skus.c.sku == sku, target >= skus.c.reserved, target >= 0, target <= max_stock)
        .values(stock_on_hand=target, updated_at=now)
        .returning(*_COLUMNS)
    )
    return conn.execute(statement).mappings().first()
