"""The store's pricing configuration kept in memory per process (service/store_profile.ConfigCache), on SQLite
and PostgreSQL: two Services on one database stand for two server processes, each with its own copy. A
merchant's change made through one of them (a rate, a tax rate, a code, the profile) or written straight into
a table is priced by the very next quote of the other (and an endpoint registered there hears the next
order); an unchanged configuration is not read again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from mcp import Client
from sqlalchemy import Connection, event, func, select, text

from mcp_checkout.config import Settings
from mcp_checkout.domain import Principal
from mcp_checkout.server import build_server
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.service.store_profile import ConfigCache, from_settings
from mcp_checkout.store.db import Database
from mcp_checkout.store.models import webhook_events
from tests.conftest import seed_catalog
from tests.pricing_rows import add_shipping_rate
from tests.support import tool_data

ADDRESS = {"name": "Ada", "line1": "1 Market St", "city": "San Francisco", "region": "CA", "postal_code": "94105",
           "country": "US"}  # fmt: skip


@pytest.fixture
async def two(settings: Settings) -> AsyncIterator[tuple[Services, Services]]:
    """Two sets of services on one database: what two server processes hold."""
    first, second = build_services(settings), build_services(settings)
    await first.prepare_database()
    await seed_catalog(first)
    yield first, second
    await first.close()
    await second.close()


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements run on ``db`` inside the block."""
    seen: list[str] = []
    engine = db.sync_engine if db.dialect == "sqlite" else db.async_engine.sync_engine

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def reads_config(seen: list[str]) -> bool:
    return any(
        table in sql for sql in seen for table in ("FROM shipping_rates", "FROM tax_rates", "FROM store_profile")
    )


async def test_a_change_through_one_process_prices_the_next_quote_of_the_other(
    two: tuple[Services, Services], settings: Settings
) -> None:
    buyer_side, merchant_side = two
    async with (
        Client(build_server(settings, services=buyer_side)) as buyer,
        Client(build_server(settings, services=merchant_side)) as merchant,
    ):
        tool_data(await merchant.call_tool("upsert_shipping_rate", {"rate_id": "ground", "name": "Ground",
                                                                    "countries": ["US"], "price": 599}))  # fmt: skip
        tool_data(await merchant.call_tool("upsert_tax_rate", {"country": "US", "region": "CA", "rate_bps": 725}))
        tool_data(await merchant.call_tool("upsert_discount_code", {"code": "TEN", "kind": "percent", "value": 1000}))
        cart_id = tool_data(await buyer.call_tool("create_cart", {}))["cart_id"]
        tool_data(await buyer.call_tool("add_to_cart", {"cart_id": cart_id, "sku": "MUG-01", "quantity": 1}))
        details = {"cart_id": cart_id, "shipping_address": ADDRESS, "fulfillment_option_id": "ground",
                   "discount_codes": ["TEN"]}  # fmt: skip
        cart = tool_data(await buyer.call_tool("update_cart", details))
        assert (cart["shipping_total"]["amount"], cart["discount_total"]["amount"], cart["ready"]) == (599, 180, True)
        assert cart["tax_total"]["amount"] == round((1800 - 180) * 0.0725)

        with statements(buyer_side.db) as seen:  # nothing changed: the copy in memory, and the stamp read once
            again = tool_data(await buyer.call_tool("get_cart", {"cart_id": cart_id}))
        assert again["total"] == cart["total"] and not reads_config(seen)
        assert sum("store_config_version" in sql for sql in seen) == 1

        tool_data(await merchant.call_tool("upsert_shipping_rate", {"rate_id": "ground", "name": "Ground",
                                                                    "countries": ["US"], "price": 799}))  # fmt: skip
        assert tool_data(await buyer.call_tool("get_cart", {"cart_id": cart_id}))["shipping_total"]["amount"] == 799

        tool_data(await merchant.call_tool("upsert_tax_rate", {"country": "US", "region": "CA", "rate_bps": 1000}))
        assert tool_data(await buyer.call_tool("get_cart", {"cart_id": cart_id}))["tax_total"]["amount"] == 162

        tool_data(await merchant.call_tool("delete_tax_rate", {"country": "US", "region": "CA"}))
        assert tool_data(await buyer.call_tool("get_cart", {"cart_id": cart_id}))["tax_total"]["amount"] == 0

        tool_data(await merchant.call_tool("upsert_discount_code", {"code": "TEN", "kind": "percent", "value": 1000,
                                                                    "active": False}))  # fmt: skip
        off = tool_data(await buyer.call_tool("get_cart", {"cart_id": cart_id}))
        assert off["discount_total"]["amount"] == 0
        assert [m["code"] for m in off["messages"]] == ["discount_code_invalid"]

        tool_data(await merchant.call_tool("update_store_profile", {"prices_include_tax": True}))
        assert tool_data(await buyer.call_tool("get_cart", {"cart_id": cart_id}))["prices_include_tax"] is True

        # the option the buyer picked is gone: refused at once, not after a while
        tool_data(await merchant.call_tool("upsert_shipping_rate", {"rate_id": "ground", "name": "Ground",
                                                                    "countries": ["US"], "price": 799,
                                                                    "active": False}))  # fmt: skip
        result = await buyer.call_tool("update_cart", details)
        assert result.is_error and "fulfillment_option_id" in result.content[0].text


