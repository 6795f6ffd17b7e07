"""Checkout links end to end: minted through the MCP client, opened and paid through the web app."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from mcp_checkout.config import Settings
from mcp_checkout.domain import utc_now
from mcp_checkout.server import build_server
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.store.models import checkout_links
from mcp_checkout.web.app import build_web_app
from tests.support import error_code
from tests.support import tool_data as data

BASE = "http://shop.test"


@pytest.fixture
def shop_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"public_base_url": BASE})


@pytest.fixture
async def shop(shop_settings: Settings, seeded: Services) -> AsyncIterator[tuple[Any, httpx.AsyncClient, Services]]:
    """(MCP server, web client, services), all on one database. Tests open the MCP client themselves:
    an anyio cancel scope cannot span a pytest fixture's setup and teardown."""
    services = build_services(shop_settings, db=seeded.db)
    server = build_server(shop_settings, services=services)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_web_app(lambda: services)), base_url=BASE
    ) as web:
        yield server, web, services


def path_of(url: str) -> str:
    assert url.startswith(BASE + "/checkout/")
    return url[len(BASE) :]


async def pay(web: httpx.AsyncClient, url: str) -> httpx.Response:
    page = await web.get(path_of(url))
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    return await web.post(path_of(url) + "/pay", data={"csrf": csrf.group(1)})


async def test_link_from_an_order_pays_once_and_then_answers_410(shop: Any) -> None:
    server, web, services = shop
    async with Client(server) as client:
        order = data(
            await client.call_tool(
                "create_order", {"idempotency_key": "k-1", "items": [{"sku": "MUG-01", "quantity": 2}]}
            )
        )
        link = data(
            await client.call_tool(
                "create_checkout_link", {"order_id": order["order_id"], "merchant_reference_id": "crm-7"}
            )
        )
        page = await web.get(path_of(link["url"]))
        assert page.status_code == 200
        assert "$36.00" in page.text and order["number"] in page.text and "test payment" in page.text
        assert page.headers["content-security-policy"].count("frame-ancestors 'none'") == 1
        assert page.headers["referrer-policy"] == "no-referrer"
        paid = await pay(web, link["url"])
        assert paid.status_code == 303 and "/checkout/done/" in paid.headers["location"]
        done = await web.get(paid.headers["location"])
        assert "payment received" in done.text
        after = data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert after["status"] == "paid" and after["stock"] == "committed"
        assert after["checkout"]["link_status"] == "consumed" and after["checkout"]["session_status"] == "completed"
        assert [h["to_status"] for h in after["status_history"]] == ["pending_payment", "paid"]
        again = await web.get(path_of(link["url"]), headers={"accept": "application/json"})
        assert again.status_code == 410 and again.json()["error"] == "link_consumed"
        found = data(await client.call_tool("lookup_orders", {"merchant_reference_id": "crm-7"}))
        assert [o["order_id"] for o in found["orders"]] == [order["order_id"]]
        product = await services.catalog.get_product(sku="MUG-01")
        assert product.variants[0].available == 8


async def test_sku_form_creates_order_and_link_exactly_once(shop: Any) -> None:
    server, web, services = shop
    async with Client(server) as client:
        args = {"sku": "SOCK-M-GRY", "quantity": 3, "idempotency_key": "buy-socks", "email": "Ann@Example.com"}
        first = data(await client.call_tool("create_checkout_link", args))
        retry = data(await client.call_tool("create_checkout_link", args))
        assert first["url"] and retry["url"] == first["url"] and retry["replayed"] is True
        assert retry["link_id"] == first["link_id"] and retry["order_id"] == first["order_id"]
        count = await services.db.read(lambda c: c.execute(text("select count(*) from orders")).scalar_one())
        assert count == 1
        # email lock: the page asks for the email, refuses another one and accepts the right one, any case
        page = await web.get(path_of(first["url"]))
        assert 'type="email"' in page.text and "ann@example.com" not in page.text.lower()
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        wrong = await web.post(path_of(first["url"]) + "/email", data={"csrf": csrf, "email": "eve@example.com"})
        assert wrong.status_code == 403 and "ann@" not in wrong.text.lower()
        right = await web.post(path_of(first["url"]) + "/email", data={"csrf": csrf, "email": "ANN@example.com "})
        assert right.status_code == 303
        assert (await pay(web, first["url"])).status_code == 303


