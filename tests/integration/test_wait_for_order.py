"""Waiting for an order's outcome: the wait_for_order tool and orders:// subscriptions.

Payments go through the real checkout page (the web app, offline gateway's test payment), as a buyer
would make them; changes from "another process" come from a second Services on its own Database.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from conftest import wait_across
from mcp import Client
from mcp import types as mcp_types
from mcp.shared.exceptions import MCPError
from test_checkout_links import BASE, data, pay

from mcp_checkout.config import Settings
from mcp_checkout.domain import Principal
from mcp_checkout.server import build_server
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.web.app import build_web_app

Shop = tuple[Any, httpx.AsyncClient, Services]
# The legacy subscribe calls are what 2025-11-25 clients send; the SDK's client warns they are gone in 2026-07-28.
pytestmark = pytest.mark.filterwarnings("ignore:resources/(un)?subscribe is removed")


@pytest.fixture
async def shop(settings: Settings, seeded: Services) -> AsyncIterator[Shop]:
    """(MCP server, checkout-page client, services) on one database, one Services (one process).
    The database poll is all but off (once a minute): here a commit must wake waiters by itself."""
    shop_settings = settings.model_copy(update={"public_base_url": BASE, "order_watch_poll_seconds": 60})
    services = build_services(shop_settings, db=seeded.db)
    server = build_server(shop_settings, services=services)
    app = build_web_app(lambda: services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as web:
        yield server, web, services


async def new_order(client: Client, key: str, sku: str = "MUG-01") -> dict[str, Any]:
    return data(
        await client.call_tool("create_order", {"idempotency_key": key, "items": [{"sku": sku, "quantity": 1}]})
    )


async def link_for(client: Client, order_id: str) -> str:
    return str(data(await client.call_tool("create_checkout_link", {"order_id": order_id}))["url"])


def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    return str(result.content[0].text)


@pytest.fixture
async def other_buyers_order(settings: Settings, seeded: Services) -> tuple[str, Settings]:
    """An order of buyer-b, and settings whose local principal is buyer-a."""
    theirs = await seeded.orders.create(
        Principal(id="buyer-b", kind="buyer"),
        CreateOrder(idempotency_key="b-1", items=[("MUG-01", 1)]),
    )
    return theirs.order_id, settings.model_copy(
        update={"local_principal_kind": "buyer", "local_principal_id": "buyer-a"}
    )


# ---------------------------------------------------------------- wait_for_order
async def test_returns_at_once_when_already_in_a_wanted_status(shop: Shop) -> None:
    server, _, _ = shop
    async with Client(server) as client:
        order = await new_order(client, "w-1")
        await client.call_tool("cancel_order", {"order_id": order["order_id"]})
        started = time.monotonic()
        result = data(
            await client.call_tool(
                "wait_for_order", {"order_id": order["order_id"], "statuses": ["canceled"], "timeout_seconds": 30}
            )
        )
        assert time.monotonic() - started < 1
        assert result["reached"] is True and result["order"]["status"] == "canceled"
        assert result["order"]["order_id"] == order["order_id"] and result["waited_seconds"] < 1


async def test_stops_at_once_when_the_status_can_no_longer_be_reached(shop: Shop) -> None:
    server, _, _ = shop
    async with Client(server) as client:
        order = await new_order(client, "w-2")
        await client.call_tool("cancel_order", {"order_id": order["order_id"]})
        result = data(
            await client.call_tool(
                "wait_for_order", {"order_id": order["order_id"], "statuses": ["paid"], "timeout_seconds": 30}
            )
        )
        assert result["reached"] is False and result["order"]["status"] == "canceled"
        assert result["waited_seconds"] < 1 and "can no longer become paid" in result["message"]


async def test_times_out_with_the_current_state(shop: Shop) -> None:
    server, _, services = shop
    async with Client(server, mode="legacy") as client:
        order = await new_order(client, "w-3")
        started = time.monotonic()
        result = data(await client.call_tool("wait_for_order", {"order_id": order["order_id"], "timeout_seconds": 1}))
        elapsed = time.monotonic() - started
        assert 0.9 <= elapsed < 3, elapsed
        assert result["reached"] is False and result["order"]["status"] == "pending_payment"
        assert 0.9 <= result["waited_seconds"] < 3
        assert "wait_for_order again" in result["message"]
        assert services.order_watch.watched == 0  # the waiter left nothing behind


async def test_wakes_on_payment_through_the_checkout_page(shop: Shop) -> None:
    server, web, _ = shop
    async with Client(server) as client:
        order = await new_order(client, "w-4")
        url = await link_for(client, order["order_id"])

        async def buyer_pays() -> None:
            assert (await pay(web, url)).status_code == 303

        result, latency = await wait_across(client, {"order_id": order["order_id"], "timeout_seconds": 30}, buyer_pays)
        # Well before its 30 s timeout, and before its first 5 s heartbeat re-read: the commit woke it.
        assert latency < 2, latency
        assert result["reached"] is True and result["order"]["status"] == "paid"
        assert result["waited_seconds"] < 10


@pytest.fixture
async def two_processes(settings: Settings, seeded: Services) -> AsyncIterator[tuple[Any, Services, Principal]]:
    """(MCP server, other, local principal): the server builds its own services; ``other`` is a second
    Services with its own Database on the same database, as another server process would be. Only the
    database poll can notice what ``other`` changes."""
    other = build_services(settings)
    yield build_server(settings), other, Principal(id=settings.local_principal_id, kind=settings.local_principal_kind)
    await other.close()


async def test_a_change_made_by_another_process_wakes_it(two_processes: tuple[Any, Services, Principal]) -> None:
    server, other, local = two_processes
    async with Client(server) as client:
        order = await new_order(client, "w-5")
        result, latency = await wait_across(
            client,
            {"order_id": order["order_id"], "timeout_seconds": 20},
            lambda: other.orders.cancel(local, order["order_id"], "changed my mind"),
        )
        assert latency < 3, latency  # a poll every 0.5 s
        assert result["reached"] is True and result["order"]["status"] == "canceled"


async def test_expiry_by_the_sweep_wakes_it(settings: Settings, seeded: Services, fake_clock: Any) -> None:
    services = build_services(settings, db=seeded.db, clock=fake_clock)
    async with Client(build_server(settings, services=services)) as client:
        order = await new_order(client, "w-8")

        async def time_runs_out() -> None:
            fake_clock.advance(minutes=settings.order_ttl_minutes + 1)
            assert await services.orders.expire_due() == 1  # what the background sweep does

        result, latency = await wait_across(
            client, {"order_id": order["order_id"], "timeout_seconds": 30}, time_runs_out
        )
        assert latency < 2, latency
        assert result["reached"] is True and result["order"]["status"] == "expired"


async def test_a_buyer_cannot_wait_for_another_buyers_order(
    seeded: Services, other_buyers_order: tuple[str, Settings]
) -> None:
    theirs, buyer_settings = other_buyers_order
    async with Client(build_server(buyer_settings, services=seeded)) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert "wait_for_order" in tools  # a buyer tool
        text = error_text(await client.call_tool("wait_for_order", {"order_id": theirs, "timeout_seconds": 5}))
        assert text.startswith("[order_not_found]")
    assert seeded.order_watch.watched == 0


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"statuses": []}, "statuses"),
        ({"statuses": ["shipped"]}, "statuses"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"timeout_seconds": 61}, "timeout_seconds"),
        ({"timeout_seconds": "5"}, "timeout_seconds"),
        ({"order_id": "not-an-order"}, "order_id"),
    ],
)
async def test_bad_arguments_are_refused_clearly(shop: Shop, arguments: dict[str, Any], field: str) -> None:
    server, _, _ = shop
    async with Client(server) as client:
        text = error_text(await client.call_tool("wait_for_order", {"order_id": "ord_abc123", **arguments}))
        assert text.startswith("[invalid_input] Invalid arguments for wait_for_order") and field in text


async def test_repeated_statuses_are_accepted(shop: Shop) -> None:
    server, _, _ = shop
    async with Client(server) as client:
        order = await new_order(client, "w-6")
        result = data(
            await client.call_tool(
                "wait_for_order",
                {"order_id": order["order_id"], "statuses": ["pending_payment", "pending_payment"]},
            )
        )
        assert result["reached"] is True and result["order"]["status"] == "pending_payment"


async def test_progress_is_reported_while_waiting(shop: Shop) -> None:
    server, _, services = shop
    services.order_watch._heartbeat = 0.3  # a beat every 0.3 s instead of every 5 s
    beats: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        beats.append((progress, total, message))

    async with Client(server, mode="legacy") as client:
        order = await new_order(client, "w-7")
        result = await client.call_tool(
            "wait_for_order", {"order_id": order["order_id"], "timeout_seconds": 1}, progress_callback=on_progress
        )
        assert data(result)["reached"] is False
    assert beats and all(total == 1 and message and "pending_payment" in message for _, total, message in beats)


# ---------------------------------------------------------------- orders:// subscriptions
class Notifications:
    """Collects notifications/resources/updated URIs from a client's message handler."""

    def __init__(self) -> None:
        self.uris: list[str] = []
        self._arrived = anyio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, mcp_types.ResourceUpdatedNotification):
            self.uris.append(str(message.params.uri))
            self._arrived.set()

    async def next(self, timeout: float = 5) -> str:
        with anyio.fail_after(timeout):
            while not self.uris:
                await self._arrived.wait()
                self._arrived = anyio.Event()
        return self.uris.pop(0)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("mode", "stateless", "offered"),
    [("legacy", False, True), ("auto", False, True), ("legacy", True, False), ("auto", True, True)],
)
async def test_the_subscribe_capability_is_offered_where_it_works(
    settings: Settings, services: Services, mode: str, stateless: bool, offered: bool
) -> None:
    """Legacy: resources/subscribe, except on stateless HTTP (a session per request could never hear
    anything). 2026-07-28: subscriptions/listen, a stream that lives as long as its request."""
    from mcp_checkout.tools.auth import ApiKeyVerifier

    hosted = settings.model_copy(update={"http_stateless": stateless})
    verifier = ApiKeyVerifier(services.access) if stateless else None
    async with Client(build_server(hosted, services=services, token_verifier=verifier), mode=mode) as client:
        resources = client.server_capabilities.resources
        assert resources is not None and bool(resources.subscribe) is offered


