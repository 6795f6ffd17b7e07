"""CSV catalog import and the demo catalog against real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import anyio
import pytest
from sqlalchemy import Connection, text

from mcp_checkout.domain import CatalogRow, utc_now
from mcp_checkout.errors import CatalogImportInvalid, InvalidInput
from mcp_checkout.service.catalog_import import CatalogImportService
from mcp_checkout.service.container import Services
from mcp_checkout.store import catalog_write
from mcp_checkout.store.catalog import reserve_stock
from mcp_checkout.store.demo_catalog import DEMO_ROWS, seed_demo_catalog

HEADER = "product_name,sku_code,product_description,product_ref,sku_name,price,stock_qty,category,currency"
CATALOG = f"""{HEADER}
Stoneware Coffee Mug,MUG-BLU,"Hand-glazed 12 oz mug.
Dishwasher safe.",P-MUG,Blue,18.00,10,Kitchen,USD
Stoneware Coffee Mug,MUG-GRN,,P-MUG,Green,18.00,4,,
Merino Hiking Socks,SOCK-M,Warm merino socks for long trails.,P-SOCK,M,22.50,30,Apparel,usd
Linen Tea Towel,TOWEL-1,Stonewashed linen towel.,,,9.90,0,Kitchen,EUR
"""


def importer(services: Services) -> CatalogImportService:
    return CatalogImportService(services.db, utc_now, services.settings.default_currency)


async def scalar(services: Services, sql: str, **params: Any) -> Any:
    return await services.db.read(lambda conn: conn.execute(text(sql), params).scalar())


async def sku_row(services: Services, sku: str) -> dict[str, Any]:
    def read(conn: Connection) -> dict[str, Any]:
        row = conn.execute(text("SELECT * FROM skus WHERE sku = :sku"), {"sku": sku}).mappings().one()
        return dict(row)

    return await services.db.read(read)


async def search_skus(services: Services, query: str) -> set[str]:
    return {hit.sku for hit in (await services.catalog.search(query, limit=100)).items}


async def test_import_creates_products_and_skus_that_search_finds(services: Services) -> None:
    report = await importer(services).import_text(CATALOG, source="catalog.csv")
    assert (report.rows_read, report.created, report.updated, report.skipped, report.problems) == (4, 4, 0, 0, [])
    assert await search_skus(services, "mug") == {"MUG-BLU", "MUG-GRN"}
    assert await search_skus(services, "dishwasher") == {"MUG-BLU", "MUG-GRN"}  # the description is shared
    assert await search_skus(services, "trails") == {"SOCK-M"}
    product = await services.catalog.get_product(sku="MUG-GRN")
    assert product.external_id == "P-MUG" and product.category == "Kitchen"
    assert product.description == "Hand-glazed 12 oz mug.\nDishwasher safe."
    assert [(v.sku, v.title, v.price.amount, v.available) for v in product.variants] == [
        ("MUG-BLU", "Stoneware Coffee Mug - Blue", 1800, 10),
        ("MUG-GRN", "Stoneware Coffee Mug - Green", 1800, 4),
    ]
    towel = await services.catalog.get_product(sku="TOWEL-1")
    assert (towel.variants[0].price.amount, towel.variants[0].price.currency) == (990, "EUR")
    assert (await sku_row(services, "SOCK-M"))["price_minor"] == 2250
    hits = await services.catalog.search("", category="kitchen", limit=100)
    assert {hit.sku for hit in hits.items} == {"MUG-BLU", "MUG-GRN", "TOWEL-1"}


async def test_reimport_updates_price_and_stock_without_duplicates(services: Services) -> None:
    service = importer(services)
    await service.import_text(CATALOG)
    changed = CATALOG.replace("18.00,10", "19.50,12").replace("Warm merino socks", "Cushioned merino socks")
    report = await service.import_text(changed)
    assert (report.created, report.updated) == (0, 4)
    assert await scalar(services, "SELECT count(*) FROM skus") == 4
    assert await scalar(services, "SELECT count(*) FROM products") == 3
    blue = await sku_row(services, "MUG-BLU")
    assert (blue["price_minor"], blue["stock_on_hand"]) == (1950, 12)
    assert await search_skus(services, "cushioned") == {"SOCK-M"}
    assert await search_skus(services, "warm") == set()


async def test_one_bad_row_rejects_the_file_unless_skip_invalid(services: Services) -> None:
    bad = CATALOG + "Broken Mug,MUG-BAD,,,,12.345,1,Kitchen,USD\n"
    service = importer(services)
    with pytest.raises(CatalogImportInvalid) as caught:
        await service.import_text(bad, source="catalog.csv")
    assert "1 of 5 rows have problems" in caught.value.message and "Nothing was changed" in caught.value.message
    assert caught.value.details["problems"] == [
        {"line": 7, "sku": "MUG-BAD", "reason": "price '12.345' has 3 decimal places; USD prices have at most 2"}
    ]
    assert await scalar(services, "SELECT count(*) FROM skus") == 0

    report = await service.import_text(bad, skip_invalid=True)
    assert (report.created, report.skipped) == (4, 1)
    assert [(issue.line, issue.sku) for issue in report.problems] == [(7, "MUG-BAD")]
    assert await scalar(services, "SELECT count(*) FROM skus") == 4


async def test_stock_below_reserved_is_rejected(services: Services) -> None:
    service = importer(services)
    await service.import_text(CATALOG)
    assert await services.db.write(lambda conn: reserve_stock(conn, "MUG-BLU", 6, utc_now()))
    lowered = CATALOG.replace("18.00,10", "17.00,5").replace("22.50,30", "21.00,25")
    with pytest.raises(CatalogImportInvalid) as caught:
        await service.import_text(lowered)
    [problem] = caught.value.details["problems"]
    assert problem["line"] == 2 and problem["sku"] == "MUG-BLU"
    assert problem["reason"].startswith("stock_qty 5 is below the 6 unit(s) reserved by unpaid orders")
    assert (await sku_row(services, "SOCK-M"))["price_minor"] == 2250  # nothing changed

    report = await service.import_text(lowered, skip_invalid=True)
    assert (report.updated, report.skipped) == (3, 1)
    blue, socks = await sku_row(services, "MUG-BLU"), await sku_row(services, "SOCK-M")
    assert (blue["stock_on_hand"], blue["reserved"], blue["price_minor"]) == (10, 6, 1800)
    assert (socks["stock_on_hand"], socks["price_minor"]) == (25, 2100)

    # The store refuses too, whoever calls it.
    row = CatalogRow("Stoneware Coffee Mug", "MUG-BLU", 1800, "USD", 2, external_id="P-MUG", sku_name="Blue")
    with pytest.raises(InvalidInput, match="below the 6 units reserved"):
        await services.db.write(lambda conn: catalog_write.upsert_catalog(conn, [row], utc_now()))


async def test_dry_run_changes_nothing_and_reports_what_would_happen(services: Services) -> None:
    service = importer(services)
    await service.import_text(CATALOG)
    more = CATALOG.replace("18.00,10", "1.00,1") + "Jar,JAR-1,,,,4.00,9,Kitchen,USD\nBad,BAD,,,,x,1,,\n"
    report = await service.import_text(more, dry_run=True, skip_invalid=True)
    assert (report.dry_run, report.rows_read, report.created, report.updated, report.skipped) == (True, 6, 1, 4, 1)
    assert await scalar(services, "SELECT count(*) FROM skus") == 4
    assert (await sku_row(services, "MUG-BLU"))["price_minor"] == 1800
    with pytest.raises(CatalogImportInvalid):
        await service.import_text(more, dry_run=True)


async def test_absent_price_column_updates_stock_only(services: Services) -> None:
    service = importer(services)
    await service.import_text(CATALOG)
    report = await service.import_text("product_name,sku_code,quantity_on_hand\nMerino Hiking Socks,SOCK-M,7\n")
    assert report.updated == 1
    socks = await sku_row(services, "SOCK-M")
    assert (socks["stock_on_hand"], socks["price_minor"], socks["name"], socks["category"]) == (7, 2250, "M", "Apparel")
    product = await services.catalog.get_product(sku="SOCK-M")
    assert product.external_id == "P-SOCK" and product.description == "Warm merino socks for long trails."


async def test_a_variant_in_a_later_file_joins_its_product_by_name(services: Services) -> None:
    service = importer(services)
    await service.import_text("product_name,sku_code,unit_price\nCedar Candle,CANDLE-S,20\n")
    await service.import_text("product_name,sku_code,unit_price\ncedar  candle,CANDLE-L,30\n")
    product = await services.catalog.get_product(sku="CANDLE-L")
    assert [variant.sku for variant in product.variants] == ["CANDLE-S", "CANDLE-L"]


async def test_progress_is_reported_and_ends_complete(services: Services) -> None:
    rows = "".join(f"Widget {n},W-{n:05d},,,,1.00,1,Tools,\n" for n in range(5000))
    service = CatalogImportService(services.db, utc_now, "USD", progress_interval=0.001)
    seen: list[tuple[int, int]] = []

    async def progress(done: int, total: int) -> None:
        seen.append((done, total))

    report = await service.import_text(HEADER + "\n" + rows, progress=progress)
    assert report.created == 5000
    assert seen[-1] == (10_000, 10_000)  # validation and writing count one unit per row each
    assert all(earlier[0] <= later[0] for earlier, later in pairwise(seen))
    assert all(done <= total for done, total in seen)


async def test_bulk_import_keeps_the_search_index_exact(services: Services) -> None:
    """Large enough for the bulk index path on SQLite: new SKUs, text changes and price-only changes."""
    count = catalog_write.BULK_INDEX_THRESHOLD + 500
    service = importer(services)

    def catalog(word: str, price: str) -> str:
        lines = [f"Gadget {n},G-{n:05d},A {word} gadget number {n}.,,,{price},5,Gadgets,USD" for n in range(count)]
        return HEADER + "\n" + "\n".join(lines) + "\n"

    first = await service.import_text(catalog("turquoise", "3.00"))
    assert first.created == count
    assert len(await search_skus(services, "turquoise")) == 100  # one page: the limit
    assert (await services.catalog.search("gadget 1234")).items[0].sku == "G-01234"

    prices = await service.import_text(catalog("turquoise", "4.00"))
    assert prices.updated == count and await scalar(services, "SELECT min(price_minor) FROM skus") == 400

    texts = await service.import_text(catalog("vermilion", "4.00"))
    assert texts.updated == count
    assert await search_skus(services, "turquoise") == set()
    assert (await services.catalog.search("vermilion gadget 77")).items[0].sku == "G-00077"
    if services.db.dialect == "sqlite":
        await assert_sqlite_index_exact(services)


async def test_bulk_import_of_part_of_a_catalog_updates_the_index_entry_by_entry(services: Services) -> None:
    """A bulk import that touches under half the catalog writes index entries one by one (SQLite)
    instead of rebuilding the index: new SKUs, then text changes of existing ones."""
    size = catalog_write.BULK_INDEX_THRESHOLD
    service = importer(services)

    def catalog(first: int, count: int, word: str) -> str:
        lines = [
            f"Gizmo {n},Z-{n:05d},A {word} gizmo number {n}.,,,2.00,5,Gizmos,USD" for n in range(first, first + count)
        ]
        return HEADER + "\n" + "\n".join(lines) + "\n"

    await service.import_text(catalog(0, 2 * size + 200, "amber"))  # the base catalog
    added = await service.import_text(catalog(2 * size + 200, size, "amber"))  # new SKUs: a third of the catalog
    assert added.created == size
    changed = await service.import_text(catalog(0, size, "cobalt"))  # text changes: a third of the catalog
    assert changed.updated == size
    assert len(await search_skus(services, "amber")) == 100  # a full page of the 2 * size + 200 left
    assert (await services.catalog.search("amber gizmo 5010")).items[0].sku == "Z-05010"
    assert (await services.catalog.search("cobalt gizmo 17")).items[0].sku == "Z-00017"
    assert (await services.catalog.search("cobalt gizmo 2100")).items == []
    if services.db.dialect == "sqlite":
        await assert_sqlite_index_exact_for(services, "gizmo", 3 * size + 200)
        await assert_sqlite_index_exact_for(services, "cobalt", size)
        await assert_sqlite_index_exact_for(services, "amber", 2 * size + 200)


async def assert_sqlite_index_exact(services: Services) -> None:
    def check(conn: Connection) -> None:
        conn.execute(text("INSERT INTO sku_fts(sku_fts, rank) VALUES ('integrity-check', 1)"))
        triggers = {row[0] for row in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))}
        assert {"skus_fts_insert", "skus_fts_update", "skus_fts_delete"} <= triggers
        indexed = conn.execute(text("SELECT count(*) FROM sku_fts WHERE sku_fts MATCH 'gadget'")).scalar()
        assert indexed == conn.execute(text("SELECT count(*) FROM skus")).scalar()

    await services.db.write(check)


async def test_a_failed_bulk_import_leaves_everything_as_it_was(services: Services, monkeypatch: Any) -> None:
    service = importer(services)
    await service.import_text(CATALOG)
    rows = "".join(f"Widget {n},W-{n:05d},Blue widget.,,,1.00,1,Tools,\n" for n in range(12_000))

    def explode(done: int) -> None:
        if done >= 10_000:
            raise RuntimeError("disk on fire")

    real_upsert = catalog_write.upsert_catalog

    def failing_upsert(*args: Any, **kwargs: Any) -> Any:
        kwargs["progress"] = explode
        return real_upsert(*args, **kwargs)

    monkeypatch.setattr(catalog_write, "upsert_catalog", failing_upsert)
    with pytest.raises(RuntimeError, match="disk on fire"):
        await service.import_text(HEADER + "\n" + rows)
    assert await scalar(services, "SELECT count(*) FROM skus") == 4
    assert await search_skus(services, "widget") == set()
    assert await search_skus(services, "mug") == {"MUG-BLU", "MUG-GRN"}
    monkeypatch.undo()
    report = await service.import_text(HEADER + "\n" + rows)
    assert report.created == 12_000
    if services.db.dialect == "sqlite":
        await assert_sqlite_index_exact_for(services, "widget", 12_000)


async def assert_sqlite_index_exact_for(services: Services, word: str, expected: int) -> None:
    def check(conn: Connection) -> None:
        conn.execute(text("INSERT INTO sku_fts(sku_fts, rank) VALUES ('integrity-check', 1)"))
        assert conn.execute(text(f"SELECT count(*) FROM sku_fts WHERE sku_fts MATCH '{word}'")).scalar() == expected

    await services.db.write(check)


async def test_seed_demo_catalog_is_idempotent_and_searchable(services: Services) -> None:
    first = await seed_demo_catalog(services.db, utc_now())
    assert (first.created, first.updated) == (len(DEMO_ROWS), 0)
    assert await services.db.write(lambda conn: reserve_stock(conn, "KIT-MUG-GRN", 2, utc_now()))
    again = await seed_demo_catalog(services.db, utc_now())
    assert (again.created, again.updated) == (0, len(DEMO_ROWS))
    assert await scalar(services, "SELECT count(*) FROM skus") == len(DEMO_ROWS)
    green = await sku_row(services, "KIT-MUG-GRN")
    assert (green["stock_on_hand"], green["reserved"]) == (2, 2)
    coffee_mugs = (await services.catalog.search("coffee mug")).items
    assert any(hit.available >= 2 for hit in coffee_mugs)
    assert len(await search_skus(services, "mug")) >= 2
    assert await search_skus(services, "coffee")


async def test_readers_during_a_bulk_import_see_the_old_or_the_new_catalog(services: Services) -> None:
    """WAL readers on SQLite (while the import has dropped and re-created the FTS triggers in its
    transaction) and MVCC readers on PostgreSQL never see half an import."""
    service = importer(services)
    await service.import_text(CATALOG)
    count = 8_000
    rows = "".join(f"Widget {n},W-{n:05d},Blue widget.,,,1.00,1,Tools,\n" for n in range(count))
    seen: set[tuple[int, int]] = set()
    done = anyio.Event()

    def snapshot(conn: Connection) -> tuple[int, int]:
        # One statement: Database.read is READ COMMITTED on PostgreSQL, a snapshot per statement.
        if conn.dialect.name == "sqlite":
            widgets = "SELECT count(*) FROM sku_fts WHERE sku_fts MATCH 'widget'"
        else:
            widgets = "SELECT count(*) FROM skus WHERE search_vector @@ to_tsquery('english', 'widget')"
        row = conn.execute(text(f"SELECT (SELECT count(*) FROM skus), ({widgets})")).one()
        return int(row[0]), int(row[1])

    async def read_until_done() -> None:
        while not done.is_set():
            seen.add(await services.db.read(snapshot))
            await services.catalog.search("widget", limit=5)
            await anyio.sleep(0.005)

    async with anyio.create_task_group() as group:
        group.start_soon(read_until_done)
        await service.import_text(HEADER + "\n" + rows)
        done.set()
    seen.add(await services.db.read(snapshot))
    assert seen == {(4, 0), (4 + count, count)}, seen  # read before, during and after; never anything else
