"""UCP REST ``get_checkout`` vs the native ``get_cart`` tool over HTTP, on one real server in one run.

    .venv/bin/python bench/ucp_bench.py              # 300 calls of each, in alternating blocks of 50
    .venv/bin/python bench/ucp_bench.py --calls 100

Starts ``mcp-checkout serve --http`` (SQLite, offline gateway) on a fresh data dir with a small catalog and
a buyer API key, serves a platform profile from a local HTTP server, creates one UCP checkout and one
native cart holding the same two lines, then times sequential calls on kept-alive connections:
``GET /ucp/v1/checkout-sessions/{id}`` (httpx) and ``tools/call get_cart`` on ``/mcp`` (the official mcp
client). Target (issue 13): UCP p50 <= 1.5 x native p50.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_checkout.demo_ucp import serve_platform_profile
from mcp_checkout.hosting import free_local_port

CLI = Path(sys.executable).with_name("mcp-checkout")


def _cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run([str(CLI), *args], env=env, check=True, capture_output=True, text=True).stdout.strip()


async def _measure(base: str, key: str, profile: str, calls: int) -> tuple[list[float], list[float]]:
    headers = {"X-API-Key": key, "UCP-Agent": f'profile="{profile}"', "Idempotency-Key": "bench-create"}
    lines = [{"item": {"id": "MUG-01"}, "quantity": 2}, {"item": {"id": "MUG-02"}, "quantity": 1}]
    ucp_times: list[float] = []
    native_times: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as web:
        created = await web.post("/ucp/v1/checkout-sessions", json={"line_items": lines}, headers=headers)
        checkout_id = created.json()["id"]
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
        async with Client(streamable_http_client(f"{base}/mcp", http_client=http), mode="legacy") as native:
            cart = (await native.call_tool("create_cart", {})).structured_content["cart_id"]
            for sku, quantity in (("MUG-01", 2), ("MUG-02", 1)):
                await native.call_tool("add_to_cart", {"cart_id": cart, "sku": sku, "quantity": quantity})
            for _ in range(10):  # warm both paths (profile cache, connections, statement caches)
                await web.get(f"/ucp/v1/checkout-sessions/{checkout_id}", headers=headers)
                await native.call_tool("get_cart", {"cart_id": cart})
            block = 50
            for _ in range(max(1, calls // block)):
                for _ in range(block):
                    start = time.perf_counter()
                    answer = await web.get(f"/ucp/v1/checkout-sessions/{checkout_id}", headers=headers)
                    ucp_times.append(time.perf_counter() - start)
                    assert answer.status_code == 200, answer.text
                for _ in range(block):
                    start = time.perf_counter()
                    result = await native.call_tool("get_cart", {"cart_id": cart})
                    native_times.append(time.perf_counter() - start)
                    assert not result.is_error
    return ucp_times, native_times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    with serve_platform_profile() as profile, tempfile.TemporaryDirectory(prefix="ucp-bench-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_CHECKOUT_")}
        env |= {"MCP_CHECKOUT_DATA_DIR": home, "MCP_CHECKOUT_UCP_ALLOW_HTTP_PROFILES": "true",
                "MCP_CHECKOUT_RATE_LIMIT_PER_MINUTE": "100000"}  # fmt: skip
        _cli(env, "migrate")
        catalog = Path(home) / "catalog.csv"
        catalog.write_text(
            "product_name,sku_code,unit_price,quantity_on_hand\nMug,MUG-01,18.00,100\nCamp Mug,MUG-02,14.50,100\n"
        )
        _cli(env, "import-catalog", str(catalog))
        key = _cli(env, "keys", "create", "--name", "bench", "--scope", "buyer").splitlines()[-1]
        port = free_local_port()
        log = open(Path(home) / "server.log", "wb")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            [str(CLI), "serve", "--http", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    print((Path(home) / "server.log").read_text()[-3000:], file=sys.stderr)
                    return 1
                time.sleep(0.2)
            ucp, native = asyncio.run(_measure(base, key, profile, args.calls))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
            log.close()
    ucp_p50, native_p50 = statistics.median(ucp) * 1000, statistics.median(native) * 1000
    ratio = ucp_p50 / native_p50
    print(f"load average: {os.getloadavg()[0]:.2f} (2 cores shared: absolute numbers are noisy, the ratio less so)")
    print(
        f"UCP REST get_checkout   p50 {ucp_p50:7.2f} ms  p95 {statistics.quantiles(ucp, n=20)[18] * 1000:7.2f} ms  (n={len(ucp)})"
    )
    print(
        f"native get_cart (/mcp)  p50 {native_p50:7.2f} ms  p95 {statistics.quantiles(native, n=20)[18] * 1000:7.2f} ms  (n={len(native)})"
    )
    print(f"ratio {ratio:.2f} (target <= 1.5): {'PASS' if ratio <= 1.5 else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
