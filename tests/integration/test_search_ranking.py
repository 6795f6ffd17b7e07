"""The per-process ranking cache of broad queries gives exactly what ranking every match gives, and a
change of the catalog's text is seen at once (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import event, select

from mcp_checkout.domain import CatalogRow, utc_now
from mcp_checkout.service.container import Services
from mcp_checkout.store import catalog as catalog_store
from mcp_checkout.store.catalog_write import upsert_catalog
from mcp_checkout.store.models import skus

WORDS = ["linen", "wool", "steel", "cedar", "amber", "slate", "canvas", "copper", "maple", "indigo"]


def rows(count: int) -> list[CatalogRow]:
    made = []
    for i in range(count):
        extra = " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(i % 9))
        organic = " organic" * (1 + i % 4)
        made.append(
            CatalogRow(
                f"Item {i:04d} {WORDS[i % len(WORDS)]}", f"RANK-{i:04d}", 100 + (i * 37) % 5000, "USD", i % 3,
                f"A{organic} thing made of {extra} for testing.", None, "", "Home" if i % 2 else "Kitchen",
            )
        )  # fmt: skip
    return made


async def full_ranking(services: Services, terms: Sequence[str], filters: catalog_store.SearchFilters,
                       limit: int, offset: int) -> list[str]:  # fmt: skip
    found = await services.db.read(lambda conn: catalog_store.search(conn, terms, filters, limit, offset))
    return [row["sku"] for row in found]


async def test_cached_pages_equal_the_full_ranking_and_follow_text_changes(services: Services) -> None:
    now = utc_now()
    await services.db.write(lambda conn: upsert_catalog(conn, rows(700), now))  # more matches than RANK_DEPTH
    cases = [
        ({}, 0), ({}, 20), ({}, 480), ({}, 600),
        ({"category": "Home"}, 0), ({"in_stock_only": True}, 40), ({"min_price": 1000, "max_price": 3000}, 0),
    ]  # fmt: skip
    for _ in range(2):  # the second round is served from the cached ranking
        for options, offset in cases:
            filters = catalog_store.SearchFilters(
                category_key=str(options["category"]).lower() if "category" in options else None,
                min_price=options.get("min_price"),  # type: ignore[arg-type]
                max_price=options.get("max_price"),  # type: ignore[arg-type]
                in_stock_only=bool(options.get("in_stock_only", False)),
            )
            expected = await full_ranking(services, ["organic"], filters, 20, offset)
            cursor = None
            if offset:  # reach the offset the way an agent does: with the cursor of a previous page
                cursor = (await services.catalog.search("organic", limit=offset, **options)).next_cursor  # type: ignore[arg-type]
                assert cursor is not None
            got = await services.catalog.search("organic", limit=20, cursor=cursor, **options)  # type: ignore[arg-type]
            assert [hit.sku for hit in got.items] == expected, (options, offset)
    # A text change moves the ranking at once: this SKU now says "organic" far more than any other.
    before = await services.catalog.search("organic", limit=5)
    assert before.items[0].sku != "RANK-0699"
    changed = rows(700)[699]
    boosted = CatalogRow(
        "Organic Organic Organic", changed.sku, changed.price_minor, "USD", changed.stock,
        "organic " * 30, None, "", changed.category,
    )  # fmt: skip
    await services.db.write(lambda conn: upsert_catalog(conn, [boosted], utc_now()))
    after = await services.catalog.search("organic", limit=5)
    assert after.items[0].sku == "RANK-0699"
    assert [hit.sku for hit in after.items] == await full_ranking(
        services, ["organic"], catalog_store.SearchFilters(), 5, 0
    )


async def test_a_cached_page_is_one_prebuilt_statement_whatever_the_number_of_ids(services: Services) -> None:
    """The rows of a page of a cached ranking come from ONE statement that takes its ids as one parameter
    (a bigint[] on PostgreSQL, JSON text on SQLite), so it is prepared once, for any page size."""
    await services.db.write(lambda conn: upsert_catalog(conn, rows(60), utc_now()))
    by_sku = await services.db.read(lambda conn: conn.execute(select(skus.c.sku, skus.c.id)).all())
    ids = [row.id for row in sorted(by_sku)]
    heard: list[str] = []
    engine = services.db.sync_engine if services.db.dialect == "sqlite" else services.db.async_engine.sync_engine
    listen = event.listens_for(engine, "before_cursor_execute")

    @listen
    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        heard.append(statement)

    for wanted in ([], ids[:1], [*ids[3:9], 10**9], ids, ids[::-1]):
        got = await services.db.fetch(catalog_store.ROWS_BY_IDS, wanted)
        assert sorted(row[1] for row in got) == sorted(sku for sku, id_ in by_sku if id_ in wanted)
        assert all(len(row) == len(catalog_store.SkuRow._fields) + 1 for row in got)
    assert len(heard) == 5 and len(set(heard)) == 1, heard
    event.remove(engine, "before_cursor_execute", note)

    # A search served from the cache reads its page that way, and gives what ranking every match gives.
    filters = catalog_store.SearchFilters()
    first = await services.catalog.search("organic", limit=10)  # ranks, and caches the ranking
    heard.clear()
    event.listen(engine, "before_cursor_execute", note)
    again = await services.catalog.search("organic", limit=10)
    event.remove(engine, "before_cursor_execute", note)
    assert heard == [catalog_store.ROWS_BY_IDS.statement.compile(dialect=engine.dialect).string]
    assert [hit.sku for hit in again.items] == [hit.sku for hit in first.items]
    assert [hit.sku for hit in again.items] == await full_ranking(services, ["organic"], filters, 10, 0)
