"""The store profile as every use case reads it: the stored row, or the settings' defaults before the
first start seeded it. The merchant reads and changes it here (audited); anyone may read it.

Quotes (carts, orders, the checkout page) read the profile with the rest of the store's pricing configuration
through :class:`ConfigCache`: one copy per process, reused while the configuration's stamp is unchanged. The
stamp (``store_config_version``, migration 0016) is moved by triggers in the same transaction as any change to
the profile, a rate or a code, so the next quote in every process sees a change once it is committed, at the
cost of one primary-key read."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Connection

from mcp_checkout.config import Settings
from mcp_checkout.domain import Clock, Principal
from mcp_checkout.domain.address import check_country
from mcp_checkout.domain.pricing import DiscountCode, ShippingRate, TaxRate, TaxTable
from mcp_checkout.domain.store_profile import PROFILE_FIELDS, StoreProfile
from mcp_checkout.errors import InvalidInput
from mcp_checkout.service import audit, config_checks, policy
from mcp_checkout.service.views import StoreProfileOut
from mcp_checkout.store import pricing as pricing_store
from mcp_checkout.store import store_profile as profile_store
from mcp_checkout.store import webhooks as webhook_store
from mcp_checkout.store.db import Database

MAX_NAME: Final = 120
URL_FIELDS: Final = ("logo_url", "terms_url", "privacy_url", "returns_url", "shipping_policy_url")
FLAG_FIELDS: Final = ("prices_include_tax", "allow_discount_stacking")
MAX_CACHED_CODES: Final = 1024  # code names remembered per configuration (unknown ones too): then start over


def from_settings(settings: Settings) -> StoreProfile:
    return StoreProfile(name=settings.merchant_name, default_currency=settings.default_currency)


def current(conn: Connection, fallback: StoreProfile) -> StoreProfile:
    return profile_store.get(conn) or fallback


def default_currency(conn: Connection, seed: str) -> str:
    """The currency of new SKUs (upsert_product, imports) and carts: the store profile's; ``seed`` (the
    settings', which seed the profile) only before a profile is stored."""
    stored = profile_store.get(conn)
    return stored.default_currency if stored is not None else seed


@dataclass(frozen=True, eq=False)
class StoreConfig:
    """The store's configuration as of one stamp: its profile, active shipping rates (cheapest first) and
    tax rates, the kinds of the active webhook endpoints, and the settings of the discount codes asked for so
    far (read on first use)."""

    profile: StoreProfile
    shipping_rates: tuple[ShippingRate, ...]
    tax_rates: Mapping[str, tuple[TaxRate, ...]]  # by country
    webhook_kinds: frozenset[str] = frozenset({webhook_store.STANDARD, webhook_store.UCP})  # of active endpoints
    version: int | None = None
    _codes: dict[str, DiscountCode | None] = field(default_factory=dict)
    _tax_tables: dict[str, TaxTable] = field(default_factory=dict)

    @property
    def webhooks_active(self) -> bool:
        """Whether any webhook endpoint is active (none: no order event has a receiver)."""
        return bool(self.webhook_kinds)

    @property
    def followers_possible(self) -> bool:
        """Whether a UCP platform's endpoint is active (none: no order has an active follower)."""
        return webhook_store.UCP in self.webhook_kinds

    def shipping_rates_in(self, currency: str) -> list[ShippingRate]:
        return [rate for rate in self.shipping_rates if rate.currency == currency]

    def tax_rates_in(self, country: str) -> list[TaxRate]:
        return list(self.tax_rates.get(country, ()))

    def tax_table_in(self, country: str) -> TaxTable:
        """The tax rates of ``country`` indexed for look-ups, built once per configuration."""
        table = self._tax_tables.get(country)
        if table is None:
            table = self._tax_tables[country] = TaxTable(self.tax_rates.get(country, ()))
        return table

    def codes(self, conn: Connection, names: Collection[str]) -> dict[str, DiscountCode]:
        """The codes among ``names`` (stored, upper-case form) that exist. Their settings come from this
        configuration; the uses of a code with a limit are read now (every placed order counts one)."""
        missing = [name for name in names if name not in self._codes]
        if missing:
            found = pricing_store.codes(conn, missing)
            if len(self._codes) + len(missing) > MAX_CACHED_CODES:
                self._codes.clear()
            self._codes.update({name: found.get(name) for name in missing})
        codes = {name: code for name in names if (code := self._codes.get(name)) is not None}
        limited = [name for name, code in codes.items() if code.max_uses is not None]
        if limited:
            uses = pricing_store.code_uses(conn, limited)
            for name in limited:
                codes[name] = dataclasses.replace(codes[name], uses=uses.get(name, codes[name].uses))
        return codes


