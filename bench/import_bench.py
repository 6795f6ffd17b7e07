"""CSV catalog import benchmark: 100,000 rows into SQLite and PostgreSQL.

    .venv/bin/python bench/import_bench.py [--rows 100000] [--skip-postgres]

Generates a catalog CSV in a temporary directory (products with 1-4 variants, ~30-word
descriptions, prices, stock, 12 categories; fixed seed), then times ``CatalogImportService.import_path``
end to end (read, parse, validate, upsert, commit):

- dry run (validation only: parse, check, look the SKUs up, write nothing);
- first import into an empty database (all SKUs created);
- re-import of the same file with every price changed (all SKUs updated, no text changed);
- re-import with every description changed (all SKUs updated, search index rewritten);
- on SQLite also the first import with the FTS triggers left live (row-by-row index maintenance),
  for comparison with the bulk index path the importer takes from 2,000 rows on.

PostgreSQL: a throw-away database next to MCP_CHECKOUT_BENCH_PG_URL
(default postgresql+asyncpg://postgres@127.0.0.1:5432/test), dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
import os
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.engine import make_url

from mcp_checkout.domain import utc_now
from mcp_checkout.service.catalog_import import CatalogImportService
from mcp_checkout.service.views import ImportReport
from mcp_checkout.store import catalog_write, migrate
from mcp_checkout.store.db import Database

PG_URL = os.environ.get("MCP_CHECKOUT_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
SEED = 20261125


def words(text: str) -> list[str]:
    return text.split()


CATEGORIES = [
    "Kitchen",
    "Coffee & Tea",
    "Apparel",
    "Outdoors",
    "Home",
    "Stationery",
    "Electronics Accessories",
    "Garden",
    "Bath",
    "Toys",
    "Pet Supplies",
    "Books",
]
ADJECTIVES = words(
    "classic modern vintage compact portable durable soft warm light slim rugged elegant simple premium everyday "
    "handmade recycled insulated breathable quilted padded adjustable foldable stackable reusable washable heritage "
    "urban alpine coastal rustic minimal bold matte glossy textured brushed hammered woven knitted waxed organic"
)
MATERIALS = words(
    "cotton linen wool merino cashmere denim canvas leather suede nylon fleece bamboo hemp oak walnut maple teak "
    "steel copper brass aluminium ceramic stoneware porcelain glass marble slate cork rubber silicone"
)
NOUNS = words(
    "jacket coat vest sweater cardigan hoodie shirt tee dress skirt trousers shorts socks scarf beanie gloves boots "
    "sneakers slippers backpack tote wallet belt umbrella mug cup bowl plate teapot kettle skillet saucepan knife "
    "board blanket throw pillow cushion rug towel apron candle lamp vase planter clock mirror frame basket bottle "
    "flask notebook journal pen pencil stool chair shelf tent hammock lantern headlamp compass leash collar"
)
FILLER = words(
    "the a and with for of in on to from by this our your its made designed built crafted perfect ideal great easy "
    "everyday use care wash hand gentle cold dry store keep gift home office travel outdoor kitchen garden studio "
    "weekend trip commute hike camp beach winter summer spring autumn comfort style quality finish detail feel fit "
    "size shape colour tone look touch weight strength grip balance support warmth natural sustainable small batch "
    "family workshop artisan tradition timeless lasting years every piece unique slight variation charm pairs well"
)
VARIANTS = [["S", "M", "L", "XL"], ["Black", "White", "Sage", "Navy"], ["Small", "Large"], ["1 m", "2 m", "3 m"]]
HEADER = [
    "product_name",
    "sku_code",
    "product_description",
    "product_external_id",
    "sku_name",
    "unit_price",
    "quantity_on_hand",
    "category",
    "currency",
]


def description(rng: random.Random, noun: str, material: str) -> str:
    words: list[str] = []
    while len(words) < 30:
        pick = rng.random()
        if pick < 0.55:
            words.append(rng.choice(FILLER))
        elif pick < 0.75:
            words.append(rng.choice(ADJECTIVES))
        elif pick < 0.9:
            words.append(material)
        else:
            words.append(noun)
    return (" ".join(words) + ".").capitalize()


def write_catalog(path: Path, rows: int, *, price_bump: int = 0, text_tag: str = "") -> None:
    rng = random.Random(SEED)
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(HEADER)
        written = product = 0
        while written < rows:
            product += 1
            noun, material = rng.choice(NOUNS), rng.choice(MATERIALS)
            name = f"{rng.choice(ADJECTIVES).capitalize()} {material} {noun} {product}"
            text_ = description(rng, noun, material) + (f" {text_tag}" if text_tag else "")
            category = rng.choice(CATEGORIES)
            variants = [""] if rng.random() < 0.6 else rng.choice(VARIANTS)[: rng.randint(2, 4)]
            for number, variant in enumerate(variants):
                if written >= rows:
                    break
                cents = rng.randint(300, 40_000) + price_bump
                out.writerow(
                    [
                        name,
                        f"SKU-{product:06d}-{number}",
                        text_,
                        f"P{product:06d}",
                        variant,
                        f"{cents // 100}.{cents % 100:02d}",
                        rng.randint(0, 500),
                        category,
                        "USD",
                    ]
                )
                written += 1


async def timed(label: str, rows: int, work: Callable[[], Awaitable[ImportReport]]) -> ImportReport:
    started, cpu = time.perf_counter(), time.process_time()
    report = await work()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"  {label:<44} {seconds:6.2f} s  {rows / seconds:9,.0f} rows/s  cpu {cpu:5.2f} s  "
        f"(created {report.created:,}, updated {report.updated:,}, skipped {report.skipped:,})",
        flush=True,
    )
    return report


async def run_backend(name: str, url: str, files: dict[str, Path], rows: int) -> None:
    print(f"{name}:", flush=True)
    db = Database(url)
    try:
        await migrate.upgrade(db)
        service = CatalogImportService(db, utc_now, "USD")
        base = files["base"]
        await timed("dry run (validate + look up, no writes)", rows, lambda: service.import_path(base, dry_run=True))
        await timed("first import (all created)", rows, lambda: service.import_path(base))
        await timed("re-import, prices changed (all updated)", rows, lambda: service.import_path(files["prices"]))
        await timed("re-import, descriptions changed (updated)", rows, lambda: service.import_path(files["texts"]))
        if db.dialect == "sqlite":
            check = await db.read(
                lambda conn: conn.execute(text("SELECT count(*) FROM sku_fts WHERE sku_fts MATCH 'retagged'")).scalar()
            )
            await db.write(
                lambda conn: conn.execute(text("INSERT INTO sku_fts(sku_fts, rank) VALUES ('integrity-check', 1)"))
            )
            print(f"  search index consistent with skus (integrity-check passed); 'retagged' matches {check:,}")
    finally:
        await db.dispose()
    if db.dialect == "sqlite":
        # The same first import with the FTS triggers doing the index work row by row.
        live = Database(f"sqlite:///{Path(make_url(url).database or '').with_name('live.db')}")
        threshold = catalog_write.BULK_INDEX_THRESHOLD
        catalog_write.BULK_INDEX_THRESHOLD = 10**12
        try:
            await migrate.upgrade(live)
            service = CatalogImportService(live, utc_now, "USD")
            await timed(
                "first import, live FTS triggers (comparison)", rows, lambda: service.import_path(files["base"])
            )
        finally:
            catalog_write.BULK_INDEX_THRESHOLD = threshold
            await live.dispose()


async def pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    logging.getLogger("mcp_checkout.store.db").setLevel(logging.ERROR)  # "slow write transaction" is the point here
    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        folder = Path(tmp)
        files = {"base": folder / "catalog.csv", "prices": folder / "prices.csv", "texts": folder / "texts.csv"}
        started = time.perf_counter()
        write_catalog(files["base"], args.rows)
        write_catalog(files["prices"], args.rows, price_bump=1)
        write_catalog(files["texts"], args.rows, price_bump=1, text_tag="retagged")
        size = files["base"].stat().st_size
        print(
            f"{args.rows:,} rows, {size / 1_048_576:.1f} MB CSV generated in {time.perf_counter() - started:.1f} s "
            f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; cpu = this process's CPU time)",
            flush=True,
        )
        await run_backend("SQLite", f"sqlite:///{folder / 'bench.db'}", files, args.rows)
        if not args.skip_postgres:
            name = f"mcp_checkout_bench_{uuid.uuid4().hex[:8]}"
            await pg_admin(f'CREATE DATABASE "{name}"')
            try:
                url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
                await run_backend("PostgreSQL", url, files, args.rows)
            finally:
                await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
