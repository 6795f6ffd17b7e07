"""Pricing SQL: the reads a quote needs (shipping rates, tax rates, discount codes; service/store_profile.py
keeps them per configuration stamp) and discount-code usage, counted exactly once per placed order by a
conditional update and given back when an unpaid order closes.

The merchant's writes to these tables live in store/rates.py and store/discount_codes.py."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, cast

from sqlalchemy import (
    BindParameter,
    Connection,
    RowMapping,
    String,
    bindparam,
    func,
    insert,
    literal,
    select,
    update,
)

from mcp_checkout.domain.pricing import AppliesTo, DiscountCode, DiscountKind, ShippingRate, TaxRate, normalize_code
from mcp_checkout.store.lean import Lean, bound_values
from mcp_checkout.store.models import (
    discount_codes,
    discount_redemptions,
    order_items,
    orders,
    shipping_rates,
    tax_rates,
)
from mcp_checkout.store.sealing import email_hash

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


_ACTIVE_RATES = (
    select(shipping_rates)
    .where(shipping_rates.c.active.is_(True))
    .order_by(shipping_rates.c.price_minor, shipping_rates.c.id)
)
_TAX_RATES = select(tax_rates)


def active_shipping_rates(conn: Connection) -> list[ShippingRate]:
    """Every active rate, cheapest first (then by id); domain.pricing.rates_for picks those serving a cart."""
    return [rate_of(row) for row in conn.execute(_ACTIVE_RATES).mappings()]


def all_tax_rates(conn: Connection) -> list[TaxRate]:
    """Every tax rate (all countries, regions and categories; domain.pricing.tax_rate_for picks one)."""
    return [
        TaxRate(
            country=row["country"],
            rate_bps=row["rate_bps"],
            region=row["region"] or "",
            category=row["category"] or "standard",
            applies_to_shipping=bool(row["applies_to_shipping"]),
        )
        for row in conn.execute(_TAX_RATES).mappings()
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


def code_uses(conn: Connection, wanted: Collection[str]) -> dict[str, int]:
    """How many uses each of these codes has counted so far (they change with every order; settings do not)."""
    query = select(discount_codes.c.code, discount_codes.c.uses).where(discount_codes.c.code.in_(wanted))
    return {str(code): int(uses) for code, uses in conn.execute(query).all()}


# Built once: building a Core statement per call costs more than running it (values come as parameters).
_CODE: BindParameter[str] = bindparam("r_code")
_BUYER: BindParameter[str] = bindparam("r_buyer")
_BUYER_USES = select(func.count()).where(
    discount_redemptions.c.code == _CODE,
    discount_redemptions.c.buyer_key == _BUYER,
    discount_redemptions.c.status == APPLIED,
)
# A use is taken by a conditional update only as many orders as there are uses can win; RETURNING says
# whether this one did. The redemption's columns: see _redemption. Both run lean (store/lean.py): they are
# on create_order's path.
_TAKE_USE = (
    update(discount_codes)
    .where(
        discount_codes.c.code == bindparam("code", type_=discount_codes.c.code.type),
        (discount_codes.c.max_uses.is_(None)) | (discount_codes.c.uses < discount_codes.c.max_uses),
    )
    .values(uses=discount_codes.c.uses + 1)
    .returning(discount_codes.c.code)
)
_REDEMPTION_FIELDS = ("order_id", "buyer_key", "amount_minor")
_REDEMPTION_COLUMNS = ("order_id", "code", "buyer_key", "amount_minor", "status", "created_at", "updated_at")


def _redemption(code: Any) -> dict[str, Any]:
    """The values of a new redemption row: bound by name, ``code`` as given, applied, created now."""
    now = bindparam("now", type_=discount_redemptions.c.created_at.type)
    fixed = {"code": code, "status": literal(APPLIED, String), "created_at": now, "updated_at": now}
    return bound_values(discount_redemptions, _REDEMPTION_FIELDS, **fixed)


def _redeem_at_once(_dialect: str) -> Any:
    """PostgreSQL: the use and the redemption in ONE statement (one round trip): the data-modifying CTE runs
    once, and the redemption is inserted from its row only if it took a use."""
    taken = _TAKE_USE.cte("taken")
    values = _redemption(taken.c.code)
    chosen = select(*(values[name] for name in _REDEMPTION_COLUMNS)).select_from(taken)
    return (
        insert(discount_redemptions)
        .from_select(list(_REDEMPTION_COLUMNS), chosen)
        .add_cte(taken)
        .returning(discount_redemptions.c.code)
    )


_TAKE = Lean(_TAKE_USE, "take a discount code's use")
_RECORD = Lean(
    insert(discount_redemptions).values(_redemption(bindparam("code", type_=discount_redemptions.c.code.type))),
    "record a redemption",
)
_REDEEM_AT_ONCE = Lean(_redeem_at_once, "take a use and record its redemption")


def buyer_uses(conn: Connection, code: str, buyer_key: str) -> int:
    """How many placed orders of this buyer hold ``code`` (released ones do not count)."""
    return int(conn.execute(_BUYER_USES, {"r_code": code, "r_buyer": buyer_key}).scalar_one())


def take_use(conn: Connection, code: str) -> bool:
    """Count one use of ``code`` if it has one left: a conditional update only as many orders as there
    are uses can win (on PostgreSQL it also holds the code's row lock until the transaction ends)."""
    return bool(_TAKE.rows(conn, {"code": code}))


def redeem(conn: Connection, order_id: str, code: str, buyer_key: str, amount: int, now: datetime) -> bool:
    """Count one use of ``code`` for the order ``order_id`` (inserted already) and record its redemption, if
    the code has a use left; False, and nothing written, if not. The use is taken by :func:`take_use`'s
    conditional update (on PostgreSQL in the same statement as the redemption's insert), so only as many
    orders as there are uses get one, and the code's row stays locked until the transaction ends."""
    values = {"code": code, "order_id": order_id, "buyer_key": buyer_key, "amount_minor": amount, "now": now}
    if conn.dialect.name == "postgresql":
        return bool(_REDEEM_AT_ONCE.rows(conn, values))
    if not take_use(conn, code):
        return False
    _RECORD.rows(conn, values)
    return True


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
