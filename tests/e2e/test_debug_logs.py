"""A whole shop run at ``MCP_CHECKOUT_LOG_LEVEL=DEBUG`` on a real `serve --http` process leaves no secret,
token, API key, email or address in its log: the merchant registers a webhook endpoint (its signing
secret comes back in the tool result), a buyer builds a cart (update_cart with the buyer's name, phone and
a shipping address) and an order with an email and another address, mints an email-locked checkout link,
proves the email and pays on the page with the offline gateway; the signed order.paid webhook (the whole
order, buyer data included) reaches the receiver."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from tests.e2e.servers import Server, cli, create_keys, server_env, spawn, wait_ready, write_catalog
from tests.fakes.webhook_receiver import Receiver, verify_python, wait_for
from tests.support import tool_data

EMAIL = "zelda.quixotewright@buyers.example"
ADDRESS = {
    "name": "Zelda Quixotewright",
    "line1": "742 Evergreen Terrace",
    "line2": "Flat Nineteen",
    "city": "Springfieldia",
    "region": "Oregon",  # a real region (addresses are checked against ISO 3166-2); stored as "OR"
    "postal_code": "ZX9 8QW",
    "country": "US",
}
# Set on the cart with update_cart first (create_order's own address then wins): it must not be logged either.
BUYER = {"email": EMAIL, "name": "Ysolde Brackenridge-Quill", "phone": "+1 503 555 0199"}
CART_ADDRESS = {
    "name": "Ysolde Brackenridge-Quill",
    "line1": "19 Wisteria Crescent",
    "line2": "Attic Room Seven",
    "city": "Portlandtown",
    "region": "OR",
    "postal_code": "QX7 4ZZ",
    "country": "US",
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running_receiver:
        yield running_receiver


async def _shop(server: Server, merchant: str, buyer_key: str, receiver_url: str) -> dict[str, str]:
    """The whole flow; returns every secret it made or saw, by name."""
    seen: dict[str, str] = {}
    async with server.client(merchant) as client:
        created = tool_data(
            await client.call_tool("create_webhook_endpoint", {"url": receiver_url, "events": ["order.paid"]})
        )
        seen["signing secret"] = created["signing_secret"]
    async with server.client(buyer_key) as client:
        cart = tool_data(await client.call_tool("create_cart", {}))
        await client.call_tool("add_to_cart", {"cart_id": cart["cart_id"], "sku": "LOG-MUG", "quantity": 2})
        updated = tool_data(
            await client.call_tool(
                "update_cart", {"cart_id": cart["cart_id"], "buyer": BUYER, "shipping_address": CART_ADDRESS}
            )
        )
        assert updated["buyer"]["phone"] == BUYER["phone"] and updated["shipping_address"]["city"] == "Portlandtown"
        order = tool_data(
            await client.call_tool(
                "create_order",
                {
                    "idempotency_key": uuid.uuid4().hex,
                    "cart_id": cart["cart_id"],
                    "email": EMAIL,
                    "shipping_address": ADDRESS,
                },
            )
        )
        link = tool_data(
            await client.call_tool("create_checkout_link", {"order_id": order["order_id"], "email": EMAIL})
        )
        tool_data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
    token = link["url"].rsplit("/", 1)[1]
    seen["link token"] = token
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as browser:
        page = await browser.get(f"/checkout/{token}")
        assert page.status_code == 200, page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        seen["csrf token"] = csrf.group(1)
        proved = await browser.post(f"/checkout/{token}/email", data={"csrf": csrf.group(1), "email": EMAIL})
        assert proved.status_code == 303, proved.text
        for name, value in browser.cookies.items():
            seen[f"cookie {name}"] = value
        page = await browser.get(f"/checkout/{token}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None, page.text
        paid = await browser.post(f"/checkout/{token}/pay", data={"csrf": csrf.group(1)})
        assert paid.status_code == 303, paid.text
    return seen


def test_a_debug_run_of_the_whole_flow_logs_no_secret_token_or_buyer_data(tmp_path: Path, receiver: Receiver) -> None:
    env = server_env(
        {
            "MCP_CHECKOUT_DATA_DIR": str(tmp_path),
            "MCP_CHECKOUT_LOG_LEVEL": "DEBUG",
            "MCP_CHECKOUT_WEBHOOK_POLL_INTERVAL_SECONDS": "0.1",
        }
    )
    cli(env, "import-catalog", str(write_catalog(tmp_path / "catalog.csv", [("Log Mug", "LOG-MUG", "12.00", 50)])))
    merchant, buyer_key = create_keys(env, ("ops", "merchant"), ("agent", "buyer"))
    server = spawn(env, tmp_path / "server.log")
    try:
        wait_ready([server])
        secrets = anyio.run(_shop, server, merchant, buyer_key, receiver.url)
        wait_for(lambda: len(receiver.delivered()) == 1, timeout=30)
    finally:
        server.stop()
    [delivery] = receiver.delivered()
    body = verify_python(secrets["signing secret"], delivery)
    assert body["data"]["status"] == "paid"
    assert EMAIL in delivery.body  # the receiver does get the buyer's data; the log must not

    log = server.log.read_text(errors="replace")
    assert " DEBUG mcp_checkout." in log, "the run did not log at DEBUG"
    secrets |= {"merchant API key": merchant, "buyer API key": buyer_key, "email": EMAIL}
    secrets |= {f"address {field}": value for field, value in ADDRESS.items() if field != "country"}
    secrets["email local part"] = EMAIL.split("@", maxsplit=1)[0]
    secrets |= {"buyer name": BUYER["name"], "buyer phone": BUYER["phone"], "phone digits": "5035550199"}
    secrets |= {
        f"cart address {field}": value for field, value in CART_ADDRESS.items() if field not in ("region", "country")
    }
    leaked = {name: value for name, value in secrets.items() if value in log}
    assert not leaked, f"in the DEBUG log: {sorted(leaked)}"
    for shape in ("whsec_", "mcpk_", "@buyers.example"):
        assert shape not in log, shape