async def test_regenerated_link_revokes_the_old_token_and_keeps_the_session(shop: Any) -> None:
    server, web, _ = shop
    async with Client(server) as client:
        order = data(
            await client.call_tool(
                "create_order", {"idempotency_key": "k-2", "items": [{"sku": "MUG-02", "quantity": 1}]}
            )
        )
        old = data(await client.call_tool("create_checkout_link", {"order_id": order["order_id"]}))
        first_open = await web.get(path_of(old["url"]), headers={"accept": "application/json"})
        session_id = first_open.json()["session_id"]
        new = data(await client.call_tool("regenerate_checkout_link", {"url": old["url"]}))
        assert new["url"] != old["url"] and new["order_id"] == order["order_id"]
        gone = await web.get(path_of(old["url"]), headers={"accept": "application/json"})
        assert gone.status_code == 410 and gone.json()["error"] == "link_revoked"
        resumed = await web.get(path_of(new["url"]), headers={"accept": "application/json"})
        assert resumed.json()["session_id"] == session_id
        state = data(await client.call_tool("get_checkout_link", {"link_id": old["link_id"]}))
        assert state["status"] == "revoked" and state["replaced_by"] == new["link_id"] and state["url"] is None


async def test_twenty_concurrent_first_opens_make_one_session_and_one_intent(shop: Any) -> None:
    server, web, services = shop
    async with Client(server) as client:
        order = data(
            await client.call_tool(
                "create_order", {"idempotency_key": "k-3", "items": [{"sku": "MUG-01", "quantity": 1}]}
            )
        )
        link = data(await client.call_tool("create_checkout_link", {"order_id": order["order_id"]}))
        sessions: list[str] = []

        async def open_once() -> None:
            response = await web.get(path_of(link["url"]), headers={"accept": "application/json"})
            assert response.status_code == 200, response.text
            sessions.append(response.json()["session_id"])

        async with anyio.create_task_group() as tasks:
            for _ in range(20):
                tasks.start_soon(open_once)
        assert len(set(sessions)) == 1
        counts = await services.db.read(
            lambda c: c.execute(
                text(
                    "select (select count(*) from checkout_sessions), (select count(*) from payments), "
                    "(select count(*) from offline_intents)"
                )
            ).one()
        )
    assert tuple(counts) == (1, 1, 1)


async def test_tokens_are_stored_only_as_hashes(shop: Any) -> None:
    server, _, services = shop
    async with Client(server) as client:
        link = data(
            await client.call_tool("create_checkout_link", {"sku": "MUG-01", "quantity": 1, "idempotency_key": "k-4"})
        )
        token = link["url"].rsplit("/", 1)[1]
        assert len(token) >= 43  # 32 random bytes
        rows = await services.db.read(lambda c: c.execute(text("select * from checkout_links")).mappings().all())
        flat = " ".join(str(value) for row in rows for value in row.values())
        assert token not in flat
        assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()


async def test_expired_link_and_unknown_token(shop: Any) -> None:
    server, web, _ = shop
    async with Client(server) as client:
        order = data(
            await client.call_tool(
                "create_order", {"idempotency_key": "k-5", "items": [{"sku": "MUG-01", "quantity": 1}]}
            )
        )
        link = data(await client.call_tool("create_checkout_link", {"order_id": order["order_id"]}))
        await client.call_tool("cancel_order", {"order_id": order["order_id"]})
        gone = await web.get(path_of(link["url"]))
        assert gone.status_code == 410 and "link_expired" in gone.text
        missing = await web.get("/checkout/" + "x" * 43, headers={"accept": "application/json"})
        assert missing.status_code == 404 and missing.json()["error"] == "link_not_found"


async def test_forms_without_the_csrf_token_are_refused(shop: Any) -> None:
    server, web, _ = shop
    async with Client(server) as client:
        link = data(
            await client.call_tool("create_checkout_link", {"sku": "MUG-01", "quantity": 1, "idempotency_key": "k-6"})
        )
        await web.get(path_of(link["url"]))
        forged = await web.post(path_of(link["url"]) + "/pay", data={"csrf": "guess"})
        assert forged.status_code == 403
        order = data(await client.call_tool("get_order", {"order_id": link["order_id"]}))
        assert order["status"] == "pending_payment"


# ---------------------------------------------------------------- one live link per order (issue 10 #9)


async def live_links(services: Services, order_id: str) -> int:
    query = text("select count(*) from checkout_links where order_id = :o and status in ('active', 'in_session')")
    return int(await services.db.read(lambda c: c.execute(query, {"o": order_id}).scalar_one()))


async def new_order(client: Client, key: str) -> str:
    args = {"idempotency_key": key, "items": [{"sku": "MUG-01", "quantity": 1}]}
    return str(data(await client.call_tool("create_order", args))["order_id"])


