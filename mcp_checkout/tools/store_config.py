"""The store's configuration: its profile (readable by anyone; changed by the merchant)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import Field

from mcp_checkout.service.views import StoreProfileOut
from mcp_checkout.tools.annotations import OVERWRITES, READ_ONLY
from mcp_checkout.tools.context import principal, services
from mcp_checkout.tools.types import Currency, Flag

Url = Annotated[str, Field(max_length=2048, description='http(s) URL; "" clears it.')]
StoreName = Annotated[str, Field(min_length=1, max_length=120)]
Country = Annotated[str, Field(max_length=2, description='ISO 3166-1 alpha-2, e.g. US; "" clears it.')]
Locale = Annotated[str, Field(min_length=2, max_length=35, description="e.g. en_US, de_DE.")]
SupportEmail = Annotated[str, Field(max_length=254, description='"" clears it.')]


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
        """Change the given fields of the store profile; others keep their values. Returns the profile."""
        changes = {
            "name": name, "logo_url": logo_url, "support_email": support_email, "terms_url": terms_url,
            "privacy_url": privacy_url, "returns_url": returns_url, "shipping_policy_url": shipping_policy_url,
            "origin_country": origin_country, "default_currency": default_currency, "locale": locale,
            "prices_include_tax": prices_include_tax, "allow_discount_stacking": allow_discount_stacking,
        }  # fmt: skip
        return await services(ctx).store_profile.update(principal(ctx), changes)
