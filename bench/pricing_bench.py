"""Priced buyer flow, in-memory MCP client on one SQLite file, in one run (issue 12 targets):

- ``update_cart`` p50 against its payload floor (a tool with the same arguments returning a precomputed
  CartOut of the same size): target <= 2x. The call sends what the cart holds (an agent's retry, which
  writes nothing); a second figure, without a target, alternates two buyers and options (every call writes);
- ``create_order`` with shipping, tax and a discount against a plain ``create_order`` (no address, option
  or code) in the same store: target <= 1.3x.

    .venv/bin/python bench/pricing_bench.py            # 300 calls of each, interleaved
    .venv/bin/python bench/pricing_bench.py --calls 100
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcp import Client
from mcp.server.mcpserver import Context

from mcp_checkout.config import Settings
from mcp_checkout.domain import CatalogRow, utc_now
from mcp_checkout.server import build_server
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.service.views import CartOut
from mcp_checkout.store.catalog_write import upsert_catalog
from mcp_checkout.tools.annotations import OVERWRITES
from mcp_checkout.tools.types import Buyer, CartId, DiscountCodes, FulfillmentOptionId, ShippingAddress
from tests.pricing_rows import add_discount_code, add_shipping_rate, add_tax_rate

ADDRESS = {"name": "Ada", "line1": "1 Market St", "city": "San Francisco", "region": "CA", "postal_code": "94105",
           "country": "US"}  # fmt: skip


def data(result: Any) -> dict[str, Any]:
    if result.is_error:
        raise RuntimeError(result.content[0].text)
    return dict(result.structured_content)


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter_ns()
    await call()
    return (time.perf_counter_ns() - started) / 1e6


async def priced_store(workdir: str) -> tuple[Settings, Services]:
    """A SQLite store in ``workdir`` with 200 mugs, US ground and express rates, CA tax and the code TEN."""
    settings = Settings(data_dir=Path(workdir), database_url=f"sqlite+aiosqlite:///{workdir}/bench.db")
    services = build_services(settings)
    await services.prepare_database()
    rows = [CatalogRow(f"Mug {i}", f"MUG-{i:04d}", 1800 + i, "USD", 10**6, category="Kitchen") for i in range(200)]

    def setup(conn: Any) -> None:
        upsert_catalog(conn, rows, utc_now())
        add_shipping_rate(conn, "ground", 599, ["US"], free_over=100_000)
        add_shipping_rate(conn, "express", 1999, ["US"], carrier="UPS")
        add_tax_rate(conn, "US", 725, region="CA", applies_to_shipping=True)
        add_discount_code(conn, "TEN", "percent", 1000)

    await services.db.write(setup)
    return settings, services


async def main(calls: int) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        settings, services = await priced_store(workdir)
        server = build_server(settings, services=services)
        floor: dict[str, CartOut] = {}

        @server.tool(name="bench_floor_update_cart", annotations=OVERWRITES)
        async def bench_floor_update_cart(
            ctx: Context[Any],
            cart_id: CartId,
            buyer: Buyer | None = None,
            shipping_address: ShippingAddress | None = None,
            fulfillment_option_id: FulfillmentOptionId | None = None,
            discount_codes: DiscountCodes | None = None,
        ) -> CartOut:
            """Benchmark only: a precomputed update_cart result."""
            return floor["cart"]

        async with Client(server) as client:
            cart_id = data(await client.call_tool("create_cart", {}))["cart_id"]
            for sku in ("MUG-0001", "MUG-0002"):
                data(await client.call_tool("add_to_cart", {"cart_id": cart_id, "sku": sku, "quantity": 2}))
            args = {"cart_id": cart_id, "buyer": {"email": "ada@example.com"}, "shipping_address": ADDRESS,
                    "fulfillment_option_id": "express", "discount_codes": ["TEN"]}  # fmt: skip
            other = {**args, "buyer": {"email": "bob@example.com"}, "fulfillment_option_id": "ground"}
            turns = iter(range(10**9))
            floor["cart"] = CartOut.model_validate(data(await client.call_tool("update_cart", args)))
            assert floor["cart"].ready and floor["cart"].tax_total.amount > 0

            keys = iter(range(10**9))
            items = [{"sku": "MUG-0003", "quantity": 1}, {"sku": "MUG-0004", "quantity": 2}]

            def plain() -> Awaitable[Any]:
                return client.call_tool("create_order", {"idempotency_key": f"p-{next(keys)}", "items": items})

            def priced() -> Awaitable[Any]:
                return client.call_tool("create_order", {
                    "idempotency_key": f"q-{next(keys)}", "items": items, "shipping_address": ADDRESS,
                    "fulfillment_option_id": "express", "discount_codes": ["TEN"],
                })  # fmt: skip

            check = data(await priced())
            assert check["ready"] and check["discount_total"]["amount"] > 0 and check["shipping_total"]["amount"] > 0

            samples: dict[str, list[float]] = {
                "update_cart": [],
                "changing": [],
                "floor": [],
                "plain": [],
                "priced": [],
            }
            for _ in range(20):  # warm-up
                await client.call_tool("update_cart", args)
                await plain()
                await priced()
            for _ in range(calls):
                samples["update_cart"].append(await timed(lambda: client.call_tool("update_cart", args)))
                samples["floor"].append(await timed(lambda: client.call_tool("bench_floor_update_cart", args)))
                samples["changing"].append(
                    await timed(lambda: client.call_tool("update_cart", other if next(turns) % 2 else args))
                )
                samples["plain"].append(await timed(plain))
                samples["priced"].append(await timed(priced))
        await services.close()

    p50 = {name: statistics.median(values) for name, values in samples.items()}
    print(f"SQLite, in-memory MCP client, {calls} calls each, interleaved (p50 ms)")
    print(f"update_cart            {p50['update_cart']:.2f}  floor {p50['floor']:.2f}  "
          f"ratio {p50['update_cart'] / p50['floor']:.2f}x (target <= 2x)")  # fmt: skip
    print(f"  changing each call   {p50['changing']:.2f}  floor {p50['floor']:.2f}  "
          f"ratio {p50['changing'] / p50['floor']:.2f}x (no target: every call writes)")  # fmt: skip
    print(f"create_order priced    {p50['priced']:.2f}  plain {p50['plain']:.2f}  "
          f"ratio {p50['priced'] / p50['plain']:.2f}x (target <= 1.3x)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    asyncio.run(main(parser.parse_args().calls))
