"""Catalog use cases: search and product look-ups."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from mcp_checkout import domain
from mcp_checkout.errors import InvalidInput, ProductNotFound, SkuNotFound
from mcp_checkout.service.views import MoneyOut, ProductOut, SearchHit, SearchResult
from mcp_checkout.store import catalog as catalog_store
from mcp_checkout.store.db import Database

MAX_TERMS = 8
MAX_TERM_LENGTH = 40
_WORD = re.compile(r"\w+", re.UNICODE)


def search_terms(query: str) -> list[str]:
    """The words of a free-text query, lower-cased; operators, quotes and symbols are dropped."""
    normalised = unicodedata.normalize("NFKC", query).lower()
    terms: list[str] = []
    for found in _WORD.findall(normalised):
        word = found.strip("_")[:MAX_TERM_LENGTH]
        if word and word not in terms:
            terms.append(word)
    return terms[:MAX_TERMS]


def _variant(row: catalog_store.SkuRow) -> dict[str, Any]:
    """A :class:`SkuOut`'s fields (validated with the product's in one call: cheaper than a model per SKU)."""
    available = domain.available_units(row.stock_on_hand, row.reserved)
    return {
        "sku": row.sku,
        "name": row.name,
        "title": row.title,
        "price": MoneyOut.minor(row.price_minor, row.currency),
        "available": available,
        "in_stock": available > 0,
        "image_url": row.image_url or None,
        "requires_shipping": bool(row.requires_shipping),
        "tax_category": row.tax_category or "standard",
        "weight_grams": row.weight_grams,
    }


def _hit(row: catalog_store.SearchRow) -> SearchHit:
    available = domain.available_units(row["stock_on_hand"], row["reserved"])
    return SearchHit(
        sku=row["sku"],
        product_id=row["product_id"],
        title=row["title"],
        category=row["category"],
        price=MoneyOut.minor(row["price_minor"], row["currency"]),
        available=available,
        in_stock=available > 0,
    )


class CatalogService:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._rankings = catalog_store.RankingCache()

    async def search(
        self,
        query: str,
        *,
        category: str | None = None,
        min_price: int | None = None,
        max_price: int | None = None,
        in_stock_only: bool = False,
        limit: int = 20,
        cursor: str | None = None,
    ) -> SearchResult:
        if min_price is not None and max_price is not None and min_price > max_price:
            raise InvalidInput(
                f"min_price ({min_price}) is above max_price ({max_price}). Swap them or drop one.",
                details={"min_price": min_price, "max_price": max_price},
            )
        terms = search_terms(query)
        filters = catalog_store.SearchFilters(
            category_key=domain.category_key(category) if category else None,
            min_price=min_price,
            max_price=max_price,
            in_stock_only=in_stock_only,
        )
        scope = domain.cursor_scope(
            {"t": terms, "c": filters.category_key, "lo": min_price, "hi": max_price, "s": in_stock_only}
        )
        offset = domain.decode_cursor(cursor, "search_catalog", scope) if cursor else 0
        rows: Sequence[catalog_store.SearchRow] | None = None
        if not terms and query.strip():
            rows = []  # only symbols or emoji: nothing can match
        elif terms and filters.empty and self._rankings.covers(terms, filters, offset + limit + 1):
            # A page of a query ranked before is one indexed fetch (unless the catalog's text changed since).
            rows = await catalog_store.cached_page(self._db, terms, limit + 1, offset, self._rankings)
        if rows is None:

            def run(conn: Connection) -> Sequence[catalog_store.SearchRow]:
                return catalog_store.search(conn, terms, filters, limit + 1, offset, cache=self._rankings)

            # Ranking may take thousands of matches, which is kept off the event loop.
            rows = await self._db.read(run, quick=self._rankings.covers(terms, filters, offset + limit + 1))
        has_more = len(rows) > limit
        return SearchResult(
            query=query,
            terms=terms,
            items=[_hit(row) for row in rows[:limit]],
            next_cursor=domain.encode_cursor("search_catalog", offset + limit, scope) if has_more else None,
        )

    async def get_product(self, *, product_id: str | None = None, sku: str | None = None) -> ProductOut:
        if (product_id is None) == (sku is None):
            raise InvalidInput(
                "Pass exactly one of product_id or sku (both come from search_catalog results).",
                next_actions=["search_catalog"],
            )
        if product_id is not None:
            rows = await self._db.fetch(catalog_store.PRODUCT_WITH_SKUS_BY_ID, product_id)
        else:
            rows = await self._db.fetch(catalog_store.PRODUCT_WITH_SKUS_BY_CODE, sku)
        found = catalog_store.product_of_rows(rows)
        if found is None or not found.skus:  # every SKU archived: no longer in the catalog
            if sku is not None:
                raise SkuNotFound(
                    f"No SKU {sku!r} in the catalog. Find SKUs with search_catalog.",
                    details={"sku": sku},
                    next_actions=["search_catalog"],
                )
            raise ProductNotFound(
                f"No product {product_id!r}. Find products with search_catalog.",
                details={"product_id": product_id},
                next_actions=["search_catalog"],
            )
        product = found.product
        return ProductOut.model_validate(
            {
                "product_id": product.id,
                "external_id": product.external_id,
                "name": product.name,
                "description": product.description,
                "category": product.category,
                "description_html": product.description_html or None,
                "variants": [_variant(row) for row in found.skus],
            }
        )