async def test_an_order_has_one_live_link_and_a_keyed_retry_gets_the_same_url(shop: Any) -> None:
    """Issue 10 #9: every create_checkout_link call used to mint another live link for the order."""
    server, web, services = shop
    async with Client(server) as client:
        order_id = await new_order(client, "k-one-link")
        args = {"order_id": order_id, "idempotency_key": "link-1", "email": "ann@example.com"}
        first = data(await client.call_tool("create_checkout_link", args))
        retry = data(await client.call_tool("create_checkout_link", args))
        assert first["replayed"] is False and retry["replayed"] is True
        assert retry["link_id"] == first["link_id"] and retry["url"] == first["url"]
        # another request for the same order: link_exists, naming what to do instead
        for other in ({"order_id": order_id}, {"order_id": order_id, "idempotency_key": "link-2"}):
            refused = await client.call_tool("create_checkout_link", other)
            assert error_code(refused) == "link_exists"
            body = json.loads(refused.content[1].text)["error"]
            assert "regenerate_checkout_link" in body["message"] and body["details"]["link_id"] == first["link_id"]
            assert "regenerate_checkout_link" in body["next_actions"]
        changed = {**args, "merchant_reference_id": "crm-9"}
        assert error_code(await client.call_tool("create_checkout_link", changed)) == "idempotency_conflict"
        assert await live_links(services, order_id) == 1
        # regenerate keeps the email lock; a replay of the first call now answers the current link
        new = data(await client.call_tool("regenerate_checkout_link", {"link_id": first["link_id"]}))
        assert new["email_locked"] is True and await live_links(services, order_id) == 1
        again = data(await client.call_tool("create_checkout_link", args))
        assert again["link_id"] == new["link_id"] and again["url"] == new["url"] and again["replayed"] is True
        page = await web.get(path_of(new["url"]))
        assert 'type="email"' in page.text


async def test_the_email_lock_carries_over_to_the_orders_next_link(shop: Any) -> None:
    server, web, services = shop
    async with Client(server) as client:
        order_id = await new_order(client, "k-lock-carry")
        locked = data(
            await client.call_tool("create_checkout_link", {"order_id": order_id, "email": "ann@example.com"})
        )
        # the link runs out while the order is still payable: a new link may be made, and keeps the lock
        query = text("update checkout_links set expires_at = :t where id = :i")
        past = utc_now() - timedelta(minutes=1)
        await services.db.write(lambda c: c.execute(query, {"t": past, "i": locked["link_id"]}))
        fresh = data(await client.call_tool("create_checkout_link", {"order_id": order_id}))
        assert fresh["link_id"] != locked["link_id"] and fresh["email_locked"] is True
        page = await web.get(path_of(fresh["url"]))
        assert 'type="email"' in page.text
        other = {"order_id": order_id, "email": "eve@example.com"}
        await services.db.write(lambda c: c.execute(query, {"t": past, "i": fresh["link_id"]}))
        assert error_code(await client.call_tool("create_checkout_link", other)) == "invalid_input"
        count = text("select count(*) from checkout_links where order_id = :o")
        assert await services.db.read(lambda c: c.execute(count, {"o": order_id}).scalar_one()) == 2


async def test_concurrent_create_checkout_link_calls_leave_one_live_link(shop: Any) -> None:
    server, _, services = shop
    async with Client(server) as client:
        order_id = await new_order(client, "k-link-race")
        results: list[Any] = []

        async def create(args: dict[str, Any]) -> None:
            results.append(await client.call_tool("create_checkout_link", args))

        async with anyio.create_task_group() as tasks:  # different requests: one link, the rest link_exists
            for i in range(10):
                tasks.start_soon(create, {"order_id": order_id, "idempotency_key": f"race-{i}"})
        ok = [data(r) for r in results if not r.is_error]
        assert len(ok) == 1 and sorted(error_code(r) for r in results if r.is_error) == ["link_exists"] * 9
        assert await live_links(services, order_id) == 1

        results.clear()
        other = await new_order(client, "k-link-race-2")
        async with anyio.create_task_group() as tasks:  # one request retried at once: one link, replayed
            for _ in range(10):
                tasks.start_soon(create, {"order_id": other, "idempotency_key": "race-same"})
        links = [data(r) for r in results]
        assert len({link["link_id"] for link in links}) == 1 and len({link["url"] for link in links}) == 1
        assert sorted(link["replayed"] for link in links) == [False] + [True] * 9
        assert await live_links(services, other) == 1


async def test_the_database_refuses_a_second_live_link_for_an_order(shop: Any) -> None:
    server, _, services = shop
    async with Client(server) as client:
        order_id = await new_order(client, "k-link-constraint")
        link = data(await client.call_tool("create_checkout_link", {"order_id": order_id}))

    def second(conn: Any) -> None:
        row = dict(
            conn.execute(text("select * from checkout_links where id = :i"), {"i": link["link_id"]}).mappings().one()
        )
        now = utc_now()
        row.update(id="link_second", token_hash="0" * 64, status="in_session", created_at=now, updated_at=now)
        row.update(expires_at=now + timedelta(hours=1))
        conn.execute(checkout_links.insert().values(**row))

    with pytest.raises(IntegrityError):
        await services.db.write(second)
