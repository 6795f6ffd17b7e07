"""Exactly-once and no-oversell under concurrency, on SQLite and PostgreSQL.

Many tasks start at once (anyio task groups), through the service and through in-memory MCP clients;
the assertions are on what the database holds afterwards, never on timing.
"""

from __future__ import annotations

from collections import Counter
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import anyio
import pytest
from mcp import Client

from mcp_checkout.domain import CatalogRow, Principal, utc_now
from mcp_checkout.errors import CheckoutError
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.service.views import OrderOut
from mcp_checkout.store.catalog_write import upsert_catalog

LOCAL = Principal(id="local", kind="merchant", client="pytest")
LIMITED = CatalogRow("Limited Print", "PRINT-LTD", 5000, "USD", 10, "A signed print; only ten exist.")
PLENTY = CatalogRow("Sticker", "STICKER", 100, "USD", 10_000, "A vinyl sticker.")


async def add_rows(services: Services, *rows: CatalogRow) -> None:
    now = utc_now()
    await services.db.write(lambda conn: upsert_catalog(conn, list(rows), now))


def order_command(key: str, items: list[dict[str, Any]] | None = None, **fields: Any) -> CreateOrder:
    """A CreateOrder as the tool builds it, ``sent`` naming the fields given."""
    sent = {"idempotency_key", *fields, *(["items"] if items is not None else [])}
    return CreateOrder(
        idempotency_key=key,
        sent=frozenset(sent),
        cart_id=fields.get("cart_id"),
        items=[(item["sku"], item["quantity"]) for item in items] if items is not None else None,
        merchant_reference_id=fields.get("merchant_reference_id"),
    )


async def via_service(services: Services, cmd: CreateOrder) -> OrderOut | str:
    """The order, or the error code."""
    try:
        return await services.orders.create(LOCAL, cmd)
    except CheckoutError as exc:
        return exc.code


def via_result(result: Any) -> dict[str, Any] | str:
    if result.is_error:
        text = result.content[0].text
        assert text.startswith("["), text
        return text[1 : text.index("]")]
    return dict(result.structured_content)


async def run_all(calls: list[Any]) -> list[Any]:
    """Start every call at once; results in call order."""
    results: list[Any] = [None] * len(calls)

    async def one(index: int) -> None:
        results[index] = await calls[index]()

    async with anyio.create_task_group() as tasks:
        for index in range(len(calls)):
            tasks.start_soon(one, index)
    return results


@pytest.fixture
def server(settings: Any) -> Any:
    """Each in-memory client runs the server's lifespan, i.e. is one "process" with its own pool. PostgreSQL
    allows 100 connections by default; with the default pool (10 + 20 overflow) four busy processes would
    exhaust it, so these processes use 5 + 5, as a merchant running several would."""
    from mcp_checkout.server import build_server

    return build_server(settings.model_copy(update={"db_pool_size": 5, "db_max_overflow": 5}))


async def clients(stack: AsyncExitStack, server: Any, count: int) -> list[Client]:
    """``count`` in-memory MCP clients of one server (each its own session and services), both modes."""
    modes = ["auto", "legacy"]
    return [await stack.enter_async_context(Client(server, mode=modes[i % 2])) for i in range(count)]


# ---------------------------------------------------------------- one key, many callers
async def test_fifty_concurrent_calls_with_one_key_through_the_service(seeded: Services, db_facts: Any) -> None:
    items = [{"sku": "MUG-01", "quantity": 2}]
    results = await run_all([lambda: via_service(seeded, order_command("same-key", items)) for _ in range(50)])

    orders = [r for r in results if isinstance(r, OrderOut)]
    errors = Counter(r for r in results if isinstance(r, str))
    assert set(errors) <= {"idempotency_in_flight"}, errors
    assert len({o.order_id for o in orders}) == 1
    assert sum(not o.replayed for o in orders) == 1

    facts = db_facts(seeded.db)
    in_db = await facts.orders()
    assert [o["id"] for o in in_db] == [orders[0].order_id]
    assert (await facts.stock())["MUG-01"] == (10, 2)
    keys = await facts.idempotency_rows()
    assert [(k["key"], k["status"], k["resource_id"]) for k in keys] == [("same-key", "completed", in_db[0]["id"])]
    await facts.assert_stock_consistent()


