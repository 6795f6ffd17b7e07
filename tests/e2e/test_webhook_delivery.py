"""Outbound webhooks from real `mcp-checkout serve --http` processes to a real local receiver.

- kill -9 while the `order.paid` delivery is in flight (the receiver holds the request unanswered):
  after a restart it is delivered, under the one delivery id the event ever had;
- two server processes on one PostgreSQL database, both dispatching: every event reaches the endpoint
  once, not twice (FOR UPDATE SKIP LOCKED claims), and both processes took part.
The endpoint is registered, listed and inspected with the `mcp-checkout webhooks` CLI.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fakes.webhook_receiver import Receiver, verify_python, wait_for
from servers import Server, cli, cli_parallel, running, server_env, spawn, wait_ready
from servers import write_catalog as catalog_csv

from tests.support import postgres_database, tool_data

CATALOG = [("Hook Mug", "HOOK-MUG", "18.00", 500)]


def shop_env(home: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    settings = {
        "MCP_CHECKOUT_DATA_DIR": str(home),
        "MCP_CHECKOUT_WEBHOOK_TIMEOUT_SECONDS": "1",  # a claim's lease: 2 x 1 s + 5 s
        "MCP_CHECKOUT_WEBHOOK_BACKOFF_BASE_SECONDS": "0.1",
        "MCP_CHECKOUT_WEBHOOK_BACKOFF_CAP_SECONDS": "0.5",
        "MCP_CHECKOUT_WEBHOOK_POLL_INTERVAL_SECONDS": "0.1",
        "MCP_CHECKOUT_RATE_LIMIT_PER_MINUTE": "100000",
        **extra,
    }
    if database_url:
        settings["MCP_CHECKOUT_DATABASE_URL"] = database_url
    return server_env(settings)


def prepare(env: dict[str, str], home: Path, receiver: Receiver, events: str) -> tuple[str, str, str]:
    """Migrate, import the catalog, make a merchant key and register the receiver: (key, endpoint id, secret)."""
    cli(env, "migrate")
    _, key, added = cli_parallel(
        env,
        ["import-catalog", str(catalog_csv(home / "catalog.csv", CATALOG))],
        ["keys", "create", "--name", "erp", "--scope", "merchant"],
        ["webhooks", "add", receiver.url, "--events", events, "--description", "test receiver"],
    )
    endpoint_id, secret = added.stdout.split()
    assert endpoint_id.startswith("we_") and secret.startswith("whsec_")
    assert "shown only this once" in added.stderr
    listed = cli(env, "webhooks", "list", "--json").stdout
    assert endpoint_id in listed and secret not in listed and "whsec_" not in listed
    return key.stdout.strip(), endpoint_id, secret


def deliveries(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    return list(json.loads(cli(env, "webhooks", "deliveries", "--json", *args).stdout)["deliveries"])


async def buy_and_pay(server: Server, key: str) -> str:
    """An agent mints a checkout link (which creates the order); a buyer pays it on the page. Returns the order id."""
    async with server.client(key) as client:
        link = tool_data(
            await client.call_tool(
                "create_checkout_link", {"sku": "HOOK-MUG", "quantity": 1, "idempotency_key": uuid.uuid4().hex}
            )
        )
    token = link["url"].rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as buyer:
        page = await buyer.get(f"/checkout/{token}")
        assert page.status_code == 200, page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        paid = await buyer.post(f"/checkout/{token}/pay", data={"csrf": csrf.group(1)})
        assert paid.status_code == 303, paid.text
    return str(link["order_id"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running_receiver:
        yield running_receiver


def test_kill_9_with_the_paid_event_in_flight_then_restart_delivers_it_under_one_id(
    tmp_path: Path, receiver: Receiver
) -> None:
    env = shop_env(tmp_path)
    key, endpoint_id, secret = prepare(env, tmp_path, receiver, "order.paid")
    receiver.gate = threading.Event()  # hold the first delivery unanswered
    logs = tmp_path / "logs"
    logs.mkdir()
    first = spawn(env, logs / "first.log")
    try:
        wait_ready([first])
        order_id = anyio.run(buy_and_pay, first, key)
        wait_for(lambda: len(receiver.all()) == 1, timeout=20)  # the POST is in flight...
        first.sigkill()  # ...and the process dies before hearing an answer
    finally:
        first.stop()
    [row] = deliveries(env)
    assert row["status"] == "pending" and row["attempts"] == 1 and row["delivered_at"] is None

    receiver.gate.set()
    receiver.gate = None
    second = spawn(env, logs / "second.log")
    try:
        wait_ready([second])
        started = time.monotonic()
        wait_for(lambda: len(receiver.delivered()) == 1, timeout=30)  # once the dead claim's lease ends
        assert time.monotonic() - started < 15
    finally:
        second.stop()

    [row] = deliveries(env, "--endpoint", endpoint_id)
    assert row["status"] == "delivered" and row["attempts"] == 2 and row["order_id"] == order_id
    assert row["last_status_code"] == 200
    ids = {r.message_id for r in receiver.all()}
    assert ids == {row["delivery_id"]}, "one delivery id for the event, however often it was sent"
    [done] = receiver.delivered()
    assert verify_python(secret, done)["data"]["status"] == "paid"
    with sqlite3.connect(tmp_path / "checkout.db") as db:
        events = db.execute("select type from webhook_events where order_id = ?", (order_id,)).fetchall()
    assert events == [("order.paid",)]
    metrics = json.loads(cli(env, "webhooks", "metrics", "--json").stdout)
    assert metrics["delivered"] == 1 and metrics["pending"] == 0 and metrics["success_rate"] == 1.0


ORDERS = 60


def test_two_dispatching_processes_on_postgresql_deliver_each_event_once(tmp_path: Path, receiver: Receiver) -> None:
    receiver.hold = 0.02  # a slow-ish receiver keeps both dispatchers busy at once
    with postgres_database("mcp_checkout_hooks") as url:
        env = shop_env(tmp_path, url, MCP_CHECKOUT_LOG_LEVEL="DEBUG")
        key, _, secret = prepare(env, tmp_path, receiver, "order.created")
        with running(env, tmp_path / "logs", 2, name="dispatcher") as servers:

            async def place_orders() -> list[str]:
                made: list[str] = []

                async def place(server: Server, count: int) -> None:
                    async with server.client(key) as client:
                        for _ in range(count):
                            args = {"idempotency_key": uuid.uuid4().hex, "items": [{"sku": "HOOK-MUG", "quantity": 1}]}
                            made.append(tool_data(await client.call_tool("create_order", args))["order_id"])

                async with anyio.create_task_group() as tasks:
                    for server in servers:
                        for _ in range(3):
                            tasks.start_soon(place, server, ORDERS // 6)
                return made

            order_ids = anyio.run(place_orders)
            wait_for(lambda: len(receiver.delivered()) >= ORDERS, timeout=30)
            time.sleep(1.0)  # room for a duplicate to show up
            logs = [server.log.read_text() for server in servers]
        rows = deliveries(env, "--limit", "100")
        paged: list[str] = []
        cursor: list[str] = []
        for _ in range(5):  # 60 deliveries in pages of 25, following the CLI's own hint
            page = cli(env, "webhooks", "deliveries", "--limit", "25", *cursor)
            paged += [line.split()[0] for line in page.stdout.splitlines()]
            hint = re.search(r"--cursor (\S+)", page.stderr)
            if hint is None:
                break
            cursor = ["--cursor", hint.group(1)]

    received = receiver.all()
    assert len(received) == ORDERS, f"{len(received)} requests for {ORDERS} events"
    assert len({r.message_id for r in received}) == ORDERS
    assert sorted(r.payload["data"]["order_id"] for r in received) == sorted(order_ids)
    assert {row["status"] for row in rows} == {"delivered"} and {row["attempts"] for row in rows} == {1}
    assert paged == [row["delivery_id"] for row in rows]  # three pages, newest first, none lost or repeated
    verify_python(secret, received[0])
    sent_by = [len(re.findall(r"webhook msg_\w+ attempt 1: 200", text)) for text in logs]
    assert sum(sent_by) == ORDERS and all(sent_by), f"deliveries per process: {sent_by}"


def test_a_shipment_reaches_the_merchants_receiver_as_a_verified_order_fulfilled_with_its_tracking(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Issue 12: the merchant fulfils with tracking and the local ERP receives a verified order.fulfilled."""
    env = shop_env(tmp_path)
    key, _, secret = prepare(env, tmp_path, receiver, "order.fulfilled")

    async def buy_pay_and_ship(server: Server) -> dict[str, Any]:
        order_id = await buy_and_pay(server, key)
        async with server.client(key) as client:
            arguments = {
                "order_id": order_id,
                "idempotency_key": "ship-1",
                "carrier": "UPS",
                "tracking_number": "1Z999AA10123456784",
                "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
            }
            shipped = tool_data(await client.call_tool("fulfill_order", arguments))
            again = tool_data(await client.call_tool("fulfill_order", arguments))
        assert shipped["status"] == "fulfilled" and again["replayed"] is True
        return shipped

    with running(env, tmp_path / "logs", 1, name="shipper") as [server]:
        shipped = anyio.run(buy_pay_and_ship, server)
        wait_for(lambda: len(receiver.delivered()) >= 1, timeout=30)
        time.sleep(0.5)  # a second delivery (there must be none) would come within the poll interval
    [delivery] = receiver.delivered()
    payload = verify_python(secret, delivery)
    assert payload["type"] == "order.fulfilled"
    order = payload["data"]
    assert order["order_id"] == shipped["order_id"] and order["status"] == "fulfilled"
    [shipment] = order["fulfillments"]
    assert (shipment["carrier"], shipment["tracking_number"]) == ("UPS", "1Z999AA10123456784")
    assert shipment["tracking_url"] == "https://www.ups.com/track?tracknum=1Z999AA10123456784"
    assert shipment["lines"] == [{"sku": "HOOK-MUG", "quantity": 1}]
