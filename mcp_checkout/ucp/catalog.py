"""The catalog search capability (``dev.ucp.shopping.catalog.search``) over ``service/catalog.py``: the
native ranked search, grouped into UCP products (a product's variants are its SKUs; a variant id is the
SKU code, which is also a checkout ``item.id``)."""

from __future__ import annotations

from typing import Any

from ucp_sdk.models.schemas.shopping.catalog_search import SearchRequest, SearchResponse

from mcp_checkout.errors import NotFound
from mcp_checkout.service.container import Services
from mcp_checkout.service.views import ProductOut
from mcp_checkout.ucp import spec
from mcp_checkout.ucp.checkout import parse
from mcp_checkout.ucp.negotiation import UcpProblem

MAX_LIMIT = 50


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
        "ucp": {"version": spec.VERSION, "capabilities": {spec.CATALOG_SEARCH: [{"version": spec.VERSION}]}},
        "products": products,
        "pagination": pagination,
    }
    return SearchResponse.model_validate(answer).model_dump(mode="json", by_alias=True, exclude_none=True)