def load_config(conn: Connection, fallback: StoreProfile, version: int | None = None) -> StoreConfig:
    taxes: dict[str, list[TaxRate]] = {}
    for rate in pricing_store.all_tax_rates(conn):
        taxes.setdefault(rate.country, []).append(rate)
    return StoreConfig(
        profile=current(conn, fallback),
        shipping_rates=tuple(pricing_store.active_shipping_rates(conn)),
        tax_rates={country: tuple(rates) for country, rates in taxes.items()},
        webhook_kinds=webhook_store.active_kinds(conn),
        version=version,
    )


class ConfigCache:
    """One process's copy of the store's configuration (:class:`StoreConfig`), checked against the
    stamp in every transaction that uses it. Use it in buyer-side use cases; a use case that changes the
    configuration reads what it changes directly (``current``, the rate and code stores)."""

    def __init__(self, fallback: StoreProfile) -> None:
        self.fallback = fallback  # the profile until the store has saved one
        self._config: StoreConfig | None = None

    def get(self, conn: Connection) -> StoreConfig:
        """The configuration as ``conn``'s transaction sees it: one read of the stamp, then the copy in
        memory, or (the stamp moved) everything read again."""
        return self.at(conn, profile_store.config_version(conn))

    def at(self, conn: Connection, version: int | None) -> StoreConfig:
        """The configuration for ``version``, the stamp this transaction read (alone, or with another
        statement's rows: store_profile.CONFIG_STAMP) BEFORE anything it reads of the configuration, so a
        copy is never older than the stamp it is kept under."""
        config = self._config
        if config is not None and version is not None and config.version == version:
            return config
        config = load_config(conn, self.fallback, version)
        if version is not None:
            self._config = config
        return config


def _checked(field: str, value: Any) -> Any:
    """A profile field's value in stored form, or ``InvalidInput`` naming the field."""
    if field in FLAG_FIELDS:
        if not isinstance(value, bool):
            raise InvalidInput(f"{field} must be true or false.", details={"field": field})
        return value
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text.", details={"field": field})
    if field == "name":
        return config_checks.text(value, field, MAX_NAME, required=True)
    if field in URL_FIELDS:
        return config_checks.url(value, field)
    if field == "support_email":
        return config_checks.email(value, field)
    if field == "origin_country":
        return check_country(value, field) if value.strip() else None
    if field == "default_currency":
        return config_checks.currency(value, field)
    if field == "locale":
        return config_checks.locale(value, field)
    raise InvalidInput(
        f"The store profile has no field {field[:40]!r}; fields: {', '.join(PROFILE_FIELDS)}.",
        details={"field": field[:40]},
    )


def profile_out(profile: StoreProfile) -> StoreProfileOut:
    return StoreProfileOut(**dataclasses.asdict(profile))


class StoreProfileService:
    def __init__(self, db: Database, clock: Clock, fallback: StoreProfile, config: ConfigCache | None = None) -> None:
        self._db = db
        self._clock = clock
        self._fallback = fallback
        self._config = config or ConfigCache(fallback)

    async def seed(self) -> None:
        """First start: store the settings' name and currency as the profile. Idempotent and safe from several
        processes at once (an existing profile is left alone)."""
        now = self._clock()
        await self._db.write(lambda conn: profile_store.seed(conn, self._fallback, now))

    async def get(self) -> StoreProfileOut:
        """Public: who sells, policies, currency and how prices are shown (buyers may read it)."""
        return profile_out(await self._db.read(lambda conn: self._config.get(conn).profile))

    async def update(self, principal: Principal, changes: Mapping[str, Any]) -> StoreProfileOut:
        """Change the given fields (None values are left out: not given); "" clears an optional text field."""
        policy.require(principal, "update_store_profile")
        checked = {field: _checked(field, value) for field, value in changes.items() if value is not None}
        now = self._clock()

        def work(conn: Connection) -> StoreProfile:
            before = current(conn, self._fallback)
            after = dataclasses.replace(before, **checked)
            changed = sorted(field for field in checked if getattr(before, field) != getattr(after, field))
            if changed:
                profile_store.save(conn, after, now)
                audit.record(
                    conn,
                    principal,
                    "store_profile.update",
                    "store_profile",
                    before={field: getattr(before, field) for field in changed},
                    after={field: getattr(after, field) for field in changed},
                    at=now,
                )
            return after

        return profile_out(await self._db.write(work))
