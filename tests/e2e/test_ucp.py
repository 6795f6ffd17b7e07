"""UCP against a real `serve --http` over real HTTP: discovery, the REST binding and the MCP binding
(stateless streamable HTTP at /ucp/mcp, driven by the official `mcp` client), with the platform's profile
served by a real local HTTP server. Every UCP answer is checked against the spec's pinned schemas and the
ucp-sdk models (tests/ucp_client.conforms)."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from servers import Server, cli, create_keys, running, server_env, write_catalog
from ucp_sdk.models.schemas.shopping.checkout import Checkout
from ucp_sdk.models.schemas.shopping.order import Order

from tests.fakes.webhook_receiver import Receiver, verify_ucp_node, wait_for
from tests.ucp_client import Platform, conforms
from tests.ucp_schemas import BUSINESS_PROFILE, CHECKOUT, validate

CATALOG = [("Stoneware Mug", "MUG-01", "18.00", 10), ("Camp Mug", "MUG-02", "14.50", 5)]


class _Profiles(BaseHTTPRequestHandler):
    profiles: ClassVar[dict[str, dict[str, Any]]] = {}

    def do_GET(self) -> None:
        found = self.profiles.get(self.path)
        body = json.dumps(found).encode() if found is not None else b"{}"
        self.send_response(200 if found is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Shop:
    server: Server
    key: str
    platform: str  # the platform profile URL (2026-04-08), whose order capability names ``receiver``
    old_platform: str  # a platform that speaks 2026-01-11
    receiver: Receiver  # the platform's order webhook receiver


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    receiver = Receiver()
    receiver.up()
    orders = {"dev.ucp.shopping.order": [{"version": "2026-04-08", "config": {"webhook_url": receiver.url}}]}
    handler = type("Profiles", (_Profiles,), {"profiles": {
        "/new/.well-known/ucp": {"ucp": {"version": "2026-04-08", "services": {}, "payment_handlers": {},
                                         "capabilities": orders}},
        "/old/.well-known/ucp": {"ucp": {"version": "2026-01-11", "services": {}, "payment_handlers": {}}},
    }})  # fmt: skip
    profiles = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=profiles.serve_forever, daemon=True).start()
    home = tmp_path_factory.mktemp("ucp-shop")
    env = server_env({"MCP_CHECKOUT_DATA_DIR": str(home), "MCP_CHECKOUT_UCP_ALLOW_HTTP_PROFILES": "true"})
    cli(env, "migrate")
    cli(env, "import-catalog", str(write_catalog(home / "catalog.csv", CATALOG)))
    [key] = create_keys(env, ("platform", "buyer"))
    base = f"http://127.0.0.1:{profiles.server_address[1]}"
    try:
        with running(env, home / "logs", 1, name="ucp") as [server]:
            yield Shop(server, key, f"{base}/new/.well-known/ucp", f"{base}/old/.well-known/ucp", receiver)
    finally:
        profiles.shutdown()
        receiver.down()


async def pay_on_our_page(web: httpx.AsyncClient, url: str) -> None:
    page = await web.get(url)
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    paid = await web.post(url + "/pay", data={"csrf": csrf.group(1)})
    assert paid.status_code == 303, paid.text


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
        updated = conforms(await platform.update(checkout["id"], [("MUG-01", 2), ("MUG-02", 1)]))
        assert updated["status"] == "ready_for_complete"
        assert [t for t in updated["totals"] if t["type"] == "total"] == [{"type": "total", "amount": 3600 + 1450}]

        key = str(uuid.uuid4())
        escalated = conforms(await platform.complete(checkout["id"], key))
        assert escalated["status"] == "requires_escalation"
        assert conforms(await platform.complete(checkout["id"], key)) == escalated  # a retry replays
        await pay_on_our_page(web, escalated["continue_url"])
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


async def test_the_mcp_binding_refuses_an_unknown_key_with_http_401(shop: Shop) -> None:
    async with httpx.AsyncClient(base_url=shop.server.base) as web:
        answer = await web.post(
            "/ucp/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"X-API-Key": "mcpk_test_wrong", "Accept": "application/json, text/event-stream"},
        )
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == -32000
