"""`mcp-checkout serve` as a subprocess, driven over stdio by the Python MCP client in both protocol modes.

The server runs behind a ``tee`` so the test sees every byte it wrote to stdout (which must be JSON-RPC
and nothing else) and, separately, its stderr (where the logs belong).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from tests.support import tool_data as data

CLI = Path(sys.executable).with_name("mcp-checkout")
# "$@" is the server command; its stderr goes to one file and a copy of its stdout to another.
TEE = '"$@" 2>>"$MCP_TEST_STDERR" | tee -a "$MCP_TEST_STDOUT"'


def teed_server(tmp_path: Path, *server_args: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(
        command="/bin/sh",
        args=["-c", TEE, "sh", str(CLI), *server_args],
        env={
            "MCP_TEST_STDOUT": str(tmp_path / "stdout.log"),
            "MCP_TEST_STDERR": str(tmp_path / "stderr.log"),
            "MCP_CHECKOUT_WEB_PORT": "0",  # the checkout page beside stdio: any free port
            "MCP_CHECKOUT_LOG_LEVEL": "DEBUG",  # as chatty as it gets: any log line on stdout would show
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **(env or {}),
        },
        cwd=str(tmp_path),
    )


def assert_only_json_rpc(stdout: str) -> list[dict[str, Any]]:
    messages = []
    for number, line in enumerate(stdout.splitlines(), start=1):
        try:
            message = json.loads(line)
        except ValueError:
            pytest.fail(f"stdout line {number} is not JSON-RPC (it would break the client): {line[:200]!r}")
        assert isinstance(message, dict), line[:200]
        assert message.get("jsonrpc") == "2.0", line[:200]
        assert "id" in message or "method" in message, line[:200]
        messages.append(message)
    return messages


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_full_flow_over_stdio(tmp_path: Path, mode: str, prepare_database: Any, small_catalog: Any) -> None:
    data_dir = tmp_path / "data"
    await prepare_database(f"sqlite:///{data_dir / 'checkout.db'}", small_catalog)

    async with Client(teed_server(tmp_path, "--data-dir", str(data_dir), "serve"), mode=mode) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"search_catalog", "get_product", "create_cart", "add_to_cart", "create_order", "get_order"} <= names

        hits = data(await client.call_tool("search_catalog", {"query": "merino socks"}))
        assert [item["sku"] for item in hits["items"]][:1] == ["SOCK-M-GRY"]
        cart = data(await client.call_tool("create_cart", {}))
        add = {"cart_id": cart["cart_id"], "sku": "SOCK-M-GRY", "quantity": 2}
        cart = data(await client.call_tool("add_to_cart", add))
        assert cart["total"]["amount"] == 4400

        args = {"idempotency_key": f"stdio-{mode}", "cart_id": cart["cart_id"], "merchant_reference_id": "crm:7"}
        first = data(await client.call_tool("create_order", args))
        again = data(await client.call_tool("create_order", args))
        assert first["replayed"] is False
        assert again["replayed"] is True
        assert again["order_id"] == first["order_id"]

        order = data(await client.call_tool("get_order", {"order_id": first["order_id"]}))
        assert order["status"] == "pending_payment"
        assert order["total"]["amount"] == 4400
        assert order["merchant_reference_id"] == "crm:7"
        failed = await client.call_tool("get_order", {"order_id": "ord_nope"})
        assert failed.is_error
        assert failed.content[0].text.startswith("[order_not_found] ")

    messages = assert_only_json_rpc((tmp_path / "stdout.log").read_text(encoding="utf-8"))
    results = [m for m in messages if "result" in m or "error" in m]
    assert len(results) >= 8  # one response per request, nothing else in between
    stderr = (tmp_path / "stderr.log").read_text(encoding="utf-8")
    assert re.search(r" (DEBUG|INFO|WARNING) (mcp|uvicorn|mcp_checkout)[\w.]*: ", stderr), (
        "the server's log records (the MCP runtime's, the checkout page's) must go to stderr"
    )
    assert '"jsonrpc"' not in stderr


async def test_startup_and_migration_write_nothing_to_stdout(tmp_path: Path) -> None:
    """A brand-new data dir: the server migrates on start; none of that may reach stdout."""
    data_dir = tmp_path / "fresh"
    async with Client(teed_server(tmp_path, "--data-dir", str(data_dir), "serve"), mode="legacy") as client:
        result = data(await client.call_tool("search_catalog", {"query": "anything"}))
        assert result["items"] == []
    assert (data_dir / "checkout.db").exists()
    messages = assert_only_json_rpc((tmp_path / "stdout.log").read_text(encoding="utf-8"))
    assert messages[0].get("id") is not None  # the first thing on stdout is the answer to initialize
    assert "result" in messages[0]
    assert (tmp_path / "stderr.log").read_text(encoding="utf-8").strip()