async def test_fifty_concurrent_calls_with_one_key_through_mcp_clients(
    server: Any, seeded: Services, db_facts: Any
) -> None:
    args = {"idempotency_key": "same-key", "items": [{"sku": "MUG-01", "quantity": 3}]}
    async with AsyncExitStack() as stack:
        connected = await clients(stack, server, 5)
        calls = [lambda c=c: c.call_tool("create_order", args) for c in connected for _ in range(10)]
        results = [via_result(r) for r in await run_all(calls)]

    orders = [r for r in results if isinstance(r, dict)]
    errors = Counter(r for r in results if isinstance(r, str))
    assert set(errors) <= {"idempotency_in_flight"}, errors
    assert len(orders) >= 1
    assert len({o["order_id"] for o in orders}) == 1
    assert sum(not o["replayed"] for o in orders) == 1

    facts = db_facts(seeded.db)
    assert [o["id"] for o in await facts.orders()] == [orders[0]["order_id"]]
    assert (await facts.stock())["MUG-01"] == (10, 3)
    await facts.assert_stock_consistent()

    # After the burst every retry with the key is a replay of that one order.
    async with Client(server) as client:
        again = via_result(await client.call_tool("create_order", args))
    assert isinstance(again, dict)
    assert again["order_id"] == orders[0]["order_id"]
    assert again["replayed"] is True


# ---------------------------------------------------------------- no oversell
async def test_hundred_orders_race_for_ten_units_through_the_service(seeded: Services, db_facts: Any) -> None:
    await add_rows(seeded, LIMITED)
    items = [{"sku": "PRINT-LTD", "quantity": 1}]
    results = await run_all([lambda i=i: via_service(seeded, order_command(f"k-{i}", items)) for i in range(100)])

    orders = [r for r in results if isinstance(r, OrderOut)]
    errors = Counter(r for r in results if isinstance(r, str))
    assert len(orders) == 10
    assert errors == {"insufficient_stock": 90}
    assert all(not o.replayed for o in orders)

    facts = db_facts(seeded.db)
    assert len(await facts.orders()) == 10
    assert (await facts.stock())["PRINT-LTD"] == (10, 10)
    await facts.assert_stock_consistent()
    # Failed attempts did not keep their keys.
    assert len(await facts.idempotency_rows()) == 10


async def test_hundred_orders_race_for_ten_units_through_mcp_clients(
    server: Any, seeded: Services, db_facts: Any
) -> None:
    await add_rows(seeded, LIMITED)
    async with AsyncExitStack() as stack:
        connected = await clients(stack, server, 4)
        calls = [
            lambda c=connected[i % 4], i=i: c.call_tool(
                "create_order", {"idempotency_key": f"k-{i}", "items": [{"sku": "PRINT-LTD", "quantity": 1}]}
            )
            for i in range(100)
        ]
        results = [via_result(r) for r in await run_all(calls)]

    orders = [r for r in results if isinstance(r, dict)]
    assert len(orders) == 10
    assert Counter(r for r in results if isinstance(r, str)) == {"insufficient_stock": 90}
    facts = db_facts(seeded.db)
    assert len(await facts.orders()) == 10
    assert (await facts.stock())["PRINT-LTD"] == (10, 10)
    await facts.assert_stock_consistent()


async def test_mixed_quantities_never_oversell(seeded: Services, db_facts: Any) -> None:
    """Orders of 1-4 units race for 10: whatever wins, reserved is what the orders hold and never above 10."""
    await add_rows(seeded, LIMITED)
    sizes = [1 + (i % 4) for i in range(40)]
    results = await run_all(
        [
            lambda i=i: via_service(seeded, order_command(f"m-{i}", [{"sku": "PRINT-LTD", "quantity": sizes[i]}]))
            for i in range(40)
        ]
    )
    won = [r for r in results if isinstance(r, OrderOut)]
    assert {r for r in results if isinstance(r, str)} <= {"insufficient_stock"}
    held = sum(o.lines[0].quantity for o in won)
    assert 7 <= held <= 10  # once fewer than 4 are left only some sizes fit, but at least 7 always sell
    facts = db_facts(seeded.db)
    assert (await facts.stock())["PRINT-LTD"] == (10, held)
    await facts.assert_stock_consistent()


# ---------------------------------------------------------------- one cart, many keys
async def _cart_with(services: Services, sku: str, quantity: int) -> str:
    cart = await services.carts.create(LOCAL, "USD")
    await services.carts.add(LOCAL, cart.cart_id, sku, quantity)
    return cart.cart_id


