"""Catalog writes: upsert products and SKUs (by SKU code) in bulk."""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select, update

from mcp_checkout.domain import CatalogRow
from mcp_checkout.store.models import products, skus

_CHUNK = 500


@dataclass(frozen=True)
class UpsertCounts:
    created: int
    updated: int


def _category_key(category: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", category).lower().split())


def _existing_products(conn: Connection, rows: Sequence[CatalogRow]) -> dict[str, str]:
    """Product key → product id for the products these rows name that already exist."""
    found: dict[str, str] = {}
    external = sorted({row.external_id for row in rows if row.external_id})
    for start in range(0, len(external), _CHUNK):
        chunk = external[start : start + _CHUNK]
        query = select(products.c.id, products.c.external_id).where(products.c.external_id.in_(chunk))
        for pid, ext in conn.execute(query):
            found[f"ext:{ext}"] = pid
    codes = sorted({row.sku for row in rows})
    for start in range(0, len(codes), _CHUNK):
        chunk = codes[start : start + _CHUNK]
        query = (
            select(products.c.id, products.c.external_id, products.c.name)
            .join_from(skus, products, products.c.id == skus.c.product_id)
            .where(skus.c.sku.in_(chunk))
        )
        for pid, ext, name in conn.execute(query):
            key = f"ext:{ext}" if ext else f"name:{' '.join(name.lower().split())}"
            found.setdefault(key, pid)
    return found


def existing_sku_codes(conn: Connection, codes: Sequence[str]) -> dict[str, int]:
    """SKU code → reserved units, for the codes that exist."""
    result: dict[str, int] = {}
    ordered = sorted(set(codes))
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        for code, reserved in conn.execute(select(skus.c.sku, skus.c.reserved).where(skus.c.sku.in_(chunk))):
            result[code] = reserved
    return result


def upsert_catalog(conn: Connection, rows: Sequence[CatalogRow], now: datetime) -> UpsertCounts:
    """Insert or update products and SKUs. SKU codes are the identity; stock is set absolutely
    (callers check it is not below what is reserved)."""
    product_ids = _existing_products(conn, rows)
    new_products: list[dict[str, object]] = []
    product_updates: dict[str, dict[str, object]] = {}
    created_ids: set[str] = set()
    for row in rows:
        pid = product_ids.get(row.product_key)
        values = {"name": row.product_name, "description": row.description, "category": row.category}
        if pid is None:
            pid = f"prod_{secrets.token_hex(12)}"
            product_ids[row.product_key] = pid
            created_ids.add(pid)
            new_products.append(
                {"id": pid, "external_id": row.external_id, "created_at": now, "updated_at": now, **values}
            )
        elif pid not in created_ids:
            product_updates[pid] = {"b_id": pid, "updated_at": now, **values}
    if new_products:
        conn.execute(insert(products), new_products)
    if product_updates:
        conn.execute(
            update(products)
            .where(products.c.id == bindparam("b_id"))
            .values(
                name=bindparam("name"),
                description=bindparam("description"),
                category=bindparam("category"),
                updated_at=bindparam("updated_at"),
            ),
            list(product_updates.values()),
        )

    existing = existing_sku_codes(conn, [row.sku for row in rows])
    inserts: list[dict[str, object]] = []
    updates: list[dict[str, object]] = []
    for row in rows:
        values: dict[str, object] = {
            "product_id": product_ids[row.product_key],
            "name": row.sku_name,
            "title": row.title,
            "category": row.category,
            "category_key": _category_key(row.category),
            "search_text": row.description,
            "price_minor": row.price_minor,
            "currency": row.currency,
            "stock_on_hand": row.stock,
            "updated_at": now,
        }
        if row.sku in existing:
            updates.append({"b_sku": row.sku, **values})
        else:
            inserts.append({"sku": row.sku, "reserved": 0, "created_at": now, **values})
            existing[row.sku] = 0
    if inserts:
        conn.execute(insert(skus), inserts)
    if updates:
        conn.execute(
            update(skus)
            .where(skus.c.sku == bindparam("b_sku"))
            .values({key: bindparam(key) for key in updates[0] if key != "b_sku"}),
            updates,
        )
    return UpsertCounts(created=len(inserts), updated=len(updates))
