"""The store's own profile: who sells, how prices are shown and whether they include tax."""

from __future__ import annotations

from dataclasses import dataclass

from mcp_checkout.domain import DISPLAY_LOCALE


@dataclass(frozen=True, slots=True)
class StoreProfile:
    name: str
    default_currency: str
    locale: str = DISPLAY_LOCALE
    prices_include_tax: bool = False  # EU VAT style: catalog prices contain the tax
    allow_discount_stacking: bool = False  # more than one discount code per cart
    logo_url: str | None = None
    support_email: str | None = None
    terms_url: str | None = None
    privacy_url: str | None = None
    returns_url: str | None = None
    shipping_policy_url: str | None = None
    origin_country: str | None = None


PROFILE_FIELDS: tuple[str, ...] = tuple(StoreProfile.__dataclass_fields__)