async def test_one_cart_many_keys_through_the_service(seeded: Services, db_facts: Any) -> None:
    cart_id = await _cart_with(seeded, "MUG-01", 3)
    references = ["ref-a" if i % 2 else "ref-b" for i in range(30)]
    results = await run_all(
        [
            lambda i=i: via_service(
                seeded, order_command(f"cart-k-{i}", cart_id=cart_id, merchant_reference_id=references[i])
            )
            for i in range(30)
        ]
    )
    orders = [r for r in results if isinstance(r, OrderOut)]
    assert len({o.order_id for o in orders}) == 1
    winner = orders[0]
    assert sum(not o.replayed for o in orders) == 1
    for reference, result in zip(references, results, strict=True):
        if reference == winner.merchant_reference_id:
            assert isinstance(result, OrderOut), result  # same details: the cart's one order, replayed
        else:
            assert result == "cart_already_ordered"

    facts = db_facts(seeded.db)
    assert [o["id"] for o in await facts.orders()] == [winner.order_id]
    assert (await facts.stock())["MUG-01"] == (10, 3)
    await facts.assert_stock_consistent()


async def test_one_cart_many_keys_through_mcp_clients(server: Any, seeded: Services, db_facts: Any) -> None:
    cart_id = await _cart_with(seeded, "SOCK-M-GRY", 4)
    async with AsyncExitStack() as stack:
        connected = await clients(stack, server, 3)
        calls = [
            lambda c=connected[i % 3], i=i: c.call_tool(
                "create_order", {"idempotency_key": f"cart-k-{i}", "cart_id": cart_id}
            )
            for i in range(30)
        ]
        results = [via_result(r) for r in await run_all(calls)]
    assert all(isinstance(r, dict) for r in results), Counter(r for r in results if isinstance(r, str))
    assert len({r["order_id"] for r in results}) == 1
    assert sum(not r["replayed"] for r in results) == 1
    facts = db_facts(seeded.db)
    assert len(await facts.orders()) == 1
    assert (await facts.stock())["SOCK-M-GRY"] == (50, 4)
    await facts.assert_stock_consistent()


# ---------------------------------------------------------------- cancel against the expiry sweep
async def test_cancel_racing_the_expiry_sweep_releases_stock_once(
    seeded: Services, settings: Any, db_facts: Any
) -> None:
    await add_rows(seeded, PLENTY)
    created = [
        await seeded.orders.create(LOCAL, order_command(f"x-{i}", [{"sku": "STICKER", "quantity": 1 + i % 3}]))
        for i in range(12)
    ]
    facts = db_facts(seeded.db)
    assert (await facts.stock())["STICKER"][1] == sum(1 + i % 3 for i in range(12))

    later = utc_now() + timedelta(minutes=settings.order_ttl_minutes + 5)
    # Two "processes" sweeping on a clock past every deadline, while buyers cancel the same orders.
    sweepers = [build_services(settings, clock=lambda: later) for _ in range(2)]
    try:

        async def cancel(order_id: str) -> str:
            try:
                return (await seeded.orders.cancel(LOCAL, order_id, "buyer changed their mind")).status
            except CheckoutError as exc:
                return exc.code

        async def sweep(sweeper: Services) -> int:
            return await sweeper.orders.expire_due()

        calls: list[Any] = [lambda o=o: cancel(o.order_id) for o in created]
        calls += [lambda s=s: sweep(s) for s in sweepers for _ in range(3)]
        results = await run_all(calls)
    finally:
        for sweeper in sweepers:
            await sweeper.close()

    cancel_results = results[: len(created)]
    expired_by_sweeps = sum(results[len(created) :])
    assert set(cancel_results) <= {"canceled", "invalid_state"}, cancel_results
    assert cancel_results.count("invalid_state") == expired_by_sweeps

    rows = {row["id"]: row for row in await facts.orders()}
    for order, outcome in zip(created, cancel_results, strict=True):
        row = rows[order.order_id]
        assert row["status"] == ("canceled" if outcome == "canceled" else "expired")
        assert row["stock_state"] == "released"
        events = await facts.order_events(order.order_id)
        assert [e["to_status"] for e in events] == ["pending_payment", row["status"]]
    assert (await facts.stock())["STICKER"] == (10_000, 0)
    await facts.assert_stock_consistent()


@pytest.mark.parametrize("rounds", [3])
async def test_cancel_is_idempotent_under_concurrent_retries(seeded: Services, db_facts: Any, rounds: int) -> None:
    order = await seeded.orders.create(LOCAL, order_command("c-1", [{"sku": "MUG-01", "quantity": 4}]))
    for _ in range(rounds):
        results = await run_all([lambda: seeded.orders.cancel(LOCAL, order.order_id, None) for _ in range(10)])
        assert {r.status for r in results} == {"canceled"}
    facts = db_facts(seeded.db)
    assert (await facts.stock())["MUG-01"] == (10, 0)
    assert [e["to_status"] for e in await facts.order_events(order.order_id)] == ["pending_payment", "canceled"]
