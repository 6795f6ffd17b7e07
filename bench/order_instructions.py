"""Instructions per service ``create_order`` against instructions per raw one-row insert transaction, counted
by valgrind's callgrind: a load-independent figure for bench/run.py's "create_order rate vs raw inserts" line.

    .venv/bin/python bench/order_instructions.py                      # SQLite
    .venv/bin/python bench/order_instructions.py --backend postgresql # a database of its own, dropped after

The script re-runs itself under ``valgrind --tool=callgrind --instr-atstart=no`` and switches instrumentation
on around the two measured loops only (a 20-line C helper built with gcc and valgrind's header; both must be
installed). The two loops are what bench/run.py times: ``services.orders.create`` with two lines and a new
idempotency key each call, and ``db.write`` of a one-row INSERT into a table of the benchmark's own, on the
same ``Database``. Only this process is counted (not SQLite's I/O waits, not the PostgreSQL server), and by
default SQLite's write transactions run on the calling thread (``--thread-hop`` keeps the worker thread).
Then, outside the measurement (a listener makes SQLAlchemy dispatch events around every statement), it counts
the SQL statements and commits of one of each.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anyio
import anyio.to_thread
from sqlalchemy import event, insert
from sqlalchemy.engine import make_url

from bench.common import PG_ADMIN_URL, catalog_rows, pg_admin
from bench.run import _seed, bench_raw
from mcp_checkout.config import Settings
from mcp_checkout.domain import Principal, utc_now
from mcp_checkout.service.container import build_services
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.store import migrate
from mcp_checkout.store.db import Database

_UNDER_VALGRIND = "MCP_CHECKOUT_UNDER_CALLGRIND"
_HELPER = r"""
#include <valgrind/callgrind.h>
void cg_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void cg_stop(const char *name) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT(name); }
"""


def _helper(workdir: Path) -> ctypes.CDLL:
    source = workdir / "cgctl.c"
    source.write_text(_HELPER)
    library = workdir / "cgctl.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    return ctypes.CDLL(str(library))


async def measure(args: argparse.Namespace, url: str, workdir: Path) -> None:
    if args.backend == "sqlite" and not args.thread_hop:

        async def inline(func: Callable[..., Any], *call_args: Any, **_kw: Any) -> Any:
            return func(*call_args)

        anyio.to_thread.run_sync = inline  # type: ignore[assignment]
    cg = _helper(workdir)
    rows = list(catalog_rows(args.skus))
    db = Database(url)
    try:
        await migrate.upgrade(db)
        now = utc_now()
        await db.write(lambda conn: _seed(conn, rows, now))
    finally:
        await db.dispose()
    settings = Settings(data_dir=workdir, database_url=url, sweep_interval_seconds=3600, log_level="WARNING")
    services = build_services(settings)
    principal = Principal(id=settings.local_principal_id, kind=settings.local_principal_kind, client="bench")
    counter = iter(range(10**9))

    async def service_order() -> None:
        i = next(counter)
        first, second = (i * 7919) % len(rows), (i * 7919 + 1) % len(rows)
        items = [(f"SKU-{first:07d}", 1), (f"SKU-{second:07d}", 1)]
        await services.orders.create(principal, CreateOrder(idempotency_key=f"cg-{i}", items=items))

    async def raw_insert() -> None:  # as bench/run.py's raw loop
        statement = insert(bench_raw).values(k=f"raw-{next(counter)}", created_at=now)
        await services.db.write(lambda conn: conn.execute(statement))

    try:
        for _ in range(args.warmup):
            await service_order()
            await raw_insert()

        async def loop(name: str, call: Callable[[], Awaitable[None]]) -> None:
            gc.collect()
            cg.cg_start()
            for _ in range(args.n):
                await call()
            cg.cg_stop(name.encode())

        await loop("raw", raw_insert)
        await loop("service", service_order)
        db = services.db
        engine = db.sync_engine if db.dialect == "sqlite" else db.async_engine.sync_engine
        seen: dict[str, int] = {"statements": 0, "commits": 0}

        def statement(*_args: Any) -> None:
            seen["statements"] += 1

        def commit(*_args: Any) -> None:
            seen["commits"] += 1

        event.listen(engine, "before_cursor_execute", statement)
        event.listen(engine, "commit", commit)
        for name, call in (("raw insert", raw_insert), ("service create_order", service_order)):
            seen.update(statements=0, commits=0)
            await call()
            print(f"{name}: {seen['statements']} SQL statements, {seen['commits']} commit(s)")
    finally:
        await services.close()


def _totals(out_dir: Path, pid: int) -> dict[str, int]:
    totals: dict[str, int] = {}
    for dump in sorted(out_dir.glob(f"callgrind.out.{pid}.*")):
        text = dump.read_text(errors="replace")
        trigger = re.search(r"^desc: Trigger: Client Request: (\S+)", text, re.M)
        total = re.search(r"^totals: (\d+)", text, re.M)
        if trigger and total:
            totals[trigger.group(1)] = int(total.group(1))
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--n", type=int, default=40, help="measured calls of each (default 40)")
    parser.add_argument("--warmup", type=int, default=50, help="calls of each before measuring (default 50)")
    parser.add_argument("--skus", type=int, default=2000, help="catalog size (default 2,000)")
    parser.add_argument("--thread-hop", action="store_true", help="SQLite: keep the worker-thread hop")
    args = parser.parse_args()
    if os.environ.get(_UNDER_VALGRIND) is None:
        with tempfile.TemporaryDirectory(prefix="mcp_checkout_cg_") as out:
            command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}/callgrind.out.%p",
                       sys.executable, *sys.argv]  # fmt: skip
            child = subprocess.Popen(command, env={**os.environ, _UNDER_VALGRIND: out}, stderr=subprocess.DEVNULL)
            if child.wait() != 0:
                return child.returncode
            totals = _totals(Path(out), child.pid)
        raw, service = totals.get("raw"), totals.get("service")
        if raw is None or service is None:
            print(f"no callgrind totals found: {totals}")
            return 1
        print(f"{args.backend}, {args.n} calls each, instructions per call (callgrind):")
        print(f"  raw one-row insert transaction  {raw / args.n / 1e6:6.2f} M")
        print(f"  service create_order (2 lines)  {service / args.n / 1e6:6.2f} M   ({raw / service:.2f}x raw)")
        if args.backend == "sqlite" and not args.thread_hop:
            print("  (SQLite write transactions on the calling thread; --thread-hop keeps the worker thread)")
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="mcp_checkout_cgwork_"))
    try:
        if args.backend == "sqlite":
            asyncio.run(measure(args, f"sqlite:///{workdir / 'bench.db'}", workdir))
        else:
            name = f"mcp_checkout_cg_{os.getpid()}"
            asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
            try:
                url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
                asyncio.run(measure(args, url, workdir))
            finally:
                asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
