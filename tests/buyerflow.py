"""A demo-like run that writes buyer data everywhere it goes, and the database's own dump (tests import it)."""

from __future__ import annotations

import subprocess
from typing import Any

from mcp import Client
from sqlalchemy.engine import make_url

from mcp_checkout.domain import Actor
from mcp_checkout.service.container import Services
from tests.support import tool_data as data

EMAIL = "ada.lovelace@example.org"
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 Analytical Row",
    "city": "Marylebone",
    "postal_code": "NW1 6XE",
    "country": "GB",
}
LINK_EMAIL = "grace.hopper@example.net"
BUYER_STRINGS = (EMAIL, "Ada Lovelace", "Analytical Row", LINK_EMAIL, "example.org", "example.net")


async def buyer_flow(server: Any, services: Services, tag: str = "") -> tuple[str, str]:
    """Orders with a buyer email and address, an email-locked link opened in a session, a queued webhook
    event, a paid order: every place buyer data is written. Returns (addressed order id, linked order id)."""
    async with Client(server) as client:
        data(
            await client.call_tool(
                "create_webhook_endpoint", {"url": "http://127.0.0.1:9/hook", "events": ["order.created", "order.paid"]}
            )
        )
        cart = data(await client.call_tool("create_cart", {}))
        data(await client.call_tool("add_to_cart", {"cart_id": cart["cart_id"], "sku": "MUG-01", "quantity": 2}))
        order = data(
            await client.call_tool(
                "create_order",
                {
                    "idempotency_key": f"o1{tag}",
                    "cart_id": cart["cart_id"],
                    "email": EMAIL,
                    "shipping_address": ADDRESS,
                },
            )
        )
        linked = data(
            await client.call_tool(
                "create_checkout_link",
                {"sku": "MUG-02", "quantity": 1, "idempotency_key": f"l1{tag}", "email": LINK_EMAIL},
            )
        )
    token = linked["url"].rsplit("/", 1)[-1]
    await services.checkout.verify_email(token, LINK_EMAIL)
    intent, _ = await services.payments.ensure_intent(order["order_id"])
    gateway: Any = services.payments.gateway
    await services.payments.apply_intent(await gateway.simulate_payment(intent.id), actor=Actor.BUYER, source="test")
    return order["order_id"], linked["order_id"]


def dump(services: Services) -> str:
    """The whole database as text, by the database's own dump tool."""
    url = make_url(services.db.url)
    if url.get_backend_name() == "sqlite":
        return subprocess.run(
            ["sqlite3", str(url.database), ".dump"], capture_output=True, text=True, check=True
        ).stdout
    return subprocess.run(
        [
            "pg_dump",
            "--data-only",
            "-h",
            url.host or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "postgres",
            str(url.database),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
