"""Issue 14's PostgreSQL reads, counted: N service get_product / get_order calls against N asyncpg fetches of
the same SQL on one connection, in Python calls (cProfile) or instructions (callgrind, the timed loop only).
Counts do not depend on the machine's load; wall-clock figures here do.

    .venv/bin/python bench/read_instructions.py setup                  # a database of 1,000 SKUs and one order
    .venv/bin/python bench/read_instructions.py setup --sqlite         # the same in a SQLite file (then --sqlite
                                                                       # with every mode; raw_*: the sqlite3 driver)
    .venv/bin/python bench/read_instructions.py svc_product 300 --calls  # Python calls per call
    valgrind --tool=callgrind --zero-before=sys_getrefcount --dump-before=sys_getallocatedblocks \\
        .venv/bin/python bench/read_instructions.py svc_order 200         # Ir of callgrind.out.<pid>.1 / 200

Modes: svc_product, svc_order (the service), raw_product, raw_order (asyncpg alone, the statement's SQL).
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import pstats
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # type: ignore[import-untyped]

from bench.common import catalog_rows
from mcp_checkout.config import Settings
from mcp_checkout.domain import Principal, utc_now
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.store import catalog as catalog_store
from mcp_checkout.store import migrate, order_rows
from mcp_checkout.store.catalog_write import upsert_catalog

NAME = os.environ.get("READ_BENCH_DB", "mcp_checkout_read_instructions")
ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
SQLITE = "--sqlite" in sys.argv
SQLITE_FILE = Path(tempfile.gettempdir()) / f"{NAME}.db"
URL = f"sqlite:///{SQLITE_FILE}" if SQLITE else f"postgresql+asyncpg://postgres@127.0.0.1:5432/{NAME}"
STATE = Path(tempfile.gettempdir()) / f"{NAME}{'-sqlite' if SQLITE else ''}.json"
WHO = Principal(id="local", kind="merchant", client="bench")


def setup_state() -> dict[str, Any]:
    """What ``setup`` left (the order's id and a SKU); exits with what to run first when it is missing."""
    try:
        state: dict[str, Any] = json.loads(STATE.read_text())
    except (OSError, ValueError):
        sys.exit(f"No benchmark database yet: run `.venv/bin/python bench/read_instructions.py setup"
                 f"{' --sqlite' if SQLITE else ''}` first.")  # fmt: skip
    return state


async def setup() -> None:
    if SQLITE:
        SQLITE_FILE.unlink(missing_ok=True)
    else:
        admin = await asyncpg.connect(ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{NAME}"')
        await admin.close()
    with tempfile.TemporaryDirectory() as home:
        services = build_services(Settings(data_dir=Path(home), database_url=URL))
        await migrate.upgrade(services.db)
        rows = list(catalog_rows(1000))
        await services.db.write(lambda conn: upsert_catalog(conn, rows, utc_now()))
        items = [(rows[0].sku, 1), (rows[5].sku, 2)]
        order = await services.orders.create(WHO, CreateOrder(idempotency_key="read-bench", items=items))
        STATE.write_text(json.dumps({"order_id": order.order_id, "sku": rows[100].sku}))
        await services.close()


def _raw_sql(services: Services, which: str, state: dict[str, str]) -> tuple[str, list[Any]]:
    db = services.db
    dialect = db.sync_engine.dialect if db.dialect == "sqlite" else db.async_engine.sync_engine.dialect
    if which == "product":
        compiled = catalog_store.PRODUCT_WITH_SKUS_BY_CODE.statement.compile(dialect=dialect)
        params = compiled.construct_params({"code": state["sku"]})
    else:
        compiled = order_rows.VIEW_ROWS.statement.compile(dialect=dialect)
        params = compiled.construct_params({"order_id": state["order_id"]})
    return compiled.string, [params[name] for name in compiled.positiontup or []]


async def run(mode: str, n: int, count_calls: bool) -> None:
    state = setup_state()
    kind, which = mode.split("_")
    with tempfile.TemporaryDirectory() as home:
        services = build_services(Settings(data_dir=Path(home), database_url=URL, sweep_interval_seconds=3600))
        raw = None
        call: Callable[[], Awaitable[Any]]
        if kind == "svc" and which == "product":
            call = lambda: services.catalog.get_product(sku=state["sku"])  # noqa: E731
        elif kind == "svc":
            call = lambda: services.orders.get(WHO, state["order_id"])  # noqa: E731
        else:
            sql, args = _raw_sql(services, which, state)
            if SQLITE:
                driver = sqlite3.connect(SQLITE_FILE, isolation_level=None)

                async def call() -> Any:
                    return driver.execute(sql, args).fetchall()

            else:
                raw = await asyncpg.connect(URL.replace("+asyncpg", ""))
                call = lambda: raw.fetch(sql, *args)  # noqa: E731
        for _ in range(50):
            await call()
        profile = cProfile.Profile() if count_calls else None
        started = time.perf_counter()
        if profile is not None:
            profile.enable()
        sys.getrefcount(None)  # callgrind: --zero-before=sys_getrefcount
        for _ in range(n):
            await call()
        sys.getallocatedblocks()  # callgrind: --dump-before=sys_getallocatedblocks
        if profile is not None:
            profile.disable()
        elapsed = time.perf_counter() - started
        print(f"{mode}: {elapsed / n * 1e6:.0f} us/call wall-clock (load {os.getloadavg()[0]:.1f})")
        if profile is not None:
            stats: Any = pstats.Stats(profile)
            print(f"{mode}: {sum(v[1] for v in stats.stats.values()) / n:.0f} Python calls per call")
        if raw is not None:
            await raw.close()
        await services.close()


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        asyncio.run(setup())
    else:
        asyncio.run(run(sys.argv[1], int(sys.argv[2]), "--calls" in sys.argv))