async def test_a_row_written_straight_into_a_table_moves_the_stamp(two: tuple[Services, Services]) -> None:
    """The stamp is moved by triggers: a writer that knows nothing of the cache (a DBA, a script) counts too."""
    buyer_side, _ = two
    cache = ConfigCache(from_settings(buyer_side.settings))
    assert await buyer_side.db.read(lambda conn: cache.get(conn).shipping_rates) == ()
    await buyer_side.db.write(lambda conn: add_shipping_rate(conn, "raw", 100, ["US"]))
    assert [rate.rate_id for rate in await buyer_side.db.read(lambda conn: cache.get(conn).shipping_rates)] == ["raw"]
    uses = "UPDATE discount_codes SET uses = uses + 1"  # counting uses leaves the stamp alone: settings only
    before = await buyer_side.db.read(lambda conn: cache.get(conn).version)
    await buyer_side.db.write(lambda conn: conn.execute(text(uses)))
    assert await buyer_side.db.read(lambda conn: cache.get(conn).version) == before
    await buyer_side.db.write(lambda conn: conn.execute(text("UPDATE store_profile SET locale = 'de-DE'")))
    assert await buyer_side.db.read(lambda conn: cache.get(conn).profile.locale) == "de-DE"


async def test_a_change_rolled_back_after_it_was_read_is_never_priced(two: tuple[Services, Services]) -> None:
    """A transaction that changes a rate, prices with it (so the copy holds it) and rolls back, then another
    change commits: the copy must not take the rolled-back change for the committed one (random stamps)."""
    buyer_side, _ = two
    cache = ConfigCache(from_settings(buyer_side.settings))

    def ghost(conn: Connection) -> None:
        add_shipping_rate(conn, "ghost", 100, ["US"])
        assert [rate.rate_id for rate in cache.get(conn).shipping_rates] == ["ghost"]
        raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        await buyer_side.db.write(ghost)
    await buyer_side.db.write(lambda conn: add_shipping_rate(conn, "real", 200, ["US"]))
    assert [rate.rate_id for rate in await buyer_side.db.read(lambda conn: cache.get(conn).shipping_rates)] == ["real"]


async def test_an_endpoint_added_or_deactivated_in_one_process_counts_for_the_next_order_of_the_other(
    two: tuple[Services, Services],
) -> None:
    """Whether any webhook endpoint is active is kept with the configuration (an order with none queues no
    event and reads nothing more): an endpoint registered elsewhere hears the very next order."""
    buyer_side, merchant_side = two
    merchant = Principal(id="local", kind="merchant", client="test")

    async def order_events(key: str) -> int:
        order = await buyer_side.orders.create(merchant, CreateOrder(idempotency_key=key, items=[("MUG-01", 1)]))
        query = select(func.count()).select_from(webhook_events).where(webhook_events.c.order_id == order.order_id)
        return int(await buyer_side.db.read(lambda conn: conn.execute(query).scalar_one()))

    assert await order_events("before") == 0
    endpoint = await merchant_side.webhooks.create_endpoint(merchant, "https://erp.example/hooks", ["order.created"])
    assert await order_events("registered") == 1
    await merchant_side.webhooks.deactivate_endpoint(merchant, endpoint.endpoint.endpoint_id)
    assert await order_events("deactivated") == 0


async def test_an_update_cart_retry_reads_the_cart_and_its_lines_and_writes_nothing(
    two: tuple[Services, Services], settings: Settings
) -> None:
    """update_cart sends the whole state (safe to retry): a retry that changes nothing reads the cart (the
    configuration's stamp with it) and its lines, and writes nothing; a real change writes it."""
    buyer_side, _ = two
    await buyer_side.db.write(lambda conn: add_shipping_rate(conn, "ground", 599, ["US"]))
    async with Client(build_server(settings, services=buyer_side)) as buyer:
        cart_id = tool_data(await buyer.call_tool("create_cart", {}))["cart_id"]
        tool_data(await buyer.call_tool("add_to_cart", {"cart_id": cart_id, "sku": "MUG-01", "quantity": 1}))
        details = {"cart_id": cart_id, "buyer": {"email": "ada@example.com"}, "shipping_address": ADDRESS,
                   "fulfillment_option_id": "ground"}  # fmt: skip
        first = tool_data(await buyer.call_tool("update_cart", details))
        with statements(buyer_side.db) as seen:
            again = tool_data(await buyer.call_tool("update_cart", details))
        assert again == first and len(seen) == 2 and not any(sql.startswith("UPDATE") for sql in seen), seen
        with statements(buyer_side.db) as seen:
            moved = tool_data(await buyer.call_tool("update_cart", {**details, "buyer": {"email": "bo@example.com"}}))
        assert moved["buyer"]["email"] == "bo@example.com" and sum(sql.startswith("UPDATE") for sql in seen) == 1
        assert tool_data(await buyer.call_tool("get_cart", {"cart_id": cart_id}))["buyer"]["email"] == "bo@example.com"


async def test_a_new_cart_takes_the_default_currency_from_the_cached_configuration(
    two: tuple[Services, Services],
) -> None:
    first, second = two
    await first.carts.create(Principal(id="local", kind="merchant", client="test"))  # caches the configuration
    with statements(first.db) as seen:
        cart = await first.carts.create(Principal(id="local", kind="merchant", client="test"))
    assert cart.currency == "USD" and not reads_config(seen)  # the stamp only, not the profile row
    # The other process changes the profile: the next cart here takes its currency.
    await second.db.write(lambda conn: conn.execute(text("UPDATE store_profile SET default_currency = 'EUR'")))
    assert (await first.carts.create(Principal(id="local", kind="merchant", client="test"))).currency == "EUR"
