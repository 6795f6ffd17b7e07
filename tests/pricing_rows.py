"""Shipping rates, tax rates and discount codes written straight into the tables, for pricing tests (the
merchant tools that write them are tested on their own)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from mcp_checkout.domain import utc_now
from mcp_checkout.store.models import discount_codes, shipping_rates, tax_rates


def add_shipping_rate(
    conn: Connection,
    rate_id: str,
    price: int,
    countries: Sequence[str] = ("US",),
    *,
    currency: str = "USD",
    name: str | None = None,
    free_over: int | None = None,
    kind: str = "shipping",
    carrier: str | None = None,
    min_days: int | None = None,
    max_days: int | None = None,
    active: bool = True,
) -> None:
    now = utc_now()
    conn.execute(
        insert(shipping_rates).values(
            id=rate_id, kind=kind, name=name or rate_id.title(), countries=list(countries), price_minor=price,
            currency=currency, free_over_minor=free_over, min_days=min_days, max_days=max_days, carrier=carrier,
            active=active, created_at=now, updated_at=now,
        )
    )  # fmt: skip


def add_tax_rate(
    conn: Connection,
    country: str,
    rate_bps: int,
    *,
    region: str = "",
    category: str = "standard",
    applies_to_shipping: bool = False,
) -> None:
    now = utc_now()
    conn.execute(
        insert(tax_rates).values(
            country=country, region=region, category=category, rate_bps=rate_bps,
            applies_to_shipping=applies_to_shipping, created_at=now, updated_at=now,
        )
    )  # fmt: skip


def add_discount_code(
    conn: Connection,
    code: str,
    kind: str = "percent",
    value: int = 1000,
    *,
    currency: str | None = None,
    min_subtotal: int | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    max_uses: int | None = None,
    max_uses_per_buyer: int | None = None,
    uses: int = 0,
    applies_to: dict[str, Any] | None = None,
    active: bool = True,
) -> None:
    now = utc_now()
    conn.execute(
        insert(discount_codes).values(
            code=code.upper(), kind=kind, value=value, currency=currency, min_subtotal_minor=min_subtotal,
            starts_at=starts_at, ends_at=ends_at, max_uses=max_uses, max_uses_per_buyer=max_uses_per_buyer,
            uses=uses, applies_to=applies_to or {"all": True}, active=active, created_at=now, updated_at=now,
        )
    )  # fmt: skip
