"""Pricing SQL: the reads a quote needs (shipping rates, tax rates, discount codes) and discount-code usage,
counted exactly once per placed order by a conditional update and given back when an unpaid order closes.

The merchant's writes to these tables live in store/rates.py and store/discount_codes.py."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from sqlalchemy import Connection, RowMapping, and_, bindparam, func, insert, literal_column, select, update

from mcp_checkout.domain.pricing import AppliesTo, DiscountCode, DiscountKind, ShippingRate, TaxRate, normalize_code
from mcp_checkout.domain.store_profile import PROFILE_FIELDS, StoreProfile
from mcp_checkout.store.models import (
    discount_codes,
    discount_redemptions,
    order_items,
    orders,
    shipping_rates,
    store_profile,
    tax_rates,
    webhook_endpoints,
)
from mcp_checkout.store.sealing import email_hash
from mcp_checkout.store.webhooks import ACTIVE

APPLIED = "applied"
RELEASED = "released"


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def rate_of(row: RowMapping) -> ShippingRate:
    kind = cast(Literal["shipping", "pickup"], row["kind"] if row["kind"] in ("shipping", "pickup") else "shipping")
    return ShippingRate(
        rate_id=row["id"],
        name=row["name"],
        price=row["price_minor"],
        currency=row["currency"],
        countries=tuple(row["countries"] or ()),
        kind=kind,
        free_over=row["free_over_minor"],
        carrier=row["carrier"],
        min_days=row["min_days"],
        max_days=row["max_days"],
        active=bool(row["active"]),
        pickup_address=row["pickup_address"],
    )


# Built once: building a Core statement per call costs more than running it (values come as parameters).
_RATES_IN = (
    select(shipping_rates)
    .where(shipping_rates.c.currency == bindparam("currency"), shipping_rates.c.active.is_(True))
    .order_by(shipping_rates.c.price_minor, shipping_rates.c.id)
)


def shipping_rates_in(conn: Connection, currency: str) -> list[ShippingRate]:
    """Active rates priced in ``currency``, by id (domain.pricing.rates_for picks those serving a country)."""
    return [rate_of(row) for row in conn.execute(_RATES_IN, {"currency": currency}).mappings()]


@dataclass(frozen=True)
class PlacementSetup:
    """What placing an order reads of the store's set-up, in ONE statement: the store profile (None before
    the first start seeded it), the active shipping rates in the order's currency (as
    :func:`shipping_rates_in`) and whether any webhook endpoint is active (none: the outbox has nothing to
    queue, see service/webhook_outbox.record_order_event)."""

    profile: StoreProfile | None
    rates: list[ShippingRate]
    webhooks_active: bool


# One row per active rate (one row with NULL rate columns when there is none), each carrying the profile's
# columns (NULL before it is seeded) and the count of active webhook endpoints. The one-row anchor keeps
# the profile and the count when the store has no rate in this currency.
_ANCHOR = select(literal_column("1").label("anchor")).subquery("anchor")
_ACTIVE_HOOKS = (
    select(func.count()).select_from(webhook_endpoints).where(webhook_endpoints.c.status == ACTIVE).scalar_subquery()
)
_SETUP = (
    select(
        *(store_profile.c[name].label(f"p_{name}") for name in PROFILE_FIELDS),
        store_profile.c.id.label("p_id"),
        *(column.label(f"r_{column.name}") for column in shipping_rates.c),
        _ACTIVE_HOOKS.label("active_hooks"),
    )
    .select_from(
        _ANCHOR.outerjoin(store_profile, store_profile.c.id == 1).outerjoin(
            shipping_rates,
            and_(shipping_rates.c.currency == bindparam("currency"), shipping_rates.c.active.is_(True)),
        )
    )
    .order_by(shipping_rates.c.price_minor, shipping_rates.c.id)
)
_RATE_KEYS = [(f"r_{column.name}", column.name) for column in shipping_rates.c]


def placement_setup(conn: Connection, currency: str) -> PlacementSetup:
    """The store profile, the active shipping rates in ``currency`` and whether any webhook endpoint is
    active, in one read (what three statements read otherwise)."""
    rows = conn.execute(_SETUP, {"currency": currency}).mappings().all()
    first = rows[0]
    profile = None if first["p_id"] is None else StoreProfile(**{name: first[f"p_{name}"] for name in PROFILE_FIELDS})
    rates = [
        rate_of(cast(RowMapping, {plain: row[key] for key, plain in _RATE_KEYS}))
        for row in rows
        if row["r_id"] is not None
    ]
    return PlacementSetup(profile, rates, bool(first["active_hooks"]))


def tax_rates_in(conn: Connection, country: str) -> list[TaxRate]:
    """Every tax rate of ``country`` (all regions and categories; domain.pricing.tax_rate_for picks one)."""
    query = select(tax_rates).where(tax_rates.c.country == country)
    return [
        TaxRate(
            country=row["country"],
            rate_bps=row["rate_bps"],
            region=row["region"] or "",
            category=row["category"] or "standard",
            applies_to_shipping=bool(row["applies_to_shipping"]),
        )
        for row in conn.execute(query).mappings()
    ]


def applies_to_of(value: Mapping[str, Any] | None) -> AppliesTo:
    value = value or {}
    return AppliesTo(
        categories=tuple(str(c) for c in value.get("categories") or ()),
        skus=tuple(str(s) for s in value.get("skus") or ()),
    )


def code_of(row: RowMapping) -> DiscountCode:
    return DiscountCode(
        code=row["code"],
        kind=cast(DiscountKind, row["kind"]),
        value=row["value"] or 0,
        currency=row["currency"],
        min_subtotal=row["min_subtotal_minor"],
        applies_to=applies_to_of(row["applies_to"]),
        starts_at=_utc(row["starts_at"]),
        ends_at=_utc(row["ends_at"]),
        max_uses=row["max_uses"],
        uses=row["uses"],
        max_uses_per_buyer=row["max_uses_per_buyer"],
        active=bool(row["active"]),
    )


def codes(conn: Connection, wanted: Collection[str]) -> dict[str, DiscountCode]:
    """The discount codes among ``wanted`` that exist, keyed by their stored (upper-case) code."""
    keys = sorted({normalize_code(code) for code in wanted})
    if not keys:
        return {}
    rows = conn.execute(select(discount_codes).where(discount_codes.c.code.in_(keys))).mappings()
    return {row["code"]: code_of(row) for row in rows}


def buyer_uses(conn: Connection, code: str, buyer_key: str) -> int:
    """How many placed orders of this buyer hold ``code`` (released ones do not count)."""
    query = select(func.count()).where(
        discount_redemptions.c.code == code,
        discount_redemptions.c.buyer_key == buyer_key,
        discount_redemptions.c.status == APPLIED,
    )
    return int(conn.execute(query).scalar_one())


def take_use(conn: Connection, code: str) -> bool:
    """Count one use of ``code`` if it has one left: a conditional update only as many orders as there
    are uses can win (on PostgreSQL it also holds the code's row lock until the transaction ends)."""
    result = conn.execute(
        update(discount_codes)
        .where(
            discount_codes.c.code == code,
            (discount_codes.c.max_uses.is_(None)) | (discount_codes.c.uses < discount_codes.c.max_uses),
        )
        .values(uses=discount_codes.c.uses + 1)
    )
    return result.rowcount == 1


def record_redemption(conn: Connection, order_id: str, code: str, buyer_key: str, amount: int, now: datetime) -> None:
    conn.execute(
        insert(discount_redemptions).values(
            order_id=order_id, code=code, buyer_key=buyer_key, amount_minor=amount, status=APPLIED,
            created_at=now, updated_at=now,
        )
    )  # fmt: skip


def release(conn: Connection, order_id: str, now: datetime) -> list[str]:
    """Give back the uses an order took (it was canceled or expired unpaid); once: a released redemption
    stays released. Returns the codes given back."""
    held = list(
        conn.execute(
            select(discount_redemptions.c.code).where(
                discount_redemptions.c.order_id == order_id, discount_redemptions.c.status == APPLIED
            )
        ).scalars()
    )
    for code in held:
        changed = conn.execute(
            update(discount_redemptions)
            .where(
                discount_redemptions.c.order_id == order_id,
                discount_redemptions.c.code == code,
                discount_redemptions.c.status == APPLIED,
            )
            .values(status=RELEASED, updated_at=now)
        )
        if changed.rowcount == 1:
            conn.execute(
                update(discount_codes)
                .where(discount_codes.c.code == code, discount_codes.c.uses > 0)
                .values(uses=discount_codes.c.uses - 1)
            )
    return held


def set_redemption_amounts(conn: Connection, order_id: str, amounts: Mapping[str, int], now: datetime) -> None:
    """The amounts of an order's codes once it is priced again (a free_shipping code waives another charge)."""
    for code, amount in amounts.items():
        conn.execute(
            update(discount_redemptions)
            .where(discount_redemptions.c.order_id == order_id, discount_redemptions.c.code == code)
            .values(amount_minor=amount, updated_at=now)
        )


def redemptions_of(conn: Connection, order_id: str) -> list[tuple[str, int]]:
    """(code, amount) recorded for an order, in code order (the same as its ``discounts``)."""
    query = (
        select(discount_redemptions.c.code, discount_redemptions.c.amount_minor)
        .where(discount_redemptions.c.order_id == order_id)
        .order_by(discount_redemptions.c.code)
    )
    return [(code, amount) for code, amount in conn.execute(query).all()]


def buyer_key(conn: Connection, email: str | None) -> str | None:
    """The key per-buyer discount limits count by: the buyer's keyed email hash (None without an email)."""
    return email_hash(conn, email)


def set_order_pricing(conn: Connection, order_id: str, values: Mapping[str, Any], taxes: Mapping[int, int]) -> bool:
    """Write an unpaid order's re-priced delivery and totals and its lines' tax; False if it is no longer
    pending_payment."""
    changed = conn.execute(
        update(orders).where(orders.c.id == order_id, orders.c.status == "pending_payment").values(**values)
    )
    if changed.rowcount != 1:
        return False
    for line_no, tax in taxes.items():
        conn.execute(
            update(order_items)
            .where(order_items.c.order_id == order_id, order_items.c.line_no == line_no)
            .values(tax_minor=tax)
        )
    return True
