"""`mcp-checkout serve --http`: MCP at /mcp and the checkout page on one port, driven over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

CLI = Path(sys.executable).with_name("mcp-checkout")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_CHECKOUT_")}
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [str(CLI), "--data-dir", str(tmp_path), "serve", "--http", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=log, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("server did not start: " + (tmp_path / "server.log").read_text()[-2000:])
    yield base
    process.terminate()
    process.wait(timeout=15)


def data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    return dict(result.structured_content)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_mcp_and_checkout_page_share_one_http_port(http_server: str, mode: str) -> None:
    async with Client(f"{http_server}/mcp", mode=mode) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"create_checkout_link", "sync_payment", "create_order"} <= names
        hits = data(await client.call_tool("search_catalog", {"query": "nothing-here"}))
        assert hits["items"] == []
    async with httpx.AsyncClient() as web:
        missing = await web.get(f"{http_server}/checkout/{'a' * 43}", headers={"accept": "application/json"})
        assert missing.status_code == 404 and missing.json()["error"] == "link_not_found"
        rebinding = await web.post(f"{http_server}/mcp", headers={"host": "evil.example"}, json={})
        assert rebinding.status_code == 421


def test_http_transport_refuses_non_loopback_bind_without_auth(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(CLI), "--data-dir", str(tmp_path), "serve", "--http", "--host", "0.0.0.0", "--port", str(free_port())],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "only listens on loopback" in done.stderr
