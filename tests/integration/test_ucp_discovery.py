"""UCP discovery: GET /.well-known/ucp is the business profile, valid against the spec's pinned schema and
the ucp-sdk model, publicly cacheable, and declaring only what is implemented."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from ucp_sdk.models.schemas.ucp import BusinessSchema

from mcp_checkout.service.container import Services
from mcp_checkout.ucp import rest as ucp_rest
from mcp_checkout.ucp import spec
from tests.ucp_schemas import BUSINESS_PROFILE, validate


async def test_the_business_profile_is_served_and_conforms(services: Services) -> None:
    app = Starlette(routes=ucp_rest.routes(lambda: services))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop.test") as client:
        response = await client.get("/.well-known/ucp")
    assert response.status_code == 200
    cache_control = response.headers["cache-control"]
    assert "public" in cache_control and int(cache_control.split("max-age=")[1]) >= 60
    profile = response.json()
    validate(profile, BUSINESS_PROFILE)
    BusinessSchema.model_validate(profile["ucp"])
    ucp = profile["ucp"]
    assert ucp["version"] == spec.VERSION
    [rest] = ucp["services"][spec.SHOPPING]
    base = services.settings.resolved_public_base_url()
    assert rest == {
        "version": spec.VERSION,
        "spec": spec.OVERVIEW,
        "transport": "rest",
        "endpoint": f"{base}/ucp/v1",
        "schema": spec.REST_SCHEMA,
    }
    # Only what is implemented and tested (test_ucp_checkout_rest.py, test_ucp_catalog.py; fulfillment
    # and discount: test_buyer_destination_option_and_discount_code_price_the_checkout_then_it_is_paid) is declared.
    assert ucp["capabilities"] == {
        spec.CHECKOUT: [
            {
                "version": spec.VERSION,
                "spec": "https://ucp.dev/2026-04-08/specification/checkout",
                "schema": "https://ucp.dev/2026-04-08/schemas/shopping/checkout.json",
            }
        ],
        "dev.ucp.shopping.fulfillment": [
            {
                "version": spec.VERSION,
                "spec": "https://ucp.dev/2026-04-08/specification/fulfillment",
                "schema": "https://ucp.dev/2026-04-08/schemas/shopping/fulfillment.json",
                "extends": spec.CHECKOUT,
            }
        ],
        "dev.ucp.shopping.discount": [
            {
                "version": spec.VERSION,
                "spec": "https://ucp.dev/2026-04-08/specification/discount",
                "schema": "https://ucp.dev/2026-04-08/schemas/shopping/discount.json",
                "extends": spec.CHECKOUT,
            }
        ],
        "dev.ucp.shopping.catalog.search": [
            {
                "version": spec.VERSION,
                "spec": "https://ucp.dev/2026-04-08/specification/catalog/search",
                "schema": "https://ucp.dev/2026-04-08/schemas/shopping/catalog_search.json",
            }
        ],
        "dev.ucp.shopping.catalog.lookup": [
            {
                "version": spec.VERSION,
                "spec": "https://ucp.dev/2026-04-08/specification/catalog/lookup",
                "schema": "https://ucp.dev/2026-04-08/schemas/shopping/catalog_lookup.json",
            }
        ],
        # test_ucp_order.py: get_order and the signed order webhooks
        "dev.ucp.shopping.order": [
            {
                "version": spec.VERSION,
                "spec": "https://ucp.dev/2026-04-08/specification/order",
                "schema": "https://ucp.dev/2026-04-08/schemas/shopping/order.json",
            }
        ],
    }
    assert ucp["payment_handlers"] == {
        "dev.mcpcheckout.offline": [
            {"id": "offline_test", "version": spec.VERSION, "available_instruments": [{"type": "offline_test"}]}
        ]
    }
    # The key that signs order webhooks (generated on first use), public half only, as a JWK.
    [key] = profile["signing_keys"]
    assert set(key) == {"kid", "kty", "crv", "x", "y", "use", "alg"} and key["crv"] == "P-256"


def test_a_profile_missing_its_services_does_not_pass_the_pinned_schema() -> None:
    import pytest

    with pytest.raises(AssertionError, match="services"):
        validate({"ucp": {"version": spec.VERSION, "payment_handlers": {}}}, BUSINESS_PROFILE)
