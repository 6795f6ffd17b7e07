"""The merchant's shipping and tax rates: checked, stored, listed, every change audited. Pricing reads them
(service/quotes.py through store/pricing.py); the rules that pick a rate for a cart are in domain/pricing.py.

- Shipping rate: ``rate_id`` is its identity; an upsert states the whole rate (omitted values take their
  defaults). ``countries`` are ISO 3166-1 alpha-2 codes, or ``["*"]`` alone for the rest of the world.
  Amounts are integer minor units of ``currency`` (default: the store's). ``kind`` ``pickup`` needs a pickup
  address (the merchant's own, checked like a shipping address); ``shipping`` takes none.
- Tax rate: one per (country, region, category); region "" is the whole country; ``rate_bps`` 0..10000.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from sqlalchemy import Connection

from mcp_checkout.domain import Clock, Principal
from mcp_checkout.domain.address import REST_OF_WORLD, check_country, check_region
from mcp_checkout.domain.pricing import BPS, STANDARD
from mcp_checkout.domain.store_profile import StoreProfile
from mcp_checkout.errors import InvalidInput
from mcp_checkout.service import audit, config_checks, policy
from mcp_checkout.service.store_profile import current
from mcp_checkout.service.views import (
    MoneyOut,
    ShippingAddressOut,
    ShippingRateList,
    ShippingRateOut,
    TaxRateDeleted,
    TaxRateList,
    TaxRateOut,
)
from mcp_checkout.store import rates as rate_store
from mcp_checkout.store.db import Database

MAX_RATE_NAME: Final = 120
MAX_CARRIER: Final = 80
MAX_DAYS: Final = 365
MAX_COUNTRIES: Final = 250
_RATE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_ADDRESS_LIMITS: Final = {"name": 120, "line1": 200, "line2": 200, "city": 100, "region": 100, "postal_code": 20}
_REQUIRED_ADDRESS: Final = ("name", "line1", "city", "postal_code", "country")


@dataclass(frozen=True)
class ShippingRateInput:
    rate_id: str
    name: str
    countries: Sequence[str]
    price: int
    currency: str | None = None
    free_over: int | None = None
    min_days: int | None = None
    max_days: int | None = None
    carrier: str | None = None
    active: bool = True
    kind: Literal["shipping", "pickup"] = "shipping"
    pickup_address: Mapping[str, str | None] | None = None


@dataclass(frozen=True)
class TaxRateInput:
    country: str
    rate_bps: int
    region: str | None = None
    category: str | None = None
    applies_to_shipping: bool = False


# ---------------------------------------------------------------- checks
def check_rate_id(value: str) -> str:
    if not _RATE_ID.fullmatch(value):
        raise InvalidInput(
            f"rate_id {value[:64]!r} must be 1-64 of A-Z a-z 0-9 . _ : - (e.g. standard-us).",
            details={"field": "rate_id"},
        )
    return value


def check_countries(values: Sequence[str]) -> list[str]:
    """Distinct upper-case alpha-2 codes, sorted; or ["*"] alone (the rest of the world)."""
    if not values or len(values) > MAX_COUNTRIES:
        raise InvalidInput(
            f'countries must list 1-{MAX_COUNTRIES} ISO 3166-1 alpha-2 codes (e.g. ["US", "CA"]), or ["*"] for '
            "the rest of the world.",
            details={"field": "countries"},
        )
    if REST_OF_WORLD in (value.strip() for value in values):
        if len(values) != 1:
            raise InvalidInput(
                '"*" (the rest of the world) stands alone: send countries=["*"] as its own rate.',
                details={"field": "countries"},
            )
        return [REST_OF_WORLD]
    return sorted({check_country(value, f"countries[{index}]") for index, value in enumerate(values)})


def check_address(address: Mapping[str, str | None], field: str) -> dict[str, str | None]:
    """A postal address (the merchant's pickup point): required parts present, country and region real."""
    checked: dict[str, str | None] = {}
    for part in _REQUIRED_ADDRESS:
        value = address.get(part)
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{field}.{part} is required.", details={"field": f"{field}.{part}"})
    country = check_country(str(address["country"]), f"{field}.country")
    for part, limit in _ADDRESS_LIMITS.items():
        value = address.get(part)
        checked[part] = config_checks.optional_text(value, f"{field}.{part}", limit) if value is not None else None
    region = checked.get("region")
    checked["region"] = check_region(country, region, f"{field}.region") if region else None
    checked["country"] = country
    return checked


def check_destination(address: Mapping[str, str | None], field: str) -> dict[str, str | None]:
    """Where a cart is quoted before the buyer gives a street: ``country`` (required, ISO 3166-1), ``region``,
    ``postal_code`` and the recipient's ``name`` (optional), checked like the same parts of a postal address."""
    country = address.get("country")
    if not isinstance(country, str) or not country.strip():
        raise InvalidInput(f"{field}.country is required.", details={"field": f"{field}.country"})
    code = check_country(country, f"{field}.country")
    parts: dict[str, str | None] = {}
    for part in ("name", "region", "postal_code"):
        value = address.get(part)
        parts[part] = config_checks.optional_text(value, f"{field}.{part}", _ADDRESS_LIMITS[part]) if value else None
    region = parts["region"]
    return {
        "country": code,
        "region": check_region(code, region, f"{field}.region") if region else None,
        "postal_code": parts["postal_code"],
        "name": parts["name"],
    }


def _days(value: int | None, field: str) -> int | None:
    return None if value is None else config_checks.amount(value, field, maximum=MAX_DAYS)


def _shipping_values(command: ShippingRateInput, profile: StoreProfile) -> dict[str, Any]:
    check_rate_id(command.rate_id)
    if command.kind not in ("shipping", "pickup"):
        raise InvalidInput("kind must be shipping or pickup.", details={"field": "kind"})
    min_days, max_days = _days(command.min_days, "min_days"), _days(command.max_days, "max_days")
    if min_days is not None and max_days is not None and min_days > max_days:
        raise InvalidInput(
            f"min_days {min_days} is above max_days {max_days}; swap them.", details={"field": "min_days"}
        )
    if command.kind == "pickup" and command.pickup_address is None:
        raise InvalidInput(
            "A pickup rate needs pickup_address: where the buyer collects (name, line1, city, postal_code, country).",
            details={"field": "pickup_address"},
        )
    if command.kind == "shipping" and command.pickup_address is not None:
        raise InvalidInput(
            'pickup_address is for kind="pickup" only; leave it out of a shipping rate.',
            details={"field": "pickup_address"},
        )
    free_over = command.free_over
    return {
        "kind": command.kind,
        "name": config_checks.text(command.name, "name", MAX_RATE_NAME, required=True),
        "countries": check_countries(command.countries),
        "price_minor": config_checks.amount(command.price, "price"),
        "currency": config_checks.currency(command.currency) if command.currency else profile.default_currency,
        "free_over_minor": None if free_over is None else config_checks.amount(free_over, "free_over"),
        "min_days": min_days,
        "max_days": max_days,
        "carrier": config_checks.optional_text(command.carrier, "carrier", MAX_CARRIER) if command.carrier else None,
        "pickup_address": check_address(command.pickup_address, "pickup_address") if command.pickup_address else None,
        "active": bool(command.active),
    }


def _tax_values(command: TaxRateInput) -> dict[str, Any]:
    country = check_country(command.country)
    region = check_region(country, command.region) if command.region and command.region.strip() else ""
    return {
        "country": country,
        "region": region,
        "category": config_checks.tax_category(command.category) if command.category else STANDARD,
        "rate_bps": config_checks.amount(command.rate_bps, "rate_bps", maximum=BPS),
        "applies_to_shipping": bool(command.applies_to_shipping),
    }


# ---------------------------------------------------------------- views
def _shipping_out(row: Mapping[str, Any]) -> ShippingRateOut:
    currency = row["currency"]
    free_over = row["free_over_minor"]
    address = row["pickup_address"]
    return ShippingRateOut(
        rate_id=row["id"], kind=row["kind"], name=row["name"], countries=list(row["countries"]),
        price=MoneyOut.minor(row["price_minor"], currency),
        free_over=None if free_over is None else MoneyOut.minor(free_over, currency),
        min_days=row["min_days"], max_days=row["max_days"], carrier=row["carrier"], active=bool(row["active"]),
        pickup_address=ShippingAddressOut(**address) if address else None,
    )  # fmt: skip


def _tax_out(row: Mapping[str, Any]) -> TaxRateOut:
    return TaxRateOut(
        country=row["country"], region=row["region"] or None, category=row["category"], rate_bps=row["rate_bps"],
        applies_to_shipping=bool(row["applies_to_shipping"]),
    )  # fmt: skip


def _audited(row: Mapping[str, Any] | None, fields: Sequence[str]) -> dict[str, Any] | None:
    return None if row is None else {name: row[name] for name in fields}


# ---------------------------------------------------------------- the service
class RateService:
    def __init__(self, db: Database, clock: Clock, fallback: StoreProfile) -> None:
        self._db = db
        self._clock = clock
        self._fallback = fallback

    async def upsert_shipping_rate(self, principal: Principal, command: ShippingRateInput) -> ShippingRateOut:
        policy.require(principal, "upsert_shipping_rate")
        now = self._clock()

        def work(conn: Connection) -> dict[str, Any]:
            values = _shipping_values(command, current(conn, self._fallback))
            before = rate_store.shipping_rate(conn, command.rate_id)
            rate_store.save_shipping_rate(conn, command.rate_id, values, now)
            after = rate_store.shipping_rate(conn, command.rate_id)
            assert after is not None
            old, new = _audited(before, rate_store.SHIPPING_FIELDS), _audited(after, rate_store.SHIPPING_FIELDS)
            if old != new:
                audit.record(conn, principal, "shipping_rate.upsert", command.rate_id, before=old, after=new, at=now)
            return after

        return _shipping_out(await self._db.write(work))

    async def list_shipping_rates(self, principal: Principal) -> ShippingRateList:
        policy.require(principal, "list_shipping_rates")
        rows = await self._db.read(rate_store.shipping_rates_listed)
        return ShippingRateList(rates=[_shipping_out(row) for row in rows])

    async def upsert_tax_rate(self, principal: Principal, command: TaxRateInput) -> TaxRateOut:
        policy.require(principal, "upsert_tax_rate")
        values = _tax_values(command)
        key = (values["country"], values["region"], values["category"])
        now = self._clock()

        def work(conn: Connection) -> dict[str, Any]:
            before = rate_store.tax_rate(conn, *key)
            rate_store.save_tax_rate(conn, values, now)
            after = rate_store.tax_rate(conn, *key)
            assert after is not None
            old, new = _audited(before, rate_store.TAX_FIELDS), _audited(after, rate_store.TAX_FIELDS)
            if old != new:
                audit.record(conn, principal, "tax_rate.upsert", "/".join(key), before=old, after=new, at=now)
            return after

        return _tax_out(await self._db.write(work))

    async def list_tax_rates(self, principal: Principal, country: str | None = None) -> TaxRateList:
        policy.require(principal, "list_tax_rates")
        wanted = check_country(country) if country else None
        rows = await self._db.read(lambda conn: rate_store.tax_rates_listed(conn, wanted))
        return TaxRateList(rates=[_tax_out(row) for row in rows])

    async def delete_tax_rate(
        self, principal: Principal, country: str, region: str | None = None, category: str | None = None
    ) -> TaxRateDeleted:
        policy.require(principal, "delete_tax_rate")
        values = _tax_values(TaxRateInput(country=country, rate_bps=0, region=region, category=category))
        key = (values["country"], values["region"], values["category"])
        now = self._clock()

        def work(conn: Connection) -> bool:
            before = rate_store.tax_rate(conn, *key)
            if before is None or not rate_store.delete_tax_rate(conn, *key):
                return False
            old = _audited(before, rate_store.TAX_FIELDS)
            audit.record(conn, principal, "tax_rate.delete", "/".join(key), before=old, after=None, at=now)
            return True

        return TaxRateDeleted(deleted=await self._db.write(work))
