"""Who may see and do what (service/policy.py), through real MCP clients over HTTP with real API keys.

The HTTP app is the one `serve --http` runs (hosting.build_http_app: bearer keys checked by the SDK's
auth middleware, then our policy), driven in this process through an ASGI transport, on SQLite and
PostgreSQL. Each key is a different principal, as two agents of two buyers would be.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from conftest import seed_catalog
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette

from mcp_checkout.config import Settings
from mcp_checkout.domain import Principal, PrincipalKind
from mcp_checkout.errors import Forbidden
from mcp_checkout.hosting import build_http_app
from mcp_checkout.service import policy
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.service.payments import RefundOrder

HOST = "127.0.0.1:8000"  # what the app is built for; nothing listens there, the transport is in-process


@dataclass
class HttpShop:
    app: Starlette
    settings: Settings
    keys: dict[str, str]

    def client(self, name: str, mode: str = "legacy") -> AbstractAsyncContextManager[Any]:
        http = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(self.app), headers={"Authorization": f"Bearer {self.keys[name]}"}
        )
        return Client(streamable_http_client(f"http://{HOST}/mcp", http_client=http), mode=mode)


async def _make_keys(settings: Settings, wanted: dict[str, PrincipalKind]) -> dict[str, str]:
    services = build_services(settings)
    try:
        await seed_catalog(services)
        return {name: (await services.access.create_key(name, scope)).key for name, scope in wanted.items()}
    finally:
        await services.close()


ShopFactory = Callable[..., AbstractAsyncContextManager[HttpShop]]


@pytest.fixture
def http_shop(settings: Settings) -> ShopFactory:
    """``async with http_shop(rate_limit_per_minute=…) as shop``: the HTTP app over a seeded database, with
    API keys ``buyer_a``, ``buyer_b`` (buyer scope) and ``merchant``."""

    @asynccontextmanager
    async def open_shop(**overrides: Any) -> AsyncIterator[HttpShop]:
        shop_settings = settings.model_copy(update=overrides)
        keys = await _make_keys(shop_settings, {"buyer_a": "buyer", "buyer_b": "buyer", "merchant": "merchant"})
        app = build_http_app(shop_settings, "127.0.0.1", 8000)
        async with app.router.lifespan_context(app):
            yield HttpShop(app, shop_settings, keys)

    return open_shop


def data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    return dict(result.structured_content)


def code_of(result: Any) -> str:
    assert result.is_error, f"expected an error, got {str(result.structured_content)[:300]}"
    return str(json.loads(result.content[1].text)["error"]["code"])


# ---------------------------------------------------------------- carts (issue 10 #2)
async def test_a_buyer_can_neither_read_nor_change_another_buyers_cart(http_shop: ShopFactory) -> None:
    """Before the fix buyer B, holding A's cart id, read it and turned A's 2 mugs into 7 (+1 socks)."""
    async with http_shop() as shop, shop.client("buyer_a") as a, shop.client("buyer_b") as b:
        cart_id = data(await a.call_tool("create_cart", {}))["cart_id"]
        data(await a.call_tool("add_to_cart", {"cart_id": cart_id, "sku": "MUG-01", "quantity": 2}))

        attempts: dict[str, dict[str, Any]] = {
            "get_cart": {"cart_id": cart_id},
            "add_to_cart": {"cart_id": cart_id, "sku": "SOCK-M-GRY", "quantity": 1},
            "update_cart_item": {"cart_id": cart_id, "sku": "MUG-01", "quantity": 7},
            "remove_from_cart": {"cart_id": cart_id, "sku": "MUG-01"},
            "create_order": {"cart_id": cart_id, "idempotency_key": "b-takes-a-cart"},
        }
        for tool, arguments in attempts.items():
            result = await b.call_tool(tool, arguments)
            assert code_of(result) == "cart_not_found", tool
            assert "belong" not in result.content[0].text  # not even whether the cart exists

        mine = data(await a.call_tool("get_cart", {"cart_id": cart_id}))
        assert [(line["sku"], line["quantity"]) for line in mine["lines"]] == [("MUG-01", 2)]
        assert mine["status"] == "open"
        data(await a.call_tool("update_cart_item", {"cart_id": cart_id, "sku": "MUG-01", "quantity": 3}))
        order = data(await a.call_tool("create_order", {"cart_id": cart_id, "idempotency_key": "a-own-cart"}))
        assert order["total"]["amount"] == 3 * 1800

        async with shop.client("merchant") as merchant:  # the merchant may read any cart
            assert data(await merchant.call_tool("get_cart", {"cart_id": cart_id}))["order_id"] == order["order_id"]


# ---------------------------------------------------------------- merchant-only operations, listed once
def _merchant_titled(title: str | None) -> bool:
    return title is not None and ("(merchant)" in title or title.lower().startswith("merchant "))


async def test_merchant_only_operations_are_exactly_the_ones_the_policy_lists(server: Any) -> None:
    """A merchant tool or prompt (titled so) missing from policy.MERCHANT_ONLY would be open to buyer keys;
    a stale name there would hide nothing. Both fail here."""
    async with Client(server) as client:  # the local principal is the merchant: it sees everything
        tools = (await client.list_tools()).tools
        prompts = (await client.list_prompts()).prompts
    titled = {t.name for t in tools if _merchant_titled(t.title)} | {
        p.name for p in prompts if _merchant_titled(p.title)
    }
    assert titled == set(policy.MERCHANT_ONLY)
    assert {t.name for t in tools} | {p.name for p in prompts} >= policy.MERCHANT_ONLY


async def test_services_refuse_buyers_merchant_operations_whatever_the_transport(seeded: Services) -> None:
    """Before the fix WebhookService checked nothing itself: any caller of the service could register an
    endpoint and receive every order (buyer emails and addresses included)."""
    buyer = Principal(id="key:aaaaaaaaaaaa", kind="buyer")
    refused: dict[str, Callable[[], Awaitable[Any]]] = {
        "create_webhook_endpoint": lambda: seeded.webhooks.create_endpoint(
            buyer, "https://erp.example/h", ["order.paid"]
        ),
        "list_webhook_endpoints": lambda: seeded.webhooks.list_endpoints(buyer),
        "deactivate_webhook_endpoint": lambda: seeded.webhooks.deactivate_endpoint(buyer, "we_1"),
        "list_webhook_deliveries": lambda: seeded.webhooks.list_deliveries(buyer),
        "replay_webhook_delivery": lambda: seeded.webhooks.replay(buyer, "msg_1"),
        "refund_order": lambda: seeded.payments.refund(buyer, RefundOrder("ord_1", "k-1")),
        "list_orders": lambda: seeded.merchant.list_orders(buyer),
    }
    for operation, call in refused.items():
        with pytest.raises(Forbidden) as caught:
            await call()
        assert caught.value.details["operation"] == operation
    assert (await seeded.webhooks.list_endpoints(policy.OPERATOR)).endpoints == []


# ---------------------------------------------------------------- lookup_orders (issue 10 #7)
async def test_other_buyers_orders_with_the_same_reference_never_hide_yours(http_shop: ShopFactory) -> None:
    """Before the fix the 20-row limit came before the caller filter: 20 orders by buyer B with reference
    PO-1001 made A's lookup answer order_not_found (which invites a duplicate order)."""
    async with http_shop() as shop, shop.client("buyer_a") as a, shop.client("buyer_b") as b:
        mine = data(await a.call_tool("create_order", order("a-1", "MUG-01", "PO-1001")))["order_id"]
        linked = data(await a.call_tool("create_order", order("a-2", "MUG-02")))["order_id"]
        data(await a.call_tool("create_checkout_link", {"order_id": linked, "merchant_reference_id": "PO-2002"}))
        theirs = []
        for n in range(42):  # 21 of B's with each reference
            reference = "PO-1001" if n % 2 else "PO-2002"
            theirs.append(data(await b.call_tool("create_order", order(f"b-{n}", "SOCK-M-GRY", reference)))["order_id"])

        for reference, expected in (("PO-1001", mine), ("PO-2002", linked)):
            found = data(await a.call_tool("lookup_orders", {"merchant_reference_id": reference}))
            assert [o["order_id"] for o in found["orders"]] == [expected], reference
        found_b = data(await b.call_tool("lookup_orders", {"merchant_reference_id": "PO-2002"}))
        assert [o["order_id"] for o in found_b["orders"]] == list(reversed(theirs[0::2]))[:20]  # B's own only

        async with shop.client("merchant") as merchant:  # the merchant sees everyone's, newest first, 20 at most
            everyone = data(await merchant.call_tool("lookup_orders", {"merchant_reference_id": "PO-2002"}))
            assert [o["order_id"] for o in everyone["orders"]] == list(reversed(theirs[0::2]))[:20]


def order(key: str, sku: str, reference: str | None = None) -> dict[str, Any]:
    arguments: dict[str, Any] = {"idempotency_key": key, "items": [{"sku": sku, "quantity": 1}]}
    if reference is not None:
        arguments["merchant_reference_id"] = reference
    return arguments
