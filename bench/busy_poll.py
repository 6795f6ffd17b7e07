"""PostgreSQL reads through MCP with and without the busy poll (store/busy_poll.py), side by side in one run.

    .venv/bin/python bench/read_instructions.py setup     # a database of 1,000 SKUs and one order (once)
    .venv/bin/python bench/busy_poll.py [calls]            # default 3,000 rounds

Two servers on the same database, one with ``db_busy_poll_ms=0``, and the payload floor (bench/floors.py). Each
round calls get_product (or get_order) on both servers and the floor, in turn, so all three see the same machine;
the table gives the medians and each server's ratio to the floor. Also: asyncpg alone, the same statement on a
connection of its own, fetched once per round between two floor calls (what no server can go below).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
from mcp import Client

from bench.floors import floor_server
from bench.read_instructions import URL, setup_state
from mcp_checkout.config import Settings
from mcp_checkout.server import build_server
from mcp_checkout.service.container import build_services
from mcp_checkout.service.views import OrderOut, ProductOut
from mcp_checkout.store import catalog as catalog_store


async def main(rounds: int) -> None:
    state = setup_state()
    cases: list[tuple[str, str, dict[str, Any], str, Any]] = [
        ("get_product", "bench_floor_product", {"sku": state["sku"]}, "product", ProductOut),
        ("get_order", "bench_floor_order", {"order_id": state["order_id"]}, "order", OrderOut),
    ]
    with tempfile.TemporaryDirectory() as home:
        made = []
        for poll_ms in (0.5, 0.0):
            settings = Settings(data_dir=Path(home), database_url=URL, sweep_interval_seconds=3600,
                                db_busy_poll_ms=poll_ms)  # fmt: skip
            services = build_services(settings)
            made.append((services, build_server(settings, services=services)))
        (polling_services, polling), (_, sleeping) = made
        floors: dict[str, Any] = {}
        floor = floor_server(polling, lambda name, _arguments: floors[name])
        dialect = polling_services.db.async_engine.sync_engine.dialect
        compiled = catalog_store.PRODUCT_WITH_SKUS_BY_CODE.statement.compile(dialect=dialect)
        params = compiled.construct_params({"code": state["sku"]})
        raw = await asyncpg.connect(URL.replace("+asyncpg", ""))
        statement = await raw.prepare(compiled.string)
        arguments = [params[name] for name in compiled.positiontup or []]
        async with Client(polling) as with_poll, Client(sleeping) as without, Client(floor) as floor_client:
            print(f"{rounds:,} rounds, load {os.getloadavg()[0]:.1f}; medians in µs")
            print(f"{'tool':<12} {'busy poll':>10} {'no poll':>10} {'floor':>8} {'ratio':>7} {'no poll':>8}")
            for tool, floor_name, tool_arguments, kind, model in cases:
                answer = await with_poll.call_tool(tool, tool_arguments)
                floors[floor_name] = model.model_validate(answer.structured_content)
                times: dict[str, list[int]] = {"poll": [], "sleep": [], "floor": [], "raw": []}
                for round_ in range(rounds + 100):  # the first 100 warm up
                    for key, client, name in (
                        ("poll", with_poll, tool),
                        ("floor", floor_client, floor_name),
                        ("sleep", without, tool),
                        ("floor", floor_client, floor_name),
                        ("raw", None, ""),
                    ):
                        started = time.perf_counter_ns()
                        if client is None:
                            result = await statement.fetch(*arguments)
                        else:
                            result = await client.call_tool(name, tool_arguments)
                        elapsed = time.perf_counter_ns() - started
                        if getattr(result, "is_error", False):
                            raise RuntimeError(f"{tool} failed: {result.content}")
                        if round_ >= 100 and (kind == "product" or key != "raw"):
                            times[key].append(elapsed)
                p50 = {key: statistics.median(values) / 1000 for key, values in times.items() if values}
                print(f"{tool:<12} {p50['poll']:>10.0f} {p50['sleep']:>10.0f} {p50['floor']:>8.0f} "
                      f"{p50['poll'] / p50['floor']:>6.2f}x {p50['sleep'] / p50['floor']:>7.2f}x")  # fmt: skip
                if "raw" in p50:
                    print(f"{'':<12} asyncpg alone, the same statement between floor calls: {p50['raw']:.0f} µs "
                          f"(floor + it = {(p50['floor'] + p50['raw']) / p50['floor']:.2f}x the floor)")  # fmt: skip
        await raw.close()
        for services, _server in made:
            await services.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000))
