"""Who may see and do what (service/policy.py), through real MCP clients over HTTP with real API keys.

The HTTP app is the one `serve --http` runs (hosting.build_http_app: bearer keys checked by the SDK's
auth middleware, then our policy), driven in this process through an ASGI transport, on SQLite and
PostgreSQL. Each key is a different principal, as two agents of two buyers would be.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from conftest import seed_catalog
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, PromptReference, ResourceTemplateReference
from starlette.applications import Starlette

from mcp_checkout.config import Settings
from mcp_checkout.domain import Principal, PrincipalKind
from mcp_checkout.errors import Forbidden
from mcp_checkout.hosting import build_http_app
from mcp_checkout.service import policy
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.service.refunds import RefundOrder
from tests.support import a_fresh_minute
from tests.support import tool_data as data

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
            "update_cart": {"cart_id": cart_id, "discount_codes": ["TEN"]},
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
        "refund_order": lambda: seeded.refunds.refund(buyer, RefundOrder("ord_1", "k-1")),
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


# ---------------------------------------------------------------- rate limit (issue 10 #4)
def _mixed_requests(client: Any) -> list[Callable[[], Awaitable[Any]]]:
    """One round of twelve different MCP requests a buyer key may send, good and bad."""
    fresh: Any = "bypass"  # the client caches list and read answers: every request must reach the server
    sku = ResourceTemplateReference(type="ref/resource", uri="catalog://products/{sku}")
    return [
        lambda: client.list_tools(cache_mode=fresh),  # first: the client then knows the output schemas
        lambda: client.call_tool("search_catalog", {"query": "mug"}),
        lambda: client.call_tool("no_such_tool", {}),
        lambda: client.call_tool("search_catalog", {"query": "mug", "limt": 1}),  # an unknown argument
        lambda: client.call_tool("get_product", {"sku": 42}),  # a bad argument
        lambda: client.read_resource("catalog://products/MUG-01", cache_mode=fresh),
        lambda: client.get_prompt("guided_checkout", {"request": "a mug"}),
        lambda: client.list_prompts(cache_mode=fresh),
        lambda: client.list_resource_templates(cache_mode=fresh),
        lambda: client.complete(sku, {"name": "sku", "value": "MU"}),
        lambda: client.subscribe_resource("orders://ord_0000000000"),
        lambda: client.set_logging_level("warning"),
    ]


async def _outcome(call: Callable[[], Awaitable[Any]]) -> str:
    """'rate_limited' for a refusal by the limit (a tool error or a JSON-RPC error), else 'served'."""
    try:
        result = await call()
    except MCPError as exc:
        return "rate_limited" if exc.message.startswith("[rate_limited] ") else "served"
    if isinstance(result, CallToolResult) and result.is_error and result.content[0].text.startswith("[rate_limited] "):
        return "rate_limited"
    return "served"


async def test_every_authenticated_request_counts_against_the_rate_limit(http_shop: ShopFactory) -> None:
    """Before the fix only tool calls that passed argument checks counted: with a limit of 5 a minute,
    resources/read, prompts/get, list calls and bad tool calls all went through, 120 of 120."""
    await a_fresh_minute()  # the 120 requests in one clock minute
    async with http_shop(rate_limit_per_minute=5) as shop, shop.client("buyer_a") as client:
        requests = _mixed_requests(client) * 10
        outcomes = [await _outcome(call) for call in requests]
        assert len(outcomes) == 120
        assert outcomes.count("served") == 5, outcomes[:12]
        assert outcomes[:5] == ["served"] * 5
        async with shop.client("buyer_b") as other:  # the budget is per key
            assert await _outcome(lambda: other.call_tool("search_catalog", {"query": "mug"})) == "served"


# ---------------------------------------------------------------- prompts and resources (issue 10 #13)
async def _protocol_error(call: Awaitable[Any]) -> MCPError:
    with pytest.raises(MCPError) as caught:
        await call
    return caught.value


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_prompts_and_resources_obey_the_policy_and_answer_mcp_error_codes(
    http_shop: ShopFactory, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Before the fix a buyer key could get merchant_daily_report, a buyer reading another buyer's
    orders:// resource got -32603, and an unknown prompt got code 0 with an ERROR traceback in the log."""
    not_found = -32002 if mode == "legacy" else -32602  # resource-not-found was retired in 2026-07-28
    async with http_shop() as shop, shop.client("buyer_a", mode) as a, shop.client("buyer_b", mode) as b:
        order_id = data(await a.call_tool("create_order", order("a-1", "MUG-01")))["order_id"]
        assert order_id in (await a.read_resource(f"orders://{order_id}")).contents[0].text

        theirs = await _protocol_error(b.read_resource(f"orders://{order_id}"))
        assert (theirs.code, theirs.message.split("]")[0]) == (not_found, "[order_not_found")
        missing = await _protocol_error(b.read_resource("catalog://products/NO-SUCH-SKU"))
        assert missing.code == not_found and missing.message.startswith("[sku_not_found] ")
        unknown_uri = await _protocol_error(b.read_resource("nope://x"))
        assert unknown_uri.code == not_found and unknown_uri.message.startswith("[not_found] ")

        forbidden = await _protocol_error(b.get_prompt("merchant_daily_report", {}))
        assert (forbidden.code, forbidden.message.split("]")[0]) == (-32602, "[forbidden")
        report = PromptReference(type="ref/prompt", name="merchant_daily_report")
        assert (await _protocol_error(b.complete(report, {"name": "date", "value": "2"}))).code == -32602

        caplog.clear()
        unknown = await _protocol_error(b.get_prompt("no_such_prompt", {}))
        assert (unknown.code, unknown.message.split("]")[0]) == (-32602, "[invalid_input")
        assert unknown.data["code"] == "invalid_input"

        async with shop.client("merchant", mode) as merchant:
            bad_day = await _protocol_error(merchant.get_prompt("merchant_daily_report", {"date": "yesterday"}))
            assert (bad_day.code, bad_day.message.split("]")[0]) == (-32602, "[invalid_input")
            assert (await merchant.get_prompt("merchant_daily_report", {"date": "2026-05-01"})).messages
            assert order_id in (await merchant.read_resource(f"orders://{order_id}")).contents[0].text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == [], [r.getMessage() for r in errors]