async def test_legacy_subscribers_hear_of_payment_and_unsubscribed_ones_do_not(shop: Shop) -> None:
    server, web, services = shop
    heard = Notifications()
    async with Client(server, mode="legacy", message_handler=heard) as client:
        paid, dropped = await new_order(client, "s-1"), await new_order(client, "s-2")
        paid_uri, dropped_uri = f"orders://{paid['order_id']}", f"orders://{dropped['order_id']}"
        url = await link_for(client, paid["order_id"])
        await client.subscribe_resource(paid_uri)
        await client.subscribe_resource(paid_uri)  # twice is once
        await client.subscribe_resource(dropped_uri)
        await client.unsubscribe_resource(dropped_uri)
        assert services.order_watch.watched == 1

        assert (await pay(web, url)).status_code == 303
        paid_at = time.monotonic()
        assert await heard.next() == paid_uri
        latency = time.monotonic() - paid_at
        assert latency < 2, latency
        await client.call_tool("cancel_order", {"order_id": dropped["order_id"]})
        await anyio.sleep(1)  # nothing for the unsubscribed order
        assert heard.uris == []
        body = await client.read_resource(paid_uri)
        assert '"status":"paid"' in body.contents[0].text  # type: ignore[union-attr]
    assert services.order_watch.watched == 0  # the session ended, and with it its subscriptions


