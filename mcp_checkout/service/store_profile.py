"""The store profile as every use case reads it: the stored row, or the settings' defaults before the
first start seeded it."""

from __future__ import annotations

from sqlalchemy import Connection

from mcp_checkout.config import Settings
from mcp_checkout.domain.store_profile import StoreProfile
from mcp_checkout.store import store_profile as profile_store


def from_settings(settings: Settings) -> StoreProfile:
    return StoreProfile(name=settings.merchant_name, default_currency=settings.default_currency)


def current(conn: Connection, fallback: StoreProfile) -> StoreProfile:
    return profile_store.get(conn) or fallback
