"""Removing SKUs (``delete_product``): never-ordered SKUs are deleted, ordered ones archived, and products left
without SKUs deleted. Runs in the caller's write transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, exists, select, update

from mcp_checkout.store.catalog_write import one_of
from mcp_checkout.store.models import cart_items, order_items, products, skus


@dataclass(frozen=True)
class Removal:
    deleted: list[str]
    """SKU codes deleted (never ordered)."""
    archived: list[str]
    """SKU codes archived: they have orders, so they stay for those orders but are no longer found or sold."""
    products_deleted: list[str]
    """Product ids deleted because none of their SKUs is left."""


def sku_codes_of_product(conn: Connection, product_id: str) -> list[str]:
    """Codes of a product's SKUs, archived ones included; locked on PostgreSQL (``FOR UPDATE``)."""
    query = select(skus.c.sku).where(skus.c.product_id == product_id).order_by(skus.c.id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return list(conn.execute(query).scalars())


def remove_skus(conn: Connection, codes: Sequence[str], now: datetime) -> Removal:
    """Delete the SKUs ``codes`` that were never ordered and archive the others; drop them from open
    carts; delete products left without SKUs. Runs in the caller's write transaction."""
    wanted = sorted(set(codes))
    if not wanted:
        return Removal([], [], [])
    rows = conn.execute(select(skus.c.sku, skus.c.product_id).where(one_of(conn, skus.c.sku, wanted))).all()
    ordered = set(
        conn.execute(select(order_items.c.sku).distinct().where(one_of(conn, order_items.c.sku, wanted))).scalars()
    )
    archive = sorted(sku for sku, _product in rows if sku in ordered)
    remove = sorted(sku for sku, _product in rows if sku not in ordered)
    if archive or remove:
        conn.execute(delete(cart_items).where(one_of(conn, cart_items.c.sku, archive + remove)))
    if archive:
        conn.execute(
            update(skus)
            .where(one_of(conn, skus.c.sku, archive), skus.c.archived_at.is_(None))
            .values(archived_at=now, updated_at=now)
        )
    gone: list[str] = []
    if remove:
        conn.execute(delete(skus).where(one_of(conn, skus.c.sku, remove)))
        touched = sorted({product for _sku, product in rows})
        empty = (
            select(products.c.id)
            .where(one_of(conn, products.c.id, touched))
            .where(~exists().where(skus.c.product_id == products.c.id))
        )
        gone = list(conn.execute(empty).scalars())
        if gone:
            conn.execute(delete(products).where(one_of(conn, products.c.id, gone)))
    return Removal(deleted=remove, archived=archive, products_deleted=sorted(gone))
