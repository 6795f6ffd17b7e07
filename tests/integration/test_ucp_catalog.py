"""UCP catalog search over REST (in process): the native ranked search as UCP products whose variants are
SKUs, filters and cursor pages; answers validated against the pinned schema and the ucp-sdk model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from ucp_sdk.models.schemas.shopping.catalog_search import SearchResponse

from mcp_checkout.config import Settings
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.ucp import rest as ucp_rest
from mcp_checkout.ucp.negotiation import ProfileResolver
from tests.ucp_client import PLATFORM_PROFILE, conforms, platform_profile, profile_transport
from tests.ucp_schemas import validate

SEARCH_RESPONSE = "https://ucp.dev/schemas/shopping/catalog_search.json#/$defs/search_response"


@pytest.fixture
async def search(settings: Settings, seeded: Services) -> AsyncIterator[Any]:
    services = build_services(settings, db=seeded.db)
    resolver = ProfileResolver(transport=profile_transport({PLATFORM_PROFILE: platform_profile()}))
    app = Starlette(routes=ucp_rest.routes(lambda: services, resolver=resolver))
    key = (await services.access.create_key("platform", "buyer")).key
    headers = {"X-API-Key": key, "UCP-Agent": f'profile="{PLATFORM_PROFILE}"'}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop.test") as client:

        async def call(body: dict[str, Any]) -> httpx.Response:
            return await client.post("/ucp/v1/catalog/search", json=body, headers=headers)

        yield call


def found(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    validate(body, SEARCH_RESPONSE)
    SearchResponse.model_validate(body)
    return body


async def test_a_query_finds_products_whose_variants_are_skus(search: Any) -> None:
    body = found(await search({"query": "merino socks"}))
    [socks] = body["products"]
    assert socks["title"] == "Merino Wool Socks"
    assert {v["id"]: v["availability"]["available"] for v in socks["variants"]} == {
        "SOCK-M-GRY": True,
        "SOCK-L-GRY": False,
    }
    assert socks["price_range"]["min"] == {"amount": 2200, "currency": "USD"}
    assert body["pagination"] == {"has_next_page": False}
    assert body["ucp"]["capabilities"] == {"dev.ucp.shopping.catalog.search": [{"version": "2026-04-08"}]}


async def test_filters_and_cursor_pages(search: Any) -> None:
    kitchen = found(await search({"filters": {"categories": ["Kitchen"]}, "pagination": {"limit": 1}}))
    assert len(kitchen["products"]) == 1 and kitchen["pagination"]["has_next_page"] is True
    rest = found(
        await search(
            {"filters": {"categories": ["Kitchen"]}, "pagination": {"cursor": kitchen["pagination"]["cursor"]}}
        )
    )
    titles = {p["title"] for p in kitchen["products"] + rest["products"]}
    assert titles == {"Stoneware Coffee Mug", "Linen Tea Towel"}
    cheap = found(await search({"query": "mug", "filters": {"price": {"max": 1500}}}))
    assert [p["title"] for p in cheap["products"]] == ["Enamel Camp Mug"]


@pytest.mark.parametrize("body", [{}, {"query": ""}, {"filters": {"categories": ["A", "B"]}}, {"query": 7}])
async def test_a_search_without_input_is_a_400(search: Any, body: dict[str, Any]) -> None:
    answer = await search(body)
    assert answer.status_code == 400 and conforms(answer)["code"] == "invalid_request"


LOOKUP_RESPONSE = "https://ucp.dev/schemas/shopping/catalog_lookup.json#/$defs/lookup_response"
PRODUCT_RESPONSE = "https://ucp.dev/schemas/shopping/catalog_lookup.json#/$defs/get_product_response"


@pytest.fixture
async def catalog_call(settings: Settings, seeded: Services) -> AsyncIterator[Any]:
    services = build_services(settings, db=seeded.db)
    resolver = ProfileResolver(transport=profile_transport({PLATFORM_PROFILE: platform_profile()}))
    app = Starlette(routes=ucp_rest.routes(lambda: services, resolver=resolver))
    key = (await services.access.create_key("platform", "buyer")).key
    headers = {"X-API-Key": key, "UCP-Agent": f'profile="{PLATFORM_PROFILE}"'}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop.test") as client:

        async def call(path: str, body: dict[str, Any], schema: str | None = None) -> dict[str, Any]:
            response = await client.post(f"/ucp/v1/catalog/{path}", json=body, headers=headers)
            if schema is None:
                return conforms(response)
            assert response.status_code == 200, response.text
            answer: dict[str, Any] = response.json()
            validate(answer, schema)
            return answer

        yield call, services


async def test_lookup_resolves_product_and_variant_ids_and_says_which_input_named_each_variant(
    catalog_call: Any,
) -> None:
    call, services = catalog_call
    socks = (await services.catalog.get_product(sku="SOCK-L-GRY")).product_id
    body = await call("lookup", {"ids": [socks, "SOCK-L-GRY", "MUG-01", "MUG-01", "NOPE"]}, LOOKUP_RESPONSE)
    by_title = {p["title"]: p for p in body["products"]}
    assert set(by_title) == {"Merino Wool Socks", "Stoneware Coffee Mug"}
    variants = {v["id"]: v["inputs"] for v in by_title["Merino Wool Socks"]["variants"]}
    assert variants == {
        "SOCK-M-GRY": [{"id": socks, "match": "featured"}],  # the product's first variant in stock
        "SOCK-L-GRY": [{"id": "SOCK-L-GRY", "match": "exact"}],
    }
    assert [v["inputs"] for v in by_title["Stoneware Coffee Mug"]["variants"]] == [[{"id": "MUG-01", "match": "exact"}]]
    assert [(m["code"], m["path"]) for m in body["messages"]] == [("not_found", "$.ids[3]")]  # after dedup


async def test_get_product_puts_the_named_variant_first_and_an_unknown_id_is_the_error_envelope(
    catalog_call: Any,
) -> None:
    call, _ = catalog_call
    body = await call("product", {"id": "SOCK-L-GRY"}, PRODUCT_RESPONSE)
    assert [v["id"] for v in body["product"]["variants"]] == ["SOCK-L-GRY", "SOCK-M-GRY"]
    missing = await call("product", {"id": "NOPE"})
    assert missing["ucp"]["status"] == "error" and missing["messages"][0]["code"] == "not_found"


async def test_too_many_lookup_ids_is_request_too_large(catalog_call: Any) -> None:
    call, _ = catalog_call
    refused = await call("lookup", {"ids": [f"X-{n}" for n in range(51)]})
    assert refused["code"] == "request_too_large"
