"""The whole sale over stdio, as a desktop agent and a buyer would do it, on SQLite and PostgreSQL.

Agent (the Python MCP client, legacy 2025-11-25 handshake and the default mode) → search → cart →
order → checkout link with a merchant reference; buyer (a plain HTTP client, no browser) opens the
link and submits the page's own form → the order is paid → lookup by reference finds it with the
link consumed → the link answers 410. The server's stdout is copied on its way to the client: only
JSON-RPC may be there; its stderr (at DEBUG) must never hold the checkout token.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import jsonrpc_lines, page_ready, server_params, token_of
from mcp import Client
from mcp.client.stdio import stdio_client

from mcp_checkout.domain import CatalogRow
from tests.support import free_port, prepare_database
from tests.support import tool_data as data

CATALOG = [
    CatalogRow("Stoneware Coffee Mug", "MUG-01", 1800, "USD", 10, "A 12 oz stoneware mug.", None, "", "Kitchen"),
    CatalogRow("Enamel Camp Mug", "MUG-02", 1450, "USD", 2, "Speckled enamel mug.", None, "", "Outdoors"),
    CatalogRow("Merino Wool Socks", "SOCK-M-GRY", 2200, "USD", 50, "Warm socks.", "P-SOCK", "M / Grey", "Apparel"),
]
MODES = {"legacy": {"mode": "legacy"}, "default": {}}


def hidden_csrf(html: str) -> str:
    found = re.findall(r'<input type="hidden" name="csrf" value="([^"]+)">', html)
    assert found and len(set(found)) == 1, "the page's forms carry one csrf token"
    return found[0]


async def buyer_pays(url: str) -> str:
    """A buyer's plain HTTP client: GET the page, submit its pay form. Returns the page it lands on."""
    async with httpx.AsyncClient(timeout=15) as buyer:
        page = await buyer.get(url)
        assert page.status_code == 200, page.text
        assert "(test payment)" in page.text
        csrf = hidden_csrf(page.text)
        assert buyer.cookies.get("mcpco_csrf") == csrf, "double-submit: the cookie matches the hidden input"
        action = re.search(r'<form method="post" action="(/checkout/[^"]+/pay)">', page.text)
        assert action is not None
        forged = await buyer.post(url + "/pay", data={"csrf": "not-the-token"})
        assert forged.status_code == 403 and "csrf_rejected" in forged.text
        paid = await buyer.post(str(page.url.join(action.group(1))), data={"csrf": csrf})
        assert paid.status_code == 303, paid.text
        done = await buyer.get(str(paid.url.join(paid.headers["location"])))
        assert done.status_code == 200 and "payment received" in done.text
        return str(done.url)


@pytest.mark.parametrize("mode", list(MODES))
async def test_agent_to_paid_order_over_stdio(mode: str, backend: str, database_url: str, tmp_path: Path) -> None:
    await prepare_database(database_url, CATALOG)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    stdout_copy, stderr_log = tmp_path / "server-stdout.jsonl", tmp_path / "server-stderr.log"
    params = server_params(tmp_path / "data", port, database_url=database_url, stdout_copy=stdout_copy)
    reference = f"crm-{mode}-{backend}"

    with stderr_log.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), **MODES[mode]) as agent:

            async def call(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
                return data(await agent.call_tool(tool, arguments))

            hits = await call("search_catalog", {"query": "mug", "in_stock_only": True})
            assert {"MUG-01", "MUG-02"} <= {hit["sku"] for hit in hits["items"]}
            cart = await call("create_cart", {})
            await call("add_to_cart", {"cart_id": cart["cart_id"], "sku": "MUG-01", "quantity": 2})
            cart = await call("add_to_cart", {"cart_id": cart["cart_id"], "sku": "SOCK-M-GRY", "quantity": 1})
            assert cart["total"]["display"] == "$58.00"
            order = await call("create_order", {"idempotency_key": f"stdio-{mode}", "cart_id": cart["cart_id"]})
            assert order["status"] == "pending_payment" and order["total"] == cart["total"]
            link = await call(
                "create_checkout_link", {"order_id": order["order_id"], "merchant_reference_id": reference}
            )
            assert link["url"].startswith(f"{base}/checkout/") and link["status"] == "active"
            token = token_of(link["url"])

            await page_ready(base, stderr_log)
            landed = await buyer_pays(link["url"])
            assert landed.startswith(f"{base}/checkout/done/")

            paid = await call("get_order", {"order_id": order["order_id"]})
            assert paid["status"] == "paid" and paid["stock"] == "committed"
            found = await call("lookup_orders", {"merchant_reference_id": reference})
            assert found["status"] == "found" and [o["order_id"] for o in found["orders"]] == [order["order_id"]]
            assert found["orders"][0]["checkout"]["link_status"] == "consumed"
            assert found["orders"][0]["checkout"]["merchant_reference_id"] == reference
            assert found["orders"][0]["status"] == "paid"

            async with httpx.AsyncClient(timeout=15) as buyer:
                again = await buyer.get(link["url"], headers={"accept": "application/json"})
                assert again.status_code == 410 and again.json()["error"] == "link_consumed"
                html = await buyer.get(link["url"])
                assert html.status_code == 410 and "link_consumed" in html.text
            state = await call("get_checkout_link", {"link_id": link["link_id"]})
            assert state["status"] == "consumed" and state["url"] is None

    messages = jsonrpc_lines(stdout_copy)
    assert any(message.get("id") is not None and "result" in message for message in messages)
    assert sum(token in str(message) for message in messages) == 1, "the URL goes out once: in the link's result"
    log = stderr_log.read_text()
    assert "Uvicorn running on" in log, "stderr was captured"
    assert token not in log and token[:12] not in log, "the checkout token reached the server's log"
    assert "Traceback" not in log, log[-3000:]
