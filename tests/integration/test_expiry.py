"""Unpaid orders expire and give their stock back, on an injected clock, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import anyio
import pytest
from mcp import Client

from mcp_checkout.server import build_server
from mcp_checkout.service.container import Services, build_services
from tests.support import error_code
from tests.support import tool_data as data

ITEMS = [{"sku": "MUG-01", "quantity": 3}]


def seconds_apart(iso: str, expected: datetime) -> float:
    return (datetime.fromisoformat(iso) - expected).total_seconds()


@pytest.fixture
def clocked(settings: Any, fake_clock: Any) -> tuple[Any, list[Services]]:
    """A server whose services run on ``fake_clock``; the list receives the services each session builds."""
    built: list[Services] = []

    def factory(s: Any) -> Services:
        services = build_services(s, clock=fake_clock)
        built.append(services)
        return services

    return build_server(settings, services_factory=factory), built


async def test_unpaid_order_expires_releases_stock_and_cannot_be_canceled(
    clocked: tuple[Any, list[Services]], seeded: Services, fake_clock: Any, settings: Any, db_facts: Any
) -> None:
    server, built = clocked
    facts = db_facts(seeded.db)
    ttl = timedelta(minutes=settings.order_ttl_minutes)
    async with Client(server) as client:
        (services,) = built
        order = data(await client.call_tool("create_order", {"idempotency_key": "exp-1", "items": ITEMS}))
        assert order["status"] == "pending_payment"
        created_at = fake_clock.now
        assert order["expires_at"] is not None
        assert abs(seconds_apart(order["expires_at"], created_at + ttl)) < 1
        assert (await facts.stock())["MUG-01"] == (10, 3)

        fake_clock.advance(minutes=settings.order_ttl_minutes - 1)  # not yet
        assert await services.orders.expire_due() == 0
        assert data(await client.call_tool("get_order", {"order_id": order["order_id"]}))["status"] == "pending_payment"

        fake_clock.advance(minutes=2)  # the payment window has closed
        assert await services.orders.expire_due() == 1
        assert await services.orders.expire_due() == 0  # once only

        expired = data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert expired["status"] == "expired"
        assert expired["stock"] == "released"
        assert expired["expires_at"] is None
        last = expired["status_history"][-1]
        assert (last["from_status"], last["to_status"], last["actor"]) == ("pending_payment", "expired", "system")
        assert [h["to_status"] for h in expired["status_history"]] == ["pending_payment", "expired"]
        assert (await facts.stock())["MUG-01"] == (10, 0)
        product = data(await client.call_tool("get_product", {"sku": "MUG-01"}))
        assert product["variants"][0]["available"] == 10

        result = await client.call_tool("cancel_order", {"order_id": order["order_id"]})
        assert error_code(result) == "invalid_state"
        assert "expired" in result.content[0].text
        # The refused cancel changed nothing: no second release, no new history entry.
        assert (await facts.stock())["MUG-01"] == (10, 0)
        assert len(await facts.order_events(order["order_id"])) == 2

        # The key still means that order: retrying it does not buy again.
        replay = data(await client.call_tool("create_order", {"idempotency_key": "exp-1", "items": ITEMS}))
        assert replay["order_id"] == order["order_id"]
        assert replay["replayed"] is True
        assert replay["status"] == "expired"
    assert (await facts.stock())["MUG-01"] == (10, 0)
    await facts.assert_stock_consistent()


async def test_the_servers_own_sweep_expires_orders(
    seeded: Services, settings: Any, fake_clock: Any, db_facts: Any
) -> None:
    fast = settings.model_copy(update={"sweep_interval_seconds": 0.05})
    server = build_server(fast, services_factory=lambda s: build_services(s, clock=fake_clock))
    facts = db_facts(seeded.db)
    async with Client(server) as client:
        order = data(await client.call_tool("create_order", {"idempotency_key": "exp-2", "items": ITEMS}))
        fake_clock.advance(minutes=settings.order_ttl_minutes, seconds=1)
        status = None
        for _ in range(200):  # the sweep runs every 50 ms; give it up to ~10 s on a busy machine
            rows = {row["id"]: row for row in await facts.orders()}
            status = rows[order["order_id"]]["status"]
            if status == "expired":
                break
            await anyio.sleep(0.05)
        assert status == "expired"
    events = await facts.order_events(order["order_id"])
    assert [(e["to_status"], e["actor"]) for e in events] == [("pending_payment", "merchant"), ("expired", "system")]
    assert (await facts.stock())["MUG-01"] == (10, 0)


async def test_get_order_after_the_deadline_reports_it_expired(
    clocked: tuple[Any, list[Services]], seeded: Services, fake_clock: Any, settings: Any, db_facts: Any
) -> None:
    """No sweep has run yet: reading the order must not show a stale pending_payment."""
    server, _ = clocked
    async with Client(server) as client:
        order = data(await client.call_tool("create_order", {"idempotency_key": "exp-3", "items": ITEMS}))
        fake_clock.advance(minutes=settings.order_ttl_minutes + 1)
        seen = data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
    assert seen["status"] == "expired"
    assert seen["status_history"][-1]["actor"] == "system"
    assert (await db_facts(seeded.db).stock())["MUG-01"] == (10, 0)


async def test_cancel_after_the_deadline_is_invalid_state_even_before_the_sweep(
    clocked: tuple[Any, list[Services]], seeded: Services, fake_clock: Any, settings: Any
) -> None:
    server, _ = clocked
    async with Client(server) as client:
        order = data(await client.call_tool("create_order", {"idempotency_key": "exp-4", "items": ITEMS}))
        fake_clock.advance(minutes=settings.order_ttl_minutes + 1)
        result = await client.call_tool("cancel_order", {"order_id": order["order_id"]})
        assert error_code(result) == "invalid_state"
        seen = data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert seen["status"] == "expired"


async def test_idempotency_keys_are_kept_at_least_a_day_and_a_cart_still_orders_once_after_purge(
    clocked: tuple[Any, list[Services]], seeded: Services, fake_clock: Any, settings: Any, db_facts: Any
) -> None:
    assert settings.idempotency_retention_hours >= 24
    server, built = clocked
    facts = db_facts(seeded.db)
    async with Client(server) as client:
        (services,) = built
        direct = {"idempotency_key": "keep-1", "items": [{"sku": "SOCK-M-GRY", "quantity": 1}]}
        first = data(await client.call_tool("create_order", direct))
        cart = data(await client.call_tool("create_cart", {}))
        data(await client.call_tool("add_to_cart", {"cart_id": cart["cart_id"], "sku": "MUG-01", "quantity": 2}))
        by_cart = {"idempotency_key": "keep-2", "cart_id": cart["cart_id"]}
        from_cart = data(await client.call_tool("create_order", by_cart))

        fake_clock.advance(hours=23, minutes=59)
        assert await services.idempotency.purge() == 0
        assert data(await client.call_tool("create_order", direct))["order_id"] == first["order_id"]

        fake_clock.advance(hours=settings.idempotency_retention_hours)
        assert await services.idempotency.purge() == 2
        assert await facts.idempotency_rows() == []
        # The key is gone, but the cart is the natural key: still the same single order.
        again = data(await client.call_tool("create_order", by_cart))
        assert again["order_id"] == from_cart["order_id"]
        assert again["replayed"] is True
    assert len(await facts.orders()) == 2
