"""The catalog search capability (``dev.ucp.shopping.catalog.search``) over ``service/catalog.py``: the
native ranked search, grouped into UCP products (a product's variants are its SKUs; a variant id is the
SKU code, which is also a checkout ``item.id``)."""

from __future__ import annotations

from typing import Any

from ucp_sdk.models.schemas.shopping.catalog_lookup import (
    GetProductRequest,
    GetProductResponse,
    LookupRequest,
    LookupResponse,
)
from ucp_sdk.models.schemas.shopping.catalog_search import SearchRequest, SearchResponse

from mcp_checkout.errors import NotFound
from mcp_checkout.service.container import Services
from mcp_checkout.service.views import ProductOut
from mcp_checkout.ucp import spec
from mcp_checkout.ucp.checkout import parse
from mcp_checkout.ucp.negotiation import UcpProblem

MAX_LIMIT = 50
MAX_LOOKUP_IDS = 50


def product(found: ProductOut) -> dict[str, Any]:
    """A native product as a UCP product."""
    description = {"plain": found.description or found.name}
    prices = [variant.price for variant in found.variants]
    low, high = min(prices, key=lambda p: p.amount), max(prices, key=lambda p: p.amount)
    body: dict[str, Any] = {
        "id": found.product_id,
        "title": found.name,
        "description": description,
        "price_range": {
            "min": {"amount": low.amount, "currency": low.currency},
            "max": {"amount": high.amount, "currency": high.currency},
        },
        "variants": [
            {
                "id": variant.sku,
                "sku": variant.sku,
                "title": variant.title,
                "description": {"plain": variant.name or found.description or found.name},
                "price": {"amount": variant.price.amount, "currency": variant.price.currency},
                "availability": {"available": variant.in_stock},
                **({"media": [{"type": "image", "url": variant.image_url}]} if variant.image_url else {}),
            }
            for variant in found.variants
        ],
    }
    if found.category:
        body["categories"] = [{"value": found.category}]
    return body


async def search(services: Services, body: Any) -> dict[str, Any]:
    request = parse(SearchRequest, body)
    categories = request.filters.categories if request.filters is not None else None
    price = request.filters.price if request.filters is not None else None
    if not request.query and not categories and price is None:
        raise UcpProblem(400, "invalid_request", "Send a query, or filters (categories, price), to search.")
    if categories is not None and len(categories) > 1:
        raise UcpProblem(400, "invalid_request", "Filter on one category at a time.")
    limit = min(request.pagination.limit or 10, MAX_LIMIT) if request.pagination is not None else 10
    result = await services.catalog.search(
        request.query or "",
        category=categories[0] if categories else None,
        min_price=price.min if price is not None else None,
        max_price=price.max if price is not None else None,
        limit=limit,
        cursor=request.pagination.cursor if request.pagination is not None else None,
    )
    products: list[dict[str, Any]] = []
    seen: set[str] = set()
    for hit in result.items:  # hits are SKUs, best first: one product each, in the order of its best SKU
        if hit.product_id in seen:
            continue
        seen.add(hit.product_id)
        try:
            products.append(product(await services.catalog.get_product(product_id=hit.product_id)))
        except NotFound:
            continue  # removed between the search and now
    pagination: dict[str, Any] = {"has_next_page": result.next_cursor is not None}
    if result.next_cursor is not None:
        pagination["cursor"] = result.next_cursor
    answer = {
        "ucp": _catalog_ucp(spec.CATALOG_SEARCH),
        "products": products,
        "pagination": pagination,
    }
    return SearchResponse.model_validate(answer).model_dump(mode="json", by_alias=True, exclude_none=True)


async def _resolve(services: Services, identifier: str) -> tuple[ProductOut, str | None] | None:
    """A product id or a SKU (variant id) → (product, the SKU it named or None), or None if unknown."""
    for by_product in (True, False):
        try:
            if by_product:
                return await services.catalog.get_product(product_id=identifier), None
            return await services.catalog.get_product(sku=identifier), identifier
        except NotFound:
            continue
    return None


def _featured(found: ProductOut) -> str:
    """The variant shown for a product named by its id: the first one in stock, else the first."""
    return next((v.sku for v in found.variants if v.in_stock), found.variants[0].sku)


def _catalog_ucp(capability: str) -> dict[str, Any]:
    return {"version": spec.VERSION, "capabilities": {capability: [{"version": spec.VERSION}]}}


async def lookup(services: Services, body: Any) -> dict[str, Any]:
    """Products for product ids and variant ids (SKUs); each returned variant says which inputs named it."""
    request = parse(LookupRequest, body)
    ids = list(dict.fromkeys(request.ids))  # deduplicated, first occurrence kept
    if len(ids) > MAX_LOOKUP_IDS:
        raise UcpProblem(400, "request_too_large", f"Look up at most {MAX_LOOKUP_IDS} ids per request.")
    products: dict[str, ProductOut] = {}
    inputs: dict[str, dict[str, list[dict[str, str]]]] = {}  # product id → variant id → inputs
    messages: list[dict[str, Any]] = []
    for index, identifier in enumerate(ids):
        resolved = await _resolve(services, identifier)
        if resolved is None:
            messages.append(
                {"type": "error", "code": "not_found", "content": f"No product or variant {identifier!r}.",
                 "severity": "recoverable", "path": f"$.ids[{index}]"}
            )  # fmt: skip
            continue
        found, sku = resolved
        products[found.product_id] = found
        variant = sku or _featured(found)
        match = "exact" if sku else "featured"
        inputs.setdefault(found.product_id, {}).setdefault(variant, []).append({"id": identifier, "match": match})
    answer_products = []
    for product_id, found in products.items():
        shaped = product(found)
        named = inputs[product_id]
        shaped["variants"] = [{**v, "inputs": named[v["id"]]} for v in shaped["variants"] if v["id"] in named]
        answer_products.append(shaped)
    answer: dict[str, Any] = {"ucp": _catalog_ucp(spec.CATALOG_LOOKUP), "products": answer_products}
    if messages:
        answer["messages"] = messages
    return LookupResponse.model_validate(answer).model_dump(mode="json", by_alias=True, exclude_none=True)


async def get_product(services: Services, body: Any) -> dict[str, Any]:
    """One product in full: all its variants, the one a variant id named first; unknown → the error envelope."""
    request = parse(GetProductRequest, body)
    resolved = await _resolve(services, request.id)
    if resolved is None:
        return {
            "ucp": {"version": spec.VERSION, "status": "error"},
            "messages": [
                {"type": "error", "code": "not_found", "content": f"No product or variant {request.id!r}.",
                 "severity": "unrecoverable"}
            ],
        }  # fmt: skip
    found, sku = resolved
    shaped = product(found)
    first = sku or _featured(found)
    shaped["variants"].sort(key=lambda v: v["id"] != first)
    answer = {"ucp": _catalog_ucp(spec.CATALOG_LOOKUP), "product": shaped}
    return GetProductResponse.model_validate(answer).model_dump(mode="json", by_alias=True, exclude_none=True)
