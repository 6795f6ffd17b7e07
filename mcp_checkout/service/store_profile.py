"""The store profile as every use case reads it: the stored row, or the settings' defaults before the
first start seeded it. The merchant reads and changes it here (audited); anyone may read it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import Connection

from mcp_checkout.config import Settings
from mcp_checkout.domain import Clock, Principal
from mcp_checkout.domain.address import check_country
from mcp_checkout.domain.store_profile import PROFILE_FIELDS, StoreProfile
from mcp_checkout.errors import InvalidInput
from mcp_checkout.service import audit, config_checks, policy
from mcp_checkout.service.views import StoreProfileOut
from mcp_checkout.store import store_profile as profile_store
from mcp_checkout.store.db import Database

MAX_NAME: Final = 120
URL_FIELDS: Final = ("logo_url", "terms_url", "privacy_url", "returns_url", "shipping_policy_url")
FLAG_FIELDS: Final = ("prices_include_tax", "allow_discount_stacking")


def from_settings(settings: Settings) -> StoreProfile:
    return StoreProfile(name=settings.merchant_name, default_currency=settings.default_currency)


def current(conn: Connection, fallback: StoreProfile) -> StoreProfile:
    return profile_store.get(conn) or fallback


def default_currency(conn: Connection, seed: str) -> str:
    """The currency of new SKUs (upsert_product, imports) and carts: the store profile's; ``seed`` (the
    settings', which seed the profile) only before a profile is stored."""
    stored = profile_store.get(conn)
    return stored.default_currency if stored is not None else seed


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
    def __init__(self, db: Database, clock: Clock, fallback: StoreProfile) -> None:
        self._db = db
        self._clock = clock
        self._fallback = fallback

    async def seed(self) -> None:
        """First start: store the settings' name and currency as the profile. Idempotent and safe from several
        processes at once (an existing profile is left alone)."""
        now = self._clock()
        await self._db.write(lambda conn: profile_store.seed(conn, self._fallback, now))

    async def get(self) -> StoreProfileOut:
        """Public: who sells, policies, currency and how prices are shown (buyers may read it)."""
        return profile_out(await self._db.read(lambda conn: current(conn, self._fallback)))

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
