"""The merchant's writes and lists of discount codes (store/pricing.py reads and counts their uses)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from mcp_checkout.store.db import dialect_insert
from mcp_checkout.store.models import discount_codes, skus

CODE_FIELDS = (
    "kind", "value", "currency", "min_subtotal_minor", "starts_at", "ends_at", "max_uses", "max_uses_per_buyer",
    "applies_to", "active",
)  # fmt: skip


def code(conn: Connection, wanted: str) -> dict[str, Any] | None:
    row = conn.execute(select(discount_codes).where(discount_codes.c.code == wanted)).mappings().first()
    return None if row is None else dict(row)


def save(conn: Connection, wanted: str, values: Mapping[str, Any], now: datetime) -> bool:
    """Create the code or replace its settings, keeping its use count. False (nothing written) when
    ``max_uses`` is below the uses counted already: the check and the write are one conditional UPDATE, so
    an order counting a use at the same moment cannot slip past it."""
    fields = {name: values[name] for name in CODE_FIELDS}
    max_uses = fields["max_uses"]
    for _ in range(2):
        condition = discount_codes.c.code == wanted
        if max_uses is not None:
            condition &= discount_codes.c.uses <= max_uses
        if conn.execute(update(discount_codes).where(condition).values(**fields, updated_at=now)).rowcount:
            return True
        if code(conn, wanted) is not None:
            return False
        insert = dialect_insert(conn, discount_codes).values(
            code=wanted, uses=0, created_at=now, updated_at=now, **fields
        )
        if conn.execute(insert.on_conflict_do_nothing(index_elements=["code"])).rowcount:
            return True
    return False  # created by someone else at this very moment, with more uses than max_uses already


def known_scope(
    conn: Connection, sku_codes: Collection[str], category_keys: Collection[str]
) -> tuple[set[str], set[str]]:
    """Which of these SKU codes and category keys the catalog has on sale (archived SKUs do not count)."""
    on_sale = skus.c.archived_at.is_(None)
    found_skus = set(conn.execute(select(skus.c.sku).where(skus.c.sku.in_(sorted(sku_codes)), on_sale)).scalars())
    keys = select(skus.c.category_key).where(skus.c.category_key.in_(sorted(category_keys)), on_sale).distinct()
    return found_skus, set(conn.execute(keys).scalars())


def listed(conn: Connection, *, active_only: bool = False) -> list[dict[str, Any]]:
    query = select(discount_codes).order_by(discount_codes.c.code)
    if active_only:
        query = query.where(discount_codes.c.active.is_(True))
    return [dict(row) for row in conn.execute(query).mappings()]
