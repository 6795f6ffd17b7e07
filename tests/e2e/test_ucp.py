"""UCP against a real `serve --http` over real HTTP: discovery, the REST binding and the MCP binding
(stateless streamable HTTP at /ucp/mcp, driven by the official `mcp` client), with the platform's profile
served by a real local HTTP server. Every UCP answer is checked against the spec's pinned schemas and the
ucp-sdk models (tests/ucp_client.conforms)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from browser import pay_in_browser
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from servers import Server, cli, create_keys, running, server_env, write_catalog
from ucp_sdk.models.schemas.shopping.checkout import Checkout
from ucp_sdk.models.schemas.shopping.order import Order

from tests.fakes.webhook_receiver import Receiver, verify_ucp_node, wait_for
from tests.support import a_fresh_minute, json_server
from tests.ucp_client import Platform, conforms, platform_capabilities
from tests.ucp_schemas import BUSINESS_PROFILE, CHECKOUT, validate

CATALOG = [("Stoneware Mug", "MUG-01", "18.00", 10), ("Camp Mug", "MUG-02", "14.50", 5)]


@dataclass
class Shop:
    server: Server
    key: str
    platform: str  # the platform profile URL (2026-04-08), whose order capability names ``receiver``
    old_platform: str  # a platform that speaks 2026-01-11
    receiver: Receiver  # the platform's order webhook receiver
    env: dict[str, str]  # the server's environment, for the CLI


@contextmanager
def _ucp_shop(home: Path, name: str, extra_env: dict[str, str] | None = None) -> Iterator[Shop]:
    """A real ``serve --http`` with the catalog, one buyer key, platform profiles on a local server and the
    platform's order webhook receiver."""
    receiver = Receiver()
    receiver.up()
    orders = platform_capabilities(order={"webhook_url": receiver.url})
    profiles = {
        "/new/.well-known/ucp": {"ucp": {"version": "2026-04-08", "services": {}, "payment_handlers": {},
                                         "capabilities": orders}},
        "/old/.well-known/ucp": {"ucp": {"version": "2026-01-11", "services": {}, "payment_handlers": {}}},
    }  # fmt: skip
    env = server_env(
        {"MCP_CHECKOUT_DATA_DIR": str(home), "MCP_CHECKOUT_UCP_ALLOW_HTTP_PROFILES": "true", **(extra_env or {})}
    )
    cli(env, "migrate")
    cli(env, "import-catalog", str(write_catalog(home / "catalog.csv", CATALOG)))
    [key] = create_keys(env, ("platform", "buyer"))
    try:
        with json_server(profiles.get) as base, running(env, home / "logs", 1, name=name) as [server]:
            yield Shop(server, key, f"{base}/new/.well-known/ucp", f"{base}/old/.well-known/ucp", receiver, env)
    finally:
        receiver.down()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    with _ucp_shop(tmp_path_factory.mktemp("ucp-shop"), "ucp") as opened:
        yield opened


GUEST_LIMIT = 40


