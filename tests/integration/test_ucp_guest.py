"""Guest platforms (MCP_CHECKOUT_UCP_PUBLIC): off by default, every UCP call needs an API key; on, a platform
without a key shops as the guest buyer, rate limited per client address, and reaches nothing a key's
checkouts or the merchant own. In process over the REST binding, both backends; the MCP binding's gate is
covered over real HTTP in tests/e2e/test_ucp.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from mcp_checkout.config import Settings
from mcp_checkout.domain import Principal
from mcp_checkout.service.container import Services, build_services
from tests.support import a_fresh_minute
from tests.ucp_client import PLATFORM_PROFILE, Platform, conforms, ucp_app

BASE = "http://shop.test"
GUEST_HEADERS = {"UCP-Agent": f'profile="{PLATFORM_PROFILE}"'}
Open = Callable[..., Any]


@pytest.fixture
def open_shop(settings: Settings, seeded: Services) -> Open:
    """``open_shop(public=…, per_minute=…)``: a UCP REST app on ``seeded``'s database; yields a client for
    one client address (``client_for(address)``) and the services."""

    @asynccontextmanager
    async def open_(public: bool, per_minute: int = 120) -> AsyncIterator[tuple[Callable[[str], Any], Services]]:
        changed = {"public_base_url": BASE, "ucp_public": public, "ucp_public_rate_limit_per_minute": per_minute}
        services = build_services(settings.model_copy(update=changed), db=seeded.db)
        app = ucp_app(services)
        clients: list[httpx.AsyncClient] = []

        def client_for(address: str) -> httpx.AsyncClient:
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url=BASE)
            clients.append(client)
            return client

        try:
            yield client_for, services
        finally:
            for client in clients:
                await client.aclose()
            await services.close()

    return open_


def guest(client: httpx.AsyncClient) -> Platform:
    platform = Platform(client, "")
    platform.headers = dict(GUEST_HEADERS)  # no X-API-Key at all
    return platform


async def test_off_by_default_a_platform_without_a_key_is_refused_401(open_shop: Open, settings: Settings) -> None:
    assert settings.ucp_public is False
    async with open_shop(public=False) as (client_for, _):
        platform = guest(client_for("203.0.113.7"))
        created = await platform.create([("MUG-01", 1)])
        assert created.status_code == 401 and conforms(created)["code"] == "unauthorized"
        assert created.headers["www-authenticate"].startswith("Bearer")
        assert (await platform.get("cart_anything")).status_code == 401
        searched = await platform.client.post("/ucp/v1/catalog/search", json={"query": "mug"}, headers=GUEST_HEADERS)
        assert searched.status_code == 401
        assert (await platform.client.get("/.well-known/ucp")).status_code == 200  # discovery is always public


async def test_on_a_guest_checks_out_without_a_key_and_pays_with_the_offline_test_token(open_shop: Open) -> None:
    async with open_shop(public=True) as (client_for, services):
        platform = guest(client_for("203.0.113.7"))
        checkout = conforms(await platform.create([("MUG-01", 2)]))
        assert checkout["status"] == "ready_for_complete"
        updated = conforms(await platform.update(checkout["id"], [("MUG-01", 1)], buyer={"email": "ada@example.com"}))
        assert updated["buyer"] == {"email": "ada@example.com"}
        paid = conforms(await platform.complete(checkout["id"], str(uuid.uuid4()), "success_token"))
        assert paid["status"] == "completed"
        # another address reaches the same checkout by its id (guests are one buyer), and so does the merchant
        assert conforms(await guest(client_for("198.51.100.9")).get(checkout["id"]))["status"] == "completed"
        native = await services.orders.get(Principal(id="merchant", kind="merchant"), paid["order"]["id"])
        assert native.status == "paid" and native.total.amount == 1800


async def test_on_guests_reach_no_keyed_platforms_checkout_and_a_wrong_key_is_still_401(open_shop: Open) -> None:
    async with open_shop(public=True) as (client_for, services):
        client = client_for("203.0.113.7")
        key = (await services.access.create_key("platform", "buyer")).key
        keyed = conforms(await Platform(client, key).create([("MUG-01", 1)]))
        hidden = await guest(client).get(keyed["id"])
        assert hidden.status_code == 404 and conforms(hidden)["messages"][0]["code"] == "not_found"
        assert (await guest(client).cancel(keyed["id"])).status_code == 404
        wrong = await Platform(client, "mcpk_test_000000000000_" + "x" * 43).create([("MUG-01", 1)])
        assert wrong.status_code == 401  # a key that is sent must be right: no silent fall back to guest
        guest_checkout = conforms(await guest(client).create([("MUG-01", 1)]))
        assert (await Platform(client, key).get(guest_checkout["id"])).status_code == 404


async def test_on_each_client_address_has_its_own_per_minute_budget(open_shop: Open) -> None:
    await a_fresh_minute()
    async with open_shop(public=True, per_minute=3) as (client_for, _):
        busy = guest(client_for("203.0.113.7"))
        for _ in range(3):
            assert (await busy.get("cart_missing")).status_code == 404
        limited = await busy.create([("MUG-01", 1)])
        assert limited.status_code == 429
        body = conforms(limited)
        assert body["code"] == "rate_limited" and "This address made more than 3 calls" in body["content"]
        assert 1 <= int(limited.headers["retry-after"]) <= 61
        other = guest(client_for("198.51.100.9"))
        assert conforms(await other.create([("MUG-01", 1)]))["status"] == "ready_for_complete"
