"""The store's configuration: its profile (readable by anyone; changed by the merchant), shipping and tax
rates and discount codes (merchant)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import BaseModel, ConfigDict, Field

from mcp_checkout.service.discount_codes import DiscountCodeInput
from mcp_checkout.service.rates import ShippingRateInput, TaxRateInput
from mcp_checkout.service.views import (
    DiscountCodeList,
    DiscountCodeOut,
    ShippingRateList,
    ShippingRateOut,
    StoreProfileOut,
    TaxRateDeleted,
    TaxRateList,
    TaxRateOut,
)
from mcp_checkout.tools.annotations import OVERWRITES, READ_ONLY
from mcp_checkout.tools.context import principal, services
from mcp_checkout.tools.merchant import Timestamp
from mcp_checkout.tools.types import Currency, Flag, MinorUnits, ShippingAddress

Url = Annotated[str, Field(max_length=2048)]
StoreName = Annotated[str, Field(min_length=1, max_length=120)]
Country = Annotated[str, Field(max_length=2, description="ISO 3166-1 alpha-2, e.g. US.")]
Locale = Annotated[str, Field(min_length=2, max_length=35, description="e.g. en_US, de_DE.")]
SupportEmail = Annotated[str, Field(max_length=254)]
RateId = Annotated[str, Field(min_length=1, max_length=64, description="Yours, e.g. standard-us.")]
RateName = Annotated[str, Field(min_length=1, max_length=120, description="As buyers see it.")]
Countries = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=2)]],
    Field(min_length=1, max_length=250, description='ISO 3166-1 alpha-2 codes; ["*"] = rest of world.'),
]
Days = Annotated[int, Field(strict=True, ge=0, le=365)]
Carrier = Annotated[str, Field(max_length=80)]
CountryCode = Annotated[str, Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2, e.g. DE.")]
Region = Annotated[str, Field(max_length=100, description="ISO 3166-2 subdivision, e.g. CA.")]
TaxCategory = Annotated[str, Field(max_length=40, description="standard (default), reduced, zero or your own.")]
RateBps = Annotated[int, Field(strict=True, ge=0, le=10_000, description="Basis points: 2000 = 20 %.")]
Code = Annotated[str, Field(min_length=1, max_length=64, description="A-Z 0-9 _ -, any case.")]
CodeValue = Annotated[
    int, Field(strict=True, ge=0, le=10**10, description="percent: bps (1500 = 15 %); fixed: minor units.")
]
Uses = Annotated[int, Field(strict=True, ge=1, le=10**9)]


class AppliesTo(BaseModel):
    """Omit for the whole cart."""

    model_config = ConfigDict(extra="forbid")

    categories: Annotated[list[Annotated[str, Field(max_length=120)]], Field(max_length=500)] = []
    skus: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=500)] = []


def register(server: MCPServer[Any]) -> None:
    @server.tool(title="Store profile", annotations=READ_ONLY)
    async def get_store_profile(ctx: Context[Any]) -> StoreProfileOut:
        """The store's name, logo, support email, policy URLs, currency, locale and tax display."""
        principal(ctx)
        return await services(ctx).store_profile.get()

    @server.tool(title="Update the store profile (merchant)", annotations=OVERWRITES)
    async def update_store_profile(
        ctx: Context[Any],
        name: StoreName | None = None,
        logo_url: Url | None = None,
        support_email: SupportEmail | None = None,
        terms_url: Url | None = None,
        privacy_url: Url | None = None,
        returns_url: Url | None = None,
        shipping_policy_url: Url | None = None,
        origin_country: Country | None = None,
        default_currency: Currency | None = None,
        locale: Locale | None = None,
        prices_include_tax: Flag | None = None,
        allow_discount_stacking: Flag | None = None,
    ) -> StoreProfileOut:
        """Change the given fields of the store profile ("" clears one; URLs are http(s)); returns it."""
        changes = {
            "name": name, "logo_url": logo_url, "support_email": support_email, "terms_url": terms_url,
            "privacy_url": privacy_url, "returns_url": returns_url, "shipping_policy_url": shipping_policy_url,
            "origin_country": origin_country, "default_currency": default_currency, "locale": locale,
            "prices_include_tax": prices_include_tax, "allow_discount_stacking": allow_discount_stacking,
        }  # fmt: skip
        return await services(ctx).store_profile.update(principal(ctx), changes)

    @server.tool(title="Create or replace a shipping rate (merchant)", annotations=OVERWRITES)
    async def upsert_shipping_rate(
        ctx: Context[Any],
        rate_id: RateId,
        name: RateName,
        countries: Countries,
        price: MinorUnits,
        currency: Currency | None = None,
        free_over: MinorUnits | None = None,
        min_days: Days | None = None,
        max_days: Days | None = None,
        carrier: Carrier | None = None,
        active: Flag = True,
        kind: Literal["shipping", "pickup"] = "shipping",
        pickup_address: ShippingAddress | None = None,
    ) -> ShippingRateOut:
        """States the whole rate (omitted = default); carts are offered the rates covering their country.
        Pickup needs pickup_address."""
        command = ShippingRateInput(
            rate_id=rate_id, name=name, countries=countries, price=price, currency=currency, free_over=free_over,
            min_days=min_days, max_days=max_days, carrier=carrier, active=active, kind=kind,
            pickup_address=pickup_address.model_dump() if pickup_address else None,
        )  # fmt: skip
        return await services(ctx).rates.upsert_shipping_rate(principal(ctx), command)

    @server.tool(title="List shipping rates (merchant)", annotations=READ_ONLY)
    async def list_shipping_rates(ctx: Context[Any]) -> ShippingRateList:
        """Every shipping and pickup rate, active or not."""
        return await services(ctx).rates.list_shipping_rates(principal(ctx))

    @server.tool(title="Create or replace a tax rate (merchant)", annotations=OVERWRITES)
    async def upsert_tax_rate(
        ctx: Context[Any],
        country: CountryCode,
        rate_bps: RateBps,
        region: Region | None = None,
        category: TaxCategory | None = None,
        applies_to_shipping: Flag = False,
    ) -> TaxRateOut:
        """One rate per (country, region, category); no region: the whole country. Inclusive or exclusive per
        the store profile."""
        command = TaxRateInput(
            country=country, rate_bps=rate_bps, region=region, category=category,
            applies_to_shipping=applies_to_shipping,
        )  # fmt: skip
        return await services(ctx).rates.upsert_tax_rate(principal(ctx), command)

    @server.tool(title="List tax rates (merchant)", annotations=READ_ONLY)
    async def list_tax_rates(ctx: Context[Any], country: CountryCode | None = None) -> TaxRateList:
        """The tax rates (basis points per country, region, category), all or one country's."""
        return await services(ctx).rates.list_tax_rates(principal(ctx), country)

    @server.tool(title="Delete a tax rate (merchant)", annotations=OVERWRITES)
    async def delete_tax_rate(
        ctx: Context[Any], country: CountryCode, region: Region | None = None, category: TaxCategory | None = None
    ) -> TaxRateDeleted:
        """Remove the rate of (country, region, category). Safe to retry."""
        return await services(ctx).rates.delete_tax_rate(principal(ctx), country, region, category)

    @server.tool(title="Create or replace a discount code (merchant)", annotations=OVERWRITES)
    async def upsert_discount_code(
        ctx: Context[Any],
        code: Code,
        kind: Literal["percent", "fixed", "free_shipping"],
        value: CodeValue | None = None,
        currency: Currency | None = None,
        min_subtotal: MinorUnits | None = None,
        starts_at: Timestamp | None = None,
        ends_at: Timestamp | None = None,
        max_uses: Uses | None = None,
        max_uses_per_buyer: Uses | None = None,
        applies_to: AppliesTo | None = None,
        active: Flag = True,
    ) -> DiscountCodeOut:
        """States the whole code (omitted = default); uses so far are kept (`invalid_input` if max_uses is
        below them)."""
        command = DiscountCodeInput(
            code=code, kind=kind, value=value, currency=currency, min_subtotal=min_subtotal, starts_at=starts_at,
            ends_at=ends_at, max_uses=max_uses, max_uses_per_buyer=max_uses_per_buyer,
            categories=applies_to.categories if applies_to else (), skus=applies_to.skus if applies_to else (),
            active=active,
        )  # fmt: skip
        return await services(ctx).discount_codes.upsert(principal(ctx), command)

    @server.tool(title="List discount codes (merchant)", annotations=READ_ONLY)
    async def list_discount_codes(ctx: Context[Any], active_only: Flag = False) -> DiscountCodeList:
        """Discount codes with their terms, dates and uses so far."""
        return await services(ctx).discount_codes.list_codes(principal(ctx), active_only=active_only)