@pytest.fixture(scope="module")
def guest_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The same shop with MCP_CHECKOUT_UCP_PUBLIC=true and a small per-address budget."""
    guest_env = {
        "MCP_CHECKOUT_UCP_PUBLIC": "true",
        "MCP_CHECKOUT_UCP_PUBLIC_RATE_LIMIT_PER_MINUTE": str(GUEST_LIMIT),
    }
    with _ucp_shop(tmp_path_factory.mktemp("ucp-guest"), "ucp-guest", guest_env) as opened:
        yield opened


async def test_discovery_declares_both_bindings_of_the_checkout_service(shop: Shop) -> None:
    async with httpx.AsyncClient(base_url=shop.server.base) as web:
        answer = await web.get("/.well-known/ucp")
    assert answer.status_code == 200 and "public" in answer.headers["cache-control"]
    profile = answer.json()
    validate(profile, BUSINESS_PROFILE)
    bindings = {b["transport"]: b["endpoint"] for b in profile["ucp"]["services"]["dev.ucp.shopping"]}
    assert bindings == {"rest": f"{shop.server.base}/ucp/v1", "mcp": f"{shop.server.base}/ucp/mcp"}


async def test_a_buyer_journey_over_rest_escalates_to_our_page_and_completes_when_paid(shop: Shop) -> None:
    async with httpx.AsyncClient(base_url=shop.server.base, timeout=30) as web:
        platform = Platform(web, shop.key, shop.platform)
        created = await platform.create([("MUG-01", 1)])
        assert created.status_code == 201
        checkout = conforms(created)
        buyer = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}
        updated = conforms(await platform.update(checkout["id"], [("MUG-01", 2), ("MUG-02", 1)], buyer=buyer))
        assert updated["status"] == "ready_for_complete" and updated["buyer"] == buyer
        assert [t for t in updated["totals"] if t["type"] == "total"] == [{"type": "total", "amount": 3600 + 1450}]

        key = str(uuid.uuid4())
        escalated = conforms(await platform.complete(checkout["id"], key))
        assert escalated["status"] == "requires_escalation"
        assert conforms(await platform.complete(checkout["id"], key)) == escalated  # a retry replays
        receipt = await pay_in_browser(escalated["continue_url"])  # the buyer, in Chromium
        assert receipt.startswith(shop.server.base + "/checkout/done/")
        completed = conforms(await platform.get(checkout["id"]))
        assert completed["status"] == "completed"

        old = await web.get(
            f"/ucp/v1/checkout-sessions/{checkout['id']}",
            headers={"X-API-Key": shop.key, "UCP-Agent": f'profile="{shop.old_platform}"'},
        )
        assert (old.status_code, conforms(old)["code"]) == (422, "version_unsupported")

    async with shop.server.client(shop.key) as native:  # the same order through the native tools
        order = await native.call_tool("get_order", {"order_id": completed["order"]["id"]})
        assert not order.is_error and order.structured_content["status"] == "paid"

    # The server's own dispatcher sent the platform its order (placed, then paid), RFC 9421 signed with the
    # key its profile publishes; the npm http-message-signatures library verifies them.
    order_id = completed["order"]["id"]
    wait_for(lambda: sum(json.loads(r.body)["id"] == order_id for r in shop.receiver.delivered()) >= 2, timeout=30)
    mine = [r for r in shop.receiver.delivered() if json.loads(r.body)["id"] == order_id]
    async with httpx.AsyncClient(base_url=shop.server.base) as web:
        keys = (await web.get("/.well-known/ucp")).json()["signing_keys"]
    for received in mine:
        validate(json.loads(received.body), "https://ucp.dev/schemas/shopping/order.json")
    cases = [{"method": "POST", "url": shop.receiver.url, "headers": r.headers, "body": r.body, "signing_keys": keys}
             for r in mine]  # fmt: skip
    assert [result["ok"] for result in verify_ucp_node(cases)] == [True] * len(mine)


def _ucp_mcp(shop: Shop, key: str | None, mode: str) -> Client:
    headers = {"X-API-Key": key} if key else {}
    http = httpx2.AsyncClient(headers=headers, timeout=60)
    return Client(streamable_http_client(f"{shop.server.base}/ucp/mcp", http_client=http), mode=mode)


def _checkout(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    body = dict(result.structured_content)
    assert json.loads(result.content[0].text) == body
    validate(body, CHECKOUT)
    Checkout.model_validate(body)
    return body


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_mcp_binding_runs_the_checkout_with_the_specs_argument_envelope(shop: Shop, mode: str) -> None:
    meta = {"ucp-agent": {"profile": shop.platform}}
    async with _ucp_mcp(shop, shop.key, mode) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert tools == {
            "create_checkout", "get_checkout", "update_checkout", "complete_checkout", "cancel_checkout",
            "search_catalog", "lookup_catalog", "get_product", "get_order",
        }  # fmt: skip
        searched = await client.call_tool("search_catalog", {"meta": meta, "catalog": {"query": "camp mug"}})
        assert not searched.is_error, searched.content
        validate(
            searched.structured_content, "https://ucp.dev/schemas/shopping/catalog_search.json#/$defs/search_response"
        )
        assert [v["id"] for v in searched.structured_content["products"][0]["variants"]] == ["MUG-02"]
        looked_up = await client.call_tool("lookup_catalog", {"meta": meta, "catalog": {"ids": ["MUG-02"]}})
        assert looked_up.structured_content["products"][0]["variants"][0]["inputs"] == [
            {"id": "MUG-02", "match": "exact"}
        ]
        detail = await client.call_tool("get_product", {"meta": meta, "catalog": {"id": "MUG-02"}})
        assert detail.structured_content["product"]["title"] == "Camp Mug"
        line = {"item": {"id": "MUG-02"}, "quantity": 1}
        created = _checkout(
            await client.call_tool("create_checkout", {"meta": meta, "checkout": {"line_items": [line]}})
        )
        assert created["status"] == "ready_for_complete"
        buyer = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}
        updated = _checkout(await client.call_tool(
            "update_checkout",
            {"meta": meta, "id": created["id"], "checkout": {"line_items": [{**line, "quantity": 2}], "buyer": buyer}},
        ))  # fmt: skip
        assert updated["line_items"][0]["quantity"] == 2
        assert updated["buyer"] == buyer
        payment = {"instruments": [{"id": "1", "handler_id": "offline_test", "type": "offline_test",
                                    "credential": {"type": "token", "token": "success_token"}}]}  # fmt: skip
        keyed = {**meta, "idempotency-key": str(uuid.uuid4())}
        done = _checkout(await client.call_tool(
            "complete_checkout", {"meta": keyed, "id": created["id"], "checkout": {"payment": payment}}
        ))  # fmt: skip
        assert done["status"] == "completed" and done["order"]["id"]
        assert _checkout(await client.call_tool("get_checkout", {"meta": meta, "id": created["id"]})) == done
        order = await client.call_tool("get_order", {"meta": meta, "id": done["order"]["id"]})
        assert not order.is_error, order.content
        validate(order.structured_content, "https://ucp.dev/schemas/shopping/order.json")
        Order.model_validate(order.structured_content)
        assert (order.structured_content["checkout_id"], order.structured_content["line_items"][0]["quantity"]) == (
            created["id"], {"original": 2, "total": 2, "fulfilled": 0}
        )  # fmt: skip
        unknown = await client.call_tool("get_order", {"meta": meta, "id": "ord_missing"})
        assert unknown.structured_content["messages"][0]["code"] == "not_found"

        # without an instrument: escalation to our page, where the buyer pays in a real browser
        mug = {"item": {"id": "MUG-01"}, "quantity": 1}  # (MUG-02's stock of 5 is spent by the other tests)
        second = _checkout(await client.call_tool("create_checkout", {"meta": meta, "checkout": {"line_items": [mug]}}))
        escalated = _checkout(await client.call_tool(
            "complete_checkout",
            {"meta": {**meta, "idempotency-key": str(uuid.uuid4())}, "id": second["id"], "checkout": {"payment": {}}},
        ))  # fmt: skip
        assert escalated["status"] == "requires_escalation" and escalated["continue_url"]
        await pay_in_browser(escalated["continue_url"])
        paid = _checkout(await client.call_tool("get_checkout", {"meta": meta, "id": second["id"]}))
        assert paid["status"] == "completed" and paid["order"]["id"] != done["order"]["id"]

        with pytest.raises(MCPError) as unkeyed:
            await client.call_tool(
                "complete_checkout", {"meta": meta, "id": created["id"], "checkout": {"payment": {}}}
            )
        assert unkeyed.value.code == -32602
        with pytest.raises(MCPError) as old:
            await client.call_tool("get_checkout", {"meta": {"ucp-agent": {"profile": shop.old_platform}}, "id": "x"})
        assert (old.value.code, old.value.data["code"]) == (-32001, "version_unsupported")
        missing = await client.call_tool("get_checkout", {"meta": meta, "id": "cart_missing"})
        assert missing.structured_content["ucp"]["status"] == "error"


async def test_the_mcp_binding_refuses_an_unknown_key_or_none_with_http_401(shop: Shop) -> None:
    async with httpx.AsyncClient(base_url=shop.server.base) as web:
        answer = await web.post(
            "/ucp/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"X-API-Key": "mcpk_test_wrong", "Accept": "application/json, text/event-stream"},
        )
        keyless = await web.post(  # guest mode is off by default: no key is 401 too
            "/ucp/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream"},
        )
    assert answer.status_code == 401 and keyless.status_code == 401
    assert answer.json()["error"]["code"] == keyless.json()["error"]["code"] == -32000


async def test_the_mcp_binding_answers_refusals_with_the_specs_http_status(shop: Shop) -> None:
    """Over streamable HTTP the refusal's HTTP status goes with the JSON-RPC error (overview.md, Error
    Handling: "servers MUST return the corresponding HTTP status code"). Before, every refusal of a tool
    call came back as HTTP 200."""
    meta = {"ucp-agent": {"profile": shop.platform}}
    headers = {"X-API-Key": shop.key, "Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(base_url=shop.server.base, headers=headers, timeout=30) as web:

        async def call(name: str, arguments: dict[str, Any]) -> httpx.Response:
            request = {
                "jsonrpc": "2.0",
                "id": 7,
                "method": "tools/call",
                "params": {"name": name, "arguments": arguments},
            }
            return await web.post("/ucp/mcp", json=request)

        line = {"item": {"id": "MUG-01"}, "quantity": 1}
        created = await call("create_checkout", {"meta": meta, "checkout": {"line_items": [line]}})
        assert created.status_code == 200, created.text
        checkout_id = created.json()["result"]["structuredContent"]["id"]
        keyed = {**meta, "idempotency-key": str(uuid.uuid4())}
        first = await call("complete_checkout", {"meta": keyed, "id": checkout_id, "checkout": {"payment": {}}})
        assert first.status_code == 200 and "result" in first.json(), first.text
        other_body = {"payment": {"instruments": []}}
        conflict = await call("complete_checkout", {"meta": keyed, "id": checkout_id, "checkout": other_body})
        error = conflict.json()["error"]
        assert (conflict.status_code, error["code"], error["data"]["code"]) == (409, -32000, "idempotency_conflict")
        old = await call("get_checkout", {"meta": {"ucp-agent": {"profile": shop.old_platform}}, "id": checkout_id})
        error = old.json()["error"]
        assert (old.status_code, error["code"], error["data"]["code"]) == (422, -32001, "version_unsupported")
        unkeyed = await call("complete_checkout", {"meta": meta, "id": checkout_id, "checkout": {"payment": {}}})
        assert (unkeyed.status_code, unkeyed.json()["error"]["code"]) == (400, -32602)
        unkeyed_cancel = await call("cancel_checkout", {"meta": meta, "id": checkout_id})  # required there too
        assert (unkeyed_cancel.status_code, unkeyed_cancel.json()["error"]["code"]) == (400, -32602)
        found = await call("get_checkout", {"meta": meta, "id": checkout_id})
        assert found.status_code == 200 and "result" in found.json()


async def test_guest_mode_opens_the_ucp_mcp_binding_without_a_key_but_not_the_native_tools(guest_shop: Shop) -> None:
    await a_fresh_minute()  # the guest budget is spent and refused below within one clock minute
    meta = {"ucp-agent": {"profile": guest_shop.platform}}
    async with _ucp_mcp(guest_shop, None, "auto") as client:  # no key at all
        line = {"item": {"id": "MUG-01"}, "quantity": 1}
        created = _checkout(
            await client.call_tool("create_checkout", {"meta": meta, "checkout": {"line_items": [line]}})
        )
        assert created["status"] == "ready_for_complete"
    async with httpx.AsyncClient(base_url=guest_shop.server.base) as web:
        headers = {"UCP-Agent": f'profile="{guest_shop.platform}"'}
        found = await web.get(f"/ucp/v1/checkout-sessions/{created['id']}", headers=headers)  # REST too
        assert found.status_code == 200 and conforms(found)["id"] == created["id"]
        native = await web.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream"},
        )
        assert native.status_code == 401  # the native tools (merchant ones among them) stay behind keys
        statuses = []
        for _ in range(GUEST_LIMIT + 1):
            answer = await web.get(f"/ucp/v1/checkout-sessions/{created['id']}", headers=headers)
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                assert conforms(answer)["code"] == "rate_limited" and int(answer.headers["retry-after"]) >= 1
                break
        assert statuses[-1] == 429, statuses
        limited = await web.post(
            "/ucp/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream"},
        )
        assert limited.status_code == 429 and limited.headers["retry-after"]


async def test_the_operator_rotates_the_signing_key_and_the_running_server_publishes_and_signs_with_it(
    shop: Shop,
) -> None:
    async with httpx.AsyncClient(base_url=shop.server.base) as web:
        before = [k["kid"] for k in (await web.get("/.well-known/ucp")).json()["signing_keys"]]
        new = cli(shop.env, "keys", "rotate-signing").stdout.strip()
        after = [k["kid"] for k in (await web.get("/.well-known/ucp")).json()["signing_keys"]]
    assert new.startswith("es256-") and after == [new, *before]  # the old key stays published
    listed = cli(shop.env, "keys", "signing").stdout
    assert all(kid in listed for kid in after) and "PRIVATE" not in listed
