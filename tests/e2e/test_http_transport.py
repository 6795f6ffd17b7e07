"""`mcp-checkout serve --http`: MCP at /mcp behind API keys, and the checkout page, on one port."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support import a_fresh_minute, free_port
from tests.support import tool_data as data

CLI = Path(sys.executable).with_name("mcp-checkout")
# As tests/e2e/servers.py: one start-up took 16-19 s at load 10-14 on the shared two-core machine (30 s was close)
CLI_TIMEOUT = 90
START_TIMEOUT = 90


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_CHECKOUT_")}
    return subprocess.run(
        [str(CLI), "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=CLI_TIMEOUT,
        env=env,
    )


@dataclass
class HttpServer:
    base: str
    data_dir: Path
    log: Path
    buyer: str
    merchant: str

    def client(self, key: str | None, mode: str = "legacy") -> Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        http = httpx2.AsyncClient(headers=headers, timeout=30)
        return Client(streamable_http_client(f"{self.base}/mcp", http_client=http), mode=mode)


def start(
    tmp_path: Path, extra_env: dict[str, str] | None = None, *, keys: bool = True
) -> tuple[subprocess.Popen[bytes], HttpServer]:
    buyer = (
        cli(tmp_path, "keys", "create", "--name", "storefront agent", "--scope", "buyer").stdout.strip() if keys else ""
    )
    merchant = cli(tmp_path, "keys", "create", "--name", "ops", "--scope", "merchant").stdout.strip() if keys else ""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_CHECKOUT_")} | (extra_env or {})
    log = tmp_path / "server.log"
    process = subprocess.Popen(
        [str(CLI), "--data-dir", str(tmp_path), "serve", "--http", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=log.open("w"), env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("server did not start: " + log.read_text()[-2000:])
    return process, HttpServer(base, tmp_path, log, buyer, merchant)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[HttpServer]:
    process, server = start(tmp_path, {"MCP_CHECKOUT_LOG_LEVEL": "DEBUG"})
    yield server
    process.terminate()
    process.wait(timeout=15)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_mcp_and_checkout_page_share_one_http_port(http_server: HttpServer, mode: str) -> None:
    async with http_server.client(http_server.merchant, mode) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"create_checkout_link", "sync_payment", "create_order", "refund_order"} <= names
        assert data(await client.call_tool("search_catalog", {"query": "nothing-here"}))["items"] == []
    async with httpx.AsyncClient() as web:
        missing = await web.get(f"{http_server.base}/checkout/{'a' * 43}", headers={"accept": "application/json"})
        assert missing.status_code == 404 and missing.json()["error"] == "link_not_found"
        rebinding = await web.post(
            f"{http_server.base}/mcp",
            headers={"host": "evil.example", "authorization": f"Bearer {http_server.merchant}"},
            json={},
        )
        assert rebinding.status_code == 421


async def test_calls_without_a_valid_key_get_401_with_the_standard_challenge(http_server: HttpServer) -> None:
    revoked = cli(http_server.data_dir, "keys", "create", "--name", "old", "--scope", "merchant").stdout.strip()
    expired = cli(http_server.data_dir, "keys", "create", "--name", "temp", "--scope", "buyer").stdout.strip()
    cli(http_server.data_dir, "keys", "revoke", revoked.split("_")[2])
    with sqlite3.connect(http_server.data_dir / "checkout.db") as db:
        db.execute(
            "UPDATE api_keys SET expires_at = '2020-01-01 00:00:00.000000' WHERE id = ?", (expired.split("_")[2],)
        )
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    forged = http_server.buyer[:-4] + "AAAA"
    async with httpx.AsyncClient() as web:
        for authorization in (None, "Basic abc", "Bearer", f"Bearer {forged}", "Bearer mcpk_test_000000000000_x",
                              f"Bearer {revoked}", f"Bearer {expired}"):  # fmt: skip
            sent = headers | ({"authorization": authorization} if authorization else {})
            response = await web.post(f"{http_server.base}/mcp", headers=sent, json=body)
            assert response.status_code == 401, authorization
            assert response.headers["www-authenticate"].startswith("Bearer ")
    log = http_server.log.read_text()
    for secret in (http_server.buyer, http_server.merchant, revoked, expired):
        assert secret.split("_", 3)[3] not in log


async def test_a_buyer_key_neither_sees_nor_calls_merchant_tools(http_server: HttpServer) -> None:
    async with http_server.client(http_server.buyer) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "refund_order" not in names and "create_order" in names
        refused = await client.call_tool("refund_order", {"order_id": "ord_abc", "idempotency_key": "r-1"})
        assert refused.is_error and refused.content[0].text.startswith("[forbidden] ")


async def test_idempotency_keys_are_scoped_to_the_calling_key(tmp_path: Path) -> None:
    process, server = start(tmp_path, keys=True)
    try:
        second_buyer = cli(tmp_path, "keys", "create", "--name", "other agent", "--scope", "buyer").stdout.strip()
        cli(tmp_path, "import-catalog", str(_catalog(tmp_path)))
        orders = []
        for key in (server.buyer, second_buyer, server.buyer):
            async with server.client(key) as client:
                orders.append(
                    data(
                        await client.call_tool(
                            "create_order", {"idempotency_key": "same-key", "items": [{"sku": "MUG-01", "quantity": 1}]}
                        )
                    )
                )
        assert orders[0]["order_id"] != orders[1]["order_id"]
        assert orders[2]["order_id"] == orders[0]["order_id"] and orders[2]["replayed"] is True
        async with server.client(second_buyer) as client:
            hidden = await client.call_tool("get_order", {"order_id": orders[0]["order_id"]})
            assert hidden.is_error and hidden.content[0].text.startswith("[order_not_found] ")
    finally:
        process.terminate()
        process.wait(timeout=15)


async def test_a_server_without_keys_refuses_everything(tmp_path: Path) -> None:
    process, server = start(tmp_path, keys=False)
    try:
        async with httpx.AsyncClient() as web:
            response = await web.post(f"{server.base}/mcp", headers={"authorization": "Bearer anything"}, json={})
        assert response.status_code == 401
        assert "no API keys yet" in server.log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=15)


async def test_each_key_has_a_per_minute_budget(tmp_path: Path) -> None:
    process, server = start(tmp_path, {"MCP_CHECKOUT_RATE_LIMIT_PER_MINUTE": "5"})
    try:
        await a_fresh_minute()
        async with server.client(server.buyer) as client:
            results = [await client.call_tool("search_catalog", {"query": "mug"}) for _ in range(7)]
        limited = [r for r in results if r.is_error]
        assert len(limited) >= 1 and all(r.content[0].text.startswith("[rate_limited] ") for r in limited)
        assert json.loads(limited[0].content[1].text)["error"]["retry_after_seconds"] >= 1
        async with server.client(server.merchant) as client:  # another key, its own budget
            assert not (await client.call_tool("search_catalog", {"query": "mug"})).is_error
    finally:
        process.terminate()
        process.wait(timeout=15)


def _catalog(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.csv"
    path.write_text("product_name,sku_code,unit_price,quantity_on_hand\nStoneware Mug,MUG-01,18.00,10\n")
    return path


def test_keys_list_never_shows_secrets(tmp_path: Path) -> None:
    key = cli(tmp_path, "keys", "create", "--name", "storefront agent", "--scope", "buyer").stdout.strip()
    assert key.startswith("mcpk_test_")
    listing = cli(tmp_path, "keys", "list").stdout + cli(tmp_path, "keys", "list", "--json").stdout
    assert "storefront agent" in listing and key.split("_")[2] in listing
    assert key.split("_", 3)[3] not in listing