async def test_legacy_subscribers_hear_of_changes_made_by_another_process(
    two_processes: tuple[Any, Services, Principal],
) -> None:
    server, other, local = two_processes
    heard = Notifications()
    async with Client(server, mode="legacy", message_handler=heard) as client:
        order = await new_order(client, "s-3")
        await client.subscribe_resource(f"orders://{order['order_id']}")
        await other.orders.cancel(local, order["order_id"], None)
        assert await heard.next() == f"orders://{order['order_id']}"


async def test_subscribing_to_what_the_caller_cannot_see_is_refused(
    seeded: Services, other_buyers_order: tuple[str, Settings]
) -> None:
    theirs, buyer_settings = other_buyers_order
    server = build_server(buyer_settings, services=seeded)
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError, match=r"\[order_not_found\]"):
            await client.subscribe_resource(f"orders://{theirs}")
        with pytest.raises(MCPError, match=r"Only orders://"):
            await client.subscribe_resource("catalog://products/MUG-01")
    async with Client(server) as client:  # 2026-07-28: the same check on subscriptions/listen
        with pytest.raises(MCPError, match=r"\[order_not_found\]"):
            async with client.listen(resource_subscriptions=[f"orders://{theirs}"]):
                pass
    assert seeded.order_watch.watched == 0


async def test_modern_listen_streams_hear_of_order_changes(shop: Shop) -> None:
    """2026-07-28 has no resources/subscribe: a client names the URIs on a subscriptions/listen stream.
    Two streams on one order: the order is watched once, and each stream hears of the payment once."""
    server, web, services = shop
    async with Client(server) as client:
        order = await new_order(client, "s-4")
        url = await link_for(client, order["order_id"])
        uri = f"orders://{order['order_id']}"
        async with (
            client.listen(resource_subscriptions=[uri]) as first,
            client.listen(resource_subscriptions=[uri]) as second,
        ):
            assert services.order_watch.watched == 1
            assert (await pay(web, url)).status_code == 303
            for stream in (first, second):
                with anyio.fail_after(5):
                    assert getattr(await stream.__anext__(), "uri", None) == uri
            with anyio.move_on_after(1) as quiet:
                await first.__anext__()
            assert quiet.cancelled_caught, "a second event for one change"
    assert services.order_watch.watched == 0
