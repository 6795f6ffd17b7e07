"""The merchant's writes and lists of shipping and tax rates (store/pricing.py reads them for quotes)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select

from mcp_checkout.store.db import dialect_insert
from mcp_checkout.store.models import shipping_rates, skus, tax_rates

SHIPPING_FIELDS = (
    "kind", "name", "countries", "price_minor", "currency", "free_over_minor", "min_days", "max_days", "carrier",
    "pickup_address", "active",
)  # fmt: skip
TAX_FIELDS = ("country", "region", "category", "rate_bps", "applies_to_shipping")


def shipping_rate(conn: Connection, rate_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(shipping_rates).where(shipping_rates.c.id == rate_id)).mappings().first()
    return None if row is None else dict(row)


def save_shipping_rate(conn: Connection, rate_id: str, values: Mapping[str, Any], now: datetime) -> None:
    """Create the rate ``rate_id`` or replace all its fields (``values`` holds every SHIPPING_FIELDS entry)."""
    fields = {name: values[name] for name in SHIPPING_FIELDS}
    statement = dialect_insert(conn, shipping_rates).values(id=rate_id, created_at=now, updated_at=now, **fields)
    conn.execute(statement.on_conflict_do_update(index_elements=["id"], set_={**fields, "updated_at": now}))


def shipping_rates_listed(conn: Connection) -> list[dict[str, Any]]:
    query = select(shipping_rates).order_by(shipping_rates.c.kind.desc(), shipping_rates.c.id)
    return [dict(row) for row in conn.execute(query).mappings()]


def _tax_key(country: str, region: str, category: str) -> Any:
    return (tax_rates.c.country == country) & (tax_rates.c.region == region) & (tax_rates.c.category == category)


def tax_rate(conn: Connection, country: str, region: str, category: str) -> dict[str, Any] | None:
    row = conn.execute(select(tax_rates).where(_tax_key(country, region, category))).mappings().first()
    return None if row is None else dict(row)


def save_tax_rate(conn: Connection, values: Mapping[str, Any], now: datetime) -> None:
    """Create or replace the rate of (country, region, category)."""
    fields = {name: values[name] for name in TAX_FIELDS}
    statement = dialect_insert(conn, tax_rates).values(created_at=now, updated_at=now, **fields)
    changes = {"rate_bps": fields["rate_bps"], "applies_to_shipping": fields["applies_to_shipping"], "updated_at": now}
    conn.execute(statement.on_conflict_do_update(index_elements=["country", "region", "category"], set_=changes))


def delete_tax_rate(conn: Connection, country: str, region: str, category: str) -> bool:
    return bool(conn.execute(delete(tax_rates).where(_tax_key(country, region, category))).rowcount)


def tax_rates_listed(conn: Connection, country: str | None = None) -> list[dict[str, Any]]:
    query = select(tax_rates).order_by(tax_rates.c.country, tax_rates.c.region, tax_rates.c.category)
    if country is not None:
        query = query.where(tax_rates.c.country == country)
    return [dict(row) for row in conn.execute(query).mappings()]


def unshipped_currencies(conn: Connection) -> dict[str, int]:
    """Per currency, how many SKUs on sale require shipping while no active shipping rate is priced in it
    (a cart in that currency then asks for no address and charges no shipping)."""
    rated = select(shipping_rates.c.currency).where(shipping_rates.c.active.is_(True))
    query = (
        select(skus.c.currency, func.count())
        .where(skus.c.archived_at.is_(None), skus.c.requires_shipping.is_(True), skus.c.currency.not_in(rated))
        .group_by(skus.c.currency)
        .order_by(skus.c.currency)
    )
    return {currency: int(count) for currency, count in conn.execute(query).all()}
