"""Deterministic costs of a priced ``create_order`` (shipping, tax, a discount code) against a plain one (issue
12's <= 1.3x), load-independent: SQL statements, Python function calls (cProfile) and, under valgrind,
instructions (callgrind), per order, the two kinds side by side in one process on one SQLite file.

    .venv/bin/python bench/priced_order_counts.py                # statements and Python calls per order
    .venv/bin/python bench/priced_order_counts.py --callgrind    # + instructions (re-runs itself under valgrind)
    .venv/bin/python bench/priced_order_counts.py --mcp          # through the in-memory MCP client instead of the
                                                                 # service (the client's schema re-validation counts)

Under callgrind the counters are zeroed by ``sys.getrefcount`` and dumped by ``sys.getallocatedblocks``
(``--zero-before``/``--dump-before``), called only around the measured loops; callgrind counts every thread.
SQLite's write transactions run on the calling thread (as bench/order_instructions.py does), so cProfile sees
them. The set-up is bench/pricing_bench.py's: two lines, an address in CA, "express" shipping, 7.25 % tax, code TEN.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import glob
import pstats
import re
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anyio.to_thread
from mcp import Client
from sqlalchemy import event

from bench.pricing_bench import priced_store
from mcp_checkout.domain import Principal
from mcp_checkout.server import build_server
from mcp_checkout.service.orders import CreateOrder

ADDRESS = {"name": "Ada", "line1": "1 Market St", "city": "San Francisco", "region": "CA", "postal_code": "94105",
           "country": "US"}  # fmt: skip
ITEMS = [("MUG-0003", 1), ("MUG-0004", 2)]
MERCHANT = Principal(id="local", kind="merchant", client="bench")


async def inline(func: Callable[..., Any], *args: Any, **_kw: Any) -> Any:
    return func(*args)


async def main(calls: int, warm: int, mcp: bool, under_valgrind: bool) -> None:
    anyio.to_thread.run_sync = inline  # type: ignore[assignment]  # SQLite transactions on this thread: cProfile sees them
    with tempfile.TemporaryDirectory() as workdir:
        settings, services = await priced_store(workdir)
        statements: list[str] = []
        event.listen(services.db.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        keys = iter(range(10**9))
        delivery = {"shipping_address": ADDRESS, "fulfillment_option_id": "express", "discount_codes": ["TEN"]}
        async with Client(build_server(settings, services=services)) as client:

            async def via_mcp(priced: bool) -> None:
                arguments = {
                    "idempotency_key": f"k-{next(keys)}",
                    "items": [{"sku": s, "quantity": q} for s, q in ITEMS],
                }
                result = await client.call_tool("create_order", {**arguments, **(delivery if priced else {})})
                assert not result.is_error, result.content[0]

            async def via_service(priced: bool) -> None:
                sent = {"idempotency_key", "items", *(delivery if priced else ())}
                extra: dict[str, Any] = delivery if priced else {}
                cmd = CreateOrder(idempotency_key=f"k-{next(keys)}", items=ITEMS, sent=sent, **extra)
                await services.orders.create(MERCHANT, cmd)

            order: Callable[[bool], Awaitable[None]] = via_mcp if mcp else via_service
            for _ in range(warm):
                await order(False)
                await order(True)
            for name, priced in (("plain", False), ("priced", True)):
                gc.collect()
                statements.clear()
                profile = None if under_valgrind else cProfile.Profile()
                sys.getrefcount(None)  # callgrind: zero the counters
                if profile is not None:
                    profile.enable()
                for _ in range(calls):
                    await order(priced)
                if profile is not None:
                    profile.disable()
                sys.getallocatedblocks()  # callgrind: dump the counters
                line = f"{name:7s} statements {len(statements) / calls:5.1f}"
                if profile is not None:
                    line += f"  Python calls {pstats.Stats(profile).total_calls / calls:8.1f}"  # type: ignore[attr-defined]
                print(line, flush=True)
        await services.close()


def callgrind(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as out:
        command = ["valgrind", "--tool=callgrind", "--zero-before=sys_getrefcount", "--dump-before=sys_getallocatedblocks",
                   f"--callgrind-out-file={out}/cg", sys.executable, __file__, "--under-valgrind",
                   f"--calls={args.calls}", f"--warm={args.warm}", *(["--mcp"] if args.mcp else [])]  # fmt: skip
        subprocess.run(command, check=True, stderr=subprocess.DEVNULL)
        dumps = sorted(glob.glob(f"{out}/cg.*"), key=lambda path: int(path.rsplit(".", 1)[1]))
        totals = [int(re.search(r"^summary: (\d+)", Path(path).read_text(), re.M).group(1)) for path in dumps]  # type: ignore[union-attr]
        plain, priced = totals[-2] / args.calls, totals[-1] / args.calls
        print(f"instructions per order: plain {plain / 1e6:.2f} M, priced {priced / 1e6:.2f} M = {priced / plain:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--warm", type=int, default=15)
    parser.add_argument("--mcp", action="store_true")
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--under-valgrind", action="store_true", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.callgrind:
        callgrind(parsed)
    else:
        asyncio.run(main(parsed.calls, parsed.warm, parsed.mcp, parsed.under_valgrind))
