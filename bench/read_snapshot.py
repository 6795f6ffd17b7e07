"""What one snapshot per read costs on PostgreSQL: get_order (service level, one order with 2 lines) with
reads as REPEATABLE READ READ ONLY transactions (the store's way) against autocommit statements (the old
way, which could mix two commits), interleaved in blocks so load on a shared machine hits both alike.

    .venv/bin/python bench/read_snapshot.py [--calls 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from bench.common import catalog_rows
from mcp_checkout.config import Settings
from mcp_checkout.domain import Principal, utc_now
from mcp_checkout.service.container import build_services
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.store import migrate
from mcp_checkout.store.catalog_write import upsert_catalog

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(make_url(PG).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def main(calls: int, rounds: int) -> None:
    name = f"bench_snapshot_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(PG).set(database=name).render_as_string(hide_password=False)
        with tempfile.TemporaryDirectory() as home:
            services = build_services(Settings(data_dir=Path(home), database_url=url))
            await migrate.upgrade(services.db)
            rows = list(catalog_rows(100))
            await services.db.write(lambda conn: upsert_catalog(conn, rows, utc_now()))
            who = Principal(id="local", kind="merchant", client="bench")
            items = [(rows[0].sku, 1), (rows[1].sku, 2)]
            order = await services.orders.create(who, CreateOrder(idempotency_key="bench", items=items))
            db = services.db
            snapshot = db._async_read_engine
            assert snapshot is not None
            modes = {"snapshot (REPEATABLE READ READ ONLY)": snapshot,
                     "autocommit (old)": snapshot.execution_options(isolation_level="AUTOCOMMIT")}  # fmt: skip
            samples: dict[str, list[float]] = {mode: [] for mode in modes}
            for _ in range(rounds):
                for mode, engine in modes.items():
                    db._async_read_engine = engine
                    for _ in range(calls):
                        started = time.perf_counter()
                        await services.orders.get(who, order.order_id)
                        samples[mode].append((time.perf_counter() - started) * 1000)
            db._async_read_engine = snapshot
            for mode, values in samples.items():
                values.sort()
                p95 = values[int(len(values) * 0.95)]
                print(
                    f"get_order p50 {statistics.median(values):.3f} ms  p95 {p95:.3f} ms  ({len(values)} calls)  {mode}"
                )
            await services.close()
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.rounds))
