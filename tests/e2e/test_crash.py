"""Crash claims, proven by killing the server: `kill -9` mid-burst, restart, and nothing is lost or doubled.

A client fires a burst of create_order calls at `mcp-checkout serve` (stdio) and records which were
acknowledged with an order_id. The server gets SIGKILL while calls are in flight, is restarted on the
same database, and then:
- every acknowledged order exists exactly once;
- each SKU's reserved units equal what orders still holding stock hold, and stock is never negative;
- retrying every key of the burst with the same arguments returns the original order (replayed), or
  creates it once if it never committed (keys held by a killed call are free after their 1 s lease).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from mcp_checkout.domain import CatalogRow
from mcp_checkout.store.db import Database

CLI = Path(sys.executable).with_name("mcp-checkout")
# The shell writes its pid, then becomes the server (exec keeps the pid): SIGKILL hits the server itself.
PID_THEN_EXEC = 'echo $$ > "$MCP_TEST_PIDFILE"; exec "$@" 2>>"$MCP_TEST_STDERR"'
BURST = 120
WARM_UP = 4  # calls made (and acknowledged) one by one before the burst
KILL_AFTER = 10  # burst orders committed before the SIGKILL: the rest of the burst is in flight
CATALOG = [
    CatalogRow("Crash Test Mug", "CRASH-MUG", 1200, "USD", 1000),
    CatalogRow("Crash Test Socks", "CRASH-SOCK", 900, "USD", 1000),
    CatalogRow("Crash Test Towel", "CRASH-TOWEL", 700, "USD", 1000),
]


def burst_arguments(run: str) -> dict[str, dict[str, Any]]:
    """key -> the exact create_order arguments used for it (the retry must send the same)."""
    calls = {}
    for i in range(BURST):
        key = f"{run}-{i:03d}"
        items = [{"sku": CATALOG[i % 3].sku, "quantity": 1 + i % 4}]
        if i % 5 == 0:
            items.append({"sku": CATALOG[(i + 1) % 3].sku, "quantity": 2})
        calls[key] = {"idempotency_key": key, "items": items, "merchant_reference_id": f"crash:{i}"}
    return calls


def server_params(tmp_path: Path, url: str) -> StdioServerParameters:
    return StdioServerParameters(
        command="/bin/sh",
        args=["-c", PID_THEN_EXEC, "sh", str(CLI), "serve"],
        env={
            "MCP_TEST_PIDFILE": str(tmp_path / "server.pid"),
            "MCP_TEST_STDERR": str(tmp_path / "server.stderr"),
            "MCP_CHECKOUT_DATABASE_URL": url,
            "MCP_CHECKOUT_DATA_DIR": str(tmp_path / "data"),
            "MCP_CHECKOUT_IDEMPOTENCY_LEASE_SECONDS": "1",
            "MCP_CHECKOUT_SERVE_CHECKOUT_PAGE": "false",
            "MCP_CHECKOUT_WEB_PORT": "0",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        },
        cwd=str(tmp_path),
    )


async def fire_and_kill(
    params: StdioServerParameters, pidfile: Path, url: str, calls: dict[str, dict[str, Any]]
) -> dict[str, str]:
    """The first WARM_UP calls one by one (acknowledged for sure), then all the others at once; SIGKILL
    the server once KILL_AFTER more orders are committed. The database is watched rather than the
    acknowledgements, which the client reads more slowly than the server commits. Returns key -> acked order_id."""
    from sqlalchemy import func, select

    from mcp_checkout.store.models import orders

    acked: dict[str, str] = {}
    killed = False
    keys = list(calls)

    def count_orders(conn: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(orders)).scalar_one())

    async def call(client: Client, key: str) -> None:
        try:
            result = await client.call_tool("create_order", calls[key])
        except Exception:  # the connection died under this call: it was never acknowledged
            return
        if not killed and not result.is_error and result.structured_content:
            acked[key] = result.structured_content["order_id"]

    watcher = Database(url)
    try:
        with anyio.fail_after(120):
            async with Client(params, mode="legacy", read_timeout_seconds=30) as client:
                pid = int((await anyio.Path(pidfile).read_text()).strip())
                for key in keys[:WARM_UP]:
                    await call(client, key)
                assert len(acked) == WARM_UP
                async with anyio.create_task_group() as tasks:
                    for key in keys[WARM_UP:]:
                        tasks.start_soon(call, client, key)
                    for _ in range(20_000):  # at most ~100 s; the fail_after above bounds it anyway
                        if await watcher.read(count_orders) >= WARM_UP + KILL_AFTER:
                            break
                        await anyio.sleep(0.005)
                    killed = True
                    os.kill(pid, signal.SIGKILL)
    finally:
        await watcher.dispose()
    return acked


async def check_database(url: str, calls: dict[str, dict[str, Any]], acked: dict[str, str]) -> dict[str, int]:
    """The invariants after the crash; returns how many orders exist."""
    from sqlalchemy import select

    from mcp_checkout.store import orders as order_store
    from mcp_checkout.store.models import idempotency_keys, orders, skus

    db = Database(url)
    try:
        order_rows = await db.read(lambda c: c.execute(select(orders.c.id, orders.c.stock_state)).all())
        keys = await db.read(lambda c: c.execute(select(idempotency_keys)).mappings().all())
        stock = await db.read(lambda c: c.execute(select(skus.c.sku, skus.c.stock_on_hand, skus.c.reserved)).all())
        held = await db.read(order_store.reserved_quantities_of_open_orders)
    finally:
        await db.dispose()

    ids = Counter(row.id for row in order_rows)
    assert all(count == 1 for count in ids.values())
    for key, order_id in acked.items():
        assert ids[order_id] == 1, f"acknowledged order {order_id} (key {key}) is missing after the crash"
    completed = {row["key"]: row["resource_id"] for row in keys if row["status"] == "completed"}
    for key, order_id in acked.items():
        assert completed.get(key) == order_id
    # Every order is some key's result, and no key points at an order that is not there.
    assert sorted(completed.values()) == sorted(ids)
    assert set(completed) <= set(calls)
    for sku, on_hand, reserved in stock:
        assert 0 <= reserved <= on_hand, (sku, on_hand, reserved)
        assert reserved == held.get(sku, 0), f"{sku}: reserved {reserved}, reserved orders hold {held.get(sku, 0)}"
    return {"orders": len(ids), "in_progress_keys": sum(row["status"] == "in_progress" for row in keys)}


async def retry_everything(params: StdioServerParameters, calls: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Retry each key with its original arguments until it answers with an order. key -> structured result."""
    answers: dict[str, Any] = {}
    with anyio.fail_after(90):
        async with Client(params, mode="auto", read_timeout_seconds=30) as client:
            for key, arguments in calls.items():
                for _attempt in range(20):
                    result = await client.call_tool("create_order", arguments)
                    if not result.is_error:
                        answers[key] = result.structured_content
                        break
                    error = json.loads(result.content[1].text)["error"]
                    assert error["code"] == "idempotency_in_flight", result.content[0].text
                    await anyio.sleep(min(float(error.get("retry_after_seconds", 1)), 1.5))
                else:
                    pytest.fail(f"key {key} stayed in flight")
    return answers


