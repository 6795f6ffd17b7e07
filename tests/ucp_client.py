"""A UCP platform as tests play it: headers, and every answer checked against the spec's pinned schemas
and the ucp-sdk models (a response that does not conform fails the test)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from starlette.applications import Starlette
from ucp_sdk.models.schemas.shopping.checkout import Checkout
from ucp_sdk.models.schemas.shopping.types.error_response import ErrorResponse

from mcp_checkout.service.container import Services
from mcp_checkout.ucp import rest as ucp_rest
from mcp_checkout.ucp.negotiation import ProfileResolver
from mcp_checkout.web.app import routes as web_routes
from tests.pricing_rows import add_discount_code, add_shipping_rate, add_tax_rate
from tests.ucp_schemas import CHECKOUT, ERROR_RESPONSE, validate

PLATFORM_PROFILE = "https://platform.test/.well-known/ucp"


def platform_capabilities(version: str = "2026-04-08", **configs: dict[str, Any]) -> dict[str, Any]:
    """A platform's capability registry naming every shopping capability this business implements (so the
    intersection is all of them); ``configs`` by short name, e.g. ``order={"webhook_url": …}``."""
    extends = {"fulfillment": "dev.ucp.shopping.checkout", "discount": "dev.ucp.shopping.checkout"}
    registry: dict[str, Any] = {}
    for short in ("checkout", "fulfillment", "discount", "catalog.search", "catalog.lookup", "order"):
        entry: dict[str, Any] = {"version": version}
        if short in extends:
            entry["extends"] = extends[short]
        if short in configs:
            entry["config"] = configs[short]
        registry[f"dev.ucp.shopping.{short}"] = [entry]
    return registry


def platform_profile(version: str = "2026-04-08", capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
    """A platform profile; by default it declares every capability this business implements."""
    declared = platform_capabilities(version) if capabilities is None else capabilities
    return {"ucp": {"version": version, "services": {}, "payment_handlers": {}, "capabilities": declared}}


def profile_transport(profiles: dict[str, dict[str, Any]]) -> httpx.MockTransport:
    """Serves platform profiles by URL (for in-process tests; the e2e suite serves one over real HTTP)."""

    def answer(request: httpx.Request) -> httpx.Response:
        found = profiles.get(str(request.url))
        return httpx.Response(200, json=found) if found is not None else httpx.Response(404)

    return httpx.MockTransport(answer)


def conforms(response: httpx.Response) -> dict[str, Any]:
    """The body of a UCP answer, after checking its shape: a checkout, the error envelope, or a protocol
    error ``{"code", "content"}`` (for 4xx/5xx statuses the spec answers that way)."""
    body: dict[str, Any] = response.json()
    assert response.headers["content-type"].startswith("application/json")
    if "id" in body:
        validate(body, CHECKOUT)
        Checkout.model_validate(body)
        assert body["ucp"]["status"] == "success"
    elif "ucp" in body:
        validate(body, ERROR_RESPONSE)
        ErrorResponse.model_validate(body)
    else:
        assert response.status_code >= 400, body
        assert set(body) == {"code", "content"} and body["code"] and body["content"], body
    return body


class Platform:
    """Calls the REST binding the way a UCP platform does."""

    def __init__(self, client: httpx.AsyncClient, api_key: str, profile: str = PLATFORM_PROFILE) -> None:
        self.client = client
        self.headers = {"X-API-Key": api_key, "UCP-Agent": f'profile="{profile}"'}

    def _headers(self, key: str | None = None) -> dict[str, str]:
        headers = {**self.headers, "Request-Id": str(uuid.uuid4())}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    async def create(self, items: list[tuple[str, int]], **extra: Any) -> httpx.Response:
        body = {"line_items": [{"item": {"id": sku}, "quantity": quantity} for sku, quantity in items], **extra}
        return await self.client.post("/ucp/v1/checkout-sessions", json=body, headers=self._headers(str(uuid.uuid4())))

    async def get(self, checkout_id: str) -> httpx.Response:
        return await self.client.get(f"/ucp/v1/checkout-sessions/{checkout_id}", headers=self._headers())

    async def update(self, checkout_id: str, items: list[tuple[str, int]], **extra: Any) -> httpx.Response:
        body = {"line_items": [{"item": {"id": sku}, "quantity": quantity} for sku, quantity in items], **extra}
        return await self.client.put(
            f"/ucp/v1/checkout-sessions/{checkout_id}", json=body, headers=self._headers(str(uuid.uuid4()))
        )

    async def complete(
        self, checkout_id: str, key: str | None, token: str | None = None, *, handler: str = "offline_test"
    ) -> httpx.Response:
        """Complete, with a token credential for ``handler`` when ``token`` is given (``offline_test``: a test
        token; ``stripe``: a Stripe PaymentMethod id on a card instrument)."""
        instruments = []
        if token is not None:
            kind, credential = ("card", "stripe_payment_method") if handler == "stripe" else (handler, "token")
            instruments = [
                {
                    "id": "pi_1",
                    "handler_id": handler,
                    "type": kind,
                    "credential": {"type": credential, "token": token},
                }
            ]
        return await self.client.post(
            f"/ucp/v1/checkout-sessions/{checkout_id}/complete",
            json={"payment": {"instruments": instruments}},
            headers=self._headers(key),
        )

    async def cancel(self, checkout_id: str, key: str | None = None) -> httpx.Response:
        return await self.client.post(
            f"/ucp/v1/checkout-sessions/{checkout_id}/cancel", headers=self._headers(key or str(uuid.uuid4()))
        )


def totals(body: dict[str, Any]) -> dict[str, int]:
    """A UCP checkout's totals by type (subtotal, discount, fulfillment, tax, total)."""
    return {entry["type"]: entry["amount"] for entry in body["totals"]}


def priced_store(conn: Any) -> None:
    """Two US shipping options, California tax (also on shipping) and the code TEN (10 %)."""
    add_shipping_rate(conn, "ground", 599, ["US"], carrier="USPS", min_days=3, max_days=5)
    add_shipping_rate(conn, "express", 1999, ["US"], carrier="UPS", min_days=1, max_days=2)
    add_tax_rate(conn, "US", 725, region="CA", applies_to_shipping=True)
    add_discount_code(conn, "TEN", "percent", 1000)


DESTINATION = {
    "id": "home",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "street_address": "1 Main St",
    "address_locality": "San Francisco",
    "address_region": "CA",
    "postal_code": "94105",
    "address_country": "US",
}


def ucp_app(services: Services, profiles: dict[str, dict[str, Any]] | None = None) -> Starlette:
    """The UCP REST binding and the checkout pages on ``services``, in process; platform profiles are fetched
    from ``profiles`` (by default PLATFORM_PROFILE, declaring every capability)."""
    served = profiles if profiles is not None else {PLATFORM_PROFILE: platform_profile()}
    resolver = ProfileResolver(transport=profile_transport(served))
    return Starlette(routes=[*ucp_rest.routes(lambda: services, resolver=resolver), *web_routes(lambda: services)])
