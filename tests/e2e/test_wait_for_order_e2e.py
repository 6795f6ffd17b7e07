"""wait_for_order and orders:// subscriptions with real server processes.

HTTP: two `serve --http` processes on one PostgreSQL database. The agent waits (and subscribes) on
process A; the buyer pays on the checkout page of process B, so only A's database poll can notice.
Then A gets SIGTERM while a wait is running: the wait answers at once with the order as it is,
instead of holding the shutdown for its whole timeout.
stdio: `mcp-checkout serve` (a desktop client's view, legacy protocol), the buyer paying on the page
that process serves beside stdio.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from browser import page_ready, server_params
from conftest import wait_across
from mcp import Client
from mcp import types as mcp_types
from mcp.client.stdio import stdio_client
from servers import Server, cli, cli_parallel, running, server_env, write_catalog
from test_checkout_over_stdio import CATALOG, buyer_pays

from tests.support import free_port, postgres_database, prepare_database, tool_data

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.filterwarnings("ignore:resources/(un)?subscribe is removed"),
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Server], str]]:
    """Two `serve --http` processes on one fresh PostgreSQL database, and a buyer key."""
    home = tmp_path_factory.mktemp("wait_shop")
    with postgres_database("mcp_checkout_wait") as url:
        env = server_env({"MCP_CHECKOUT_DATABASE_URL": url, "MCP_CHECKOUT_DATA_DIR": str(home)})
        cli(env, "migrate")
        done = cli_parallel(
            env,
            ["import-catalog", str(write_catalog(home / "catalog.csv", [("Wait Mug", "WAIT-MUG", "12.00", 100)]))],
            ["keys", "create", "--name", "agent", "--scope", "buyer"],
        )
        with running(env, home / "logs", 2, name="wait") as servers:
            yield servers, done[1].stdout.strip()


async def pay_on(server: Server, url: str) -> None:
    """The buyer pays with the offline test payment on ``server``'s checkout page."""
    path = "/checkout/" + url.rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as web:
        page = await web.get(path)
        assert page.status_code == 200, page.text[:500]
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        paid = await web.post(path + "/pay", data={"csrf": csrf.group(1)})
        assert paid.status_code == 303, paid.text[:500]


async def test_a_payment_on_another_process_wakes_the_waiter_and_the_subscriber(
    pair: tuple[list[Server], str],
) -> None:
    (agent_side, buyer_side), key = pair
    updates: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, mcp_types.ResourceUpdatedNotification):
            updates.append(str(message.params.uri))

    client = agent_side.client(key)
    client.message_handler = on_message
    async with client:
        link = tool_data(
            await client.call_tool(
                "create_checkout_link",
                {"sku": "WAIT-MUG", "quantity": 1, "idempotency_key": f"wait-{uuid.uuid4().hex[:8]}"},
            )
        )
        uri = f"orders://{link['order_id']}"
        await client.subscribe_resource(uri)
        with anyio.fail_after(60):
            result, latency = await wait_across(
                client,
                {"order_id": link["order_id"], "statuses": ["paid"], "timeout_seconds": 30},
                lambda: pay_on(buyer_side, link["url"]),
            )
            while not updates:
                await anyio.sleep(0.05)
        assert result["reached"] is True and result["order"]["status"] == "paid"
        assert latency < 5, latency  # a 0.5 s poll, not the 30 s timeout
        assert updates == [uri]


async def test_sigterm_ends_running_waits_with_the_current_state(pair: tuple[list[Server], str]) -> None:
    (agent_side, _), key = pair
    async with agent_side.client(key) as client:
        order = tool_data(
            await client.call_tool(
                "create_order",
                {"idempotency_key": f"term-{uuid.uuid4().hex[:8]}", "items": [{"sku": "WAIT-MUG", "quantity": 1}]},
            )
        )

        async def stop() -> None:
            agent_side.process.terminate()

        with anyio.fail_after(40):
            result, latency = await wait_across(client, {"order_id": order["order_id"], "timeout_seconds": 60}, stop)
        assert latency < 5, latency
        assert result["reached"] is False and "restarting" in result["message"]
    agent_side.process.wait(timeout=30)


async def test_over_stdio_the_waiter_and_a_legacy_subscriber_hear_of_the_payment(
    database_url: str, tmp_path: Path
) -> None:
    await prepare_database(database_url, CATALOG)
    port = free_port()
    updates: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, mcp_types.ResourceUpdatedNotification):
            updates.append(str(message.params.uri))

    params = server_params(tmp_path / "data", port, database_url=database_url)
    with (tmp_path / "stderr.log").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy", message_handler=on_message) as agent:
            order = tool_data(
                await agent.call_tool(
                    "create_order", {"idempotency_key": "stdio-wait", "items": [{"sku": "MUG-01", "quantity": 1}]}
                )
            )
            link = tool_data(await agent.call_tool("create_checkout_link", {"order_id": order["order_id"]}))
            await agent.subscribe_resource(f"orders://{order['order_id']}")
            await page_ready(f"http://127.0.0.1:{port}", tmp_path / "stderr.log")
            with anyio.fail_after(60):
                result, latency = await wait_across(
                    agent, {"order_id": order["order_id"], "timeout_seconds": 30}, lambda: buyer_pays(link["url"])
                )
                while not updates:
                    await anyio.sleep(0.05)
    assert result["reached"] is True and result["order"]["status"] == "paid"
    assert latency < 2, latency  # the page runs in the same process: the commit wakes the waiter
    assert updates == [f"orders://{order['order_id']}"]