def expected_reserved(calls: dict[str, dict[str, Any]]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for arguments in calls.values():
        for item in arguments["items"]:
            totals[item["sku"]] += item["quantity"]
    return dict(totals)


async def crash_and_recover(tmp_path: Path, url: str, prepare_database: Any) -> None:
    await prepare_database(url, CATALOG)
    params = server_params(tmp_path, url)
    calls = burst_arguments(tmp_path.name[-12:].replace("_", "-"))

    acked = await fire_and_kill(params, tmp_path / "server.pid", url, calls)
    crashed = await check_database(url, calls, acked)  # as the crash left it, before any restart
    assert WARM_UP + KILL_AFTER <= crashed["orders"] < BURST, "the kill must land mid-burst"

    answers = await retry_everything(params, calls)
    for key, order_id in acked.items():
        assert answers[key]["order_id"] == order_id, f"retrying {key} did not return its acknowledged order"
        assert answers[key]["replayed"] is True
    assert len({answer["order_id"] for answer in answers.values()}) == BURST

    after = await check_database(url, calls, {key: answer["order_id"] for key, answer in answers.items()})
    assert after == {"orders": BURST, "in_progress_keys": 0}

    db = Database(url)
    try:
        from sqlalchemy import select

        from mcp_checkout.store.models import skus

        rows = await db.read(lambda c: c.execute(select(skus.c.sku, skus.c.reserved)).all())
    finally:
        await db.dispose()
    assert dict(rows) == expected_reserved(calls)

    stderr = (tmp_path / "server.stderr").read_text(encoding="utf-8", errors="replace")
    assert "internal error in tool" not in stderr, "recovery must never hit an unexpected exception"


async def test_kill_9_mid_burst_on_sqlite(tmp_path: Path, prepare_database: Any) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'checkout.db'}"
    await crash_and_recover(tmp_path, url, prepare_database)


async def test_kill_9_mid_burst_on_postgresql(tmp_path: Path, prepare_database: Any, fresh_pg_url: str) -> None:
    await crash_and_recover(tmp_path, fresh_pg_url, prepare_database)
