"""Prefix look-ups for argument completion: SKU codes, categories and order ids."""

from __future__ import annotations

from sqlalchemy import Connection, String, func, select
from sqlalchemy.sql.elements import ColumnElement

from mcp_checkout.store.models import orders, skus


def _starts_with(column: ColumnElement[str], prefix: str) -> ColumnElement[bool]:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"{escaped}%", escape="\\")


def sku_codes(conn: Connection, prefix: str, limit: int) -> list[str]:
    query = select(skus.c.sku).where(_starts_with(skus.c.sku, prefix)).order_by(skus.c.sku).limit(limit)
    return list(conn.execute(query).scalars())


def category_names(conn: Connection, prefix: str, limit: int) -> list[str]:
    category = skus.c.category
    query = (
        select(category)
        .where(category != "", _starts_with(func.lower(category), prefix.lower()))
        .group_by(category)
        .order_by(category)
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def order_ids(conn: Connection, prefix: str, owner_id: str | None, limit: int) -> list[str]:
    """Newest first; only ``owner_id``'s orders unless it is None (the caller sees every order)."""
    query = select(orders.c.id).where(_starts_with(orders.c.id.cast(String), prefix))
    if owner_id is not None:
        query = query.where(orders.c.principal_id == owner_id)
    return list(conn.execute(query.order_by(orders.c.seq.desc()).limit(limit)).scalars())
