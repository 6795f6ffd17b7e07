"""Shared fixtures: a fresh migrated database per test, on SQLite files and on real PostgreSQL.

PostgreSQL: the server at MCP_CHECKOUT_TEST_PG_URL (default postgres@127.0.0.1:5432/test). The test
run creates its own database beside ``test`` and drops it at the end; each test gets empty tables.
If PostgreSQL is unreachable the PostgreSQL tests FAIL (they never skip silently); set
MCP_CHECKOUT_TEST_BACKENDS=sqlite to run only the SQLite half on purpose.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from mcp_checkout.config import Settings
from mcp_checkout.domain import CatalogRow, utc_now
from mcp_checkout.server import build_server
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.store import migrate
from mcp_checkout.store.catalog_write import upsert_catalog
from mcp_checkout.store.db import Database
from mcp_checkout.store.models import metadata
from tests import support
from tests.support import create_database, drop_database, pg_admin, pg_database_url, postgres_database

BACKENDS = [b.strip() for b in os.environ.get("MCP_CHECKOUT_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
TABLES = tuple(table.name for table in metadata.sorted_tables)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A migrated database of this test run's own on the local PostgreSQL."""
    name = create_database("mcp_checkout_test")
    url = pg_database_url(name)

    async def prepare() -> None:
        db = Database(url)
        await migrate.upgrade(db)
        await db.dispose()

    asyncio.run(prepare())
    yield url
    drop_database(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (faster than migrating every time)."""
    path = tmp_path_factory.mktemp("template") / "checkout.db"

    async def prepare() -> None:
        db = Database(f"sqlite:///{path}")
        await migrate.upgrade(db)
        await db.dispose()

    asyncio.run(prepare())
    return path


@pytest.fixture(scope="session", autouse=True)
def per_user_data_dir_of_the_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The default data directory is per user (platformdirs): point it into the run's temporary folder, so a
    test or server process started without --data-dir never touches the real one."""
    previous = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data-home"))
    yield
    if previous is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = previous


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database for one test."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "checkout.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("pg_url")
    asyncio.run(pg_admin(request.getfixturevalue("pg_empty_tables_sql"), url))
    return url


@pytest.fixture(scope="session")
def pg_empty_tables_sql(pg_url: str) -> str:
    """What ``TRUNCATE <every table> RESTART IDENTITY CASCADE`` does, as DELETEs (children first) and a RESTART of
    each sequence those tables own, in one transaction: same empty tables, same triggers fired (AFTER DELETE
    like AFTER TRUNCATE), same numbering. A TRUNCATE of 34 tables writes and fsyncs new files for each: 1.3-1.9 s
    per test at load 25, against 0.1-0.16 s for this; half of the tests run on PostgreSQL."""

    async def owned_sequences() -> list[str]:
        conn = await asyncpg.connect(support.asyncpg_dsn(pg_url), timeout=10)
        try:
            rows = await conn.fetch(
                "SELECT DISTINCT s.oid::regclass::text FROM pg_class s"
                " JOIN pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i')"
                " JOIN pg_class t ON t.oid = d.refobjid"
                " WHERE s.relkind = 'S' AND t.relname = ANY($1::text[])",
                list(TABLES),
            )
        finally:
            await conn.close()
        return sorted(row[0] for row in rows)

    statements = [f"DELETE FROM {table}" for table in reversed(TABLES)]
    statements += [f"ALTER SEQUENCE {sequence} RESTART" for sequence in asyncio.run(owned_sequences())]
    return "BEGIN; " + "; ".join(statements) + "; COMMIT"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url=database_url, sweep_interval_seconds=3600)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    built = build_services(settings)
    yield built
    await built.close()


@pytest.fixture
def server(settings: Settings) -> Any:
    return build_server(settings)


SMALL_CATALOG = [
    CatalogRow(
        "Stoneware Coffee Mug",
        "MUG-01",
        1800,
        "USD",
        10,
        "A 12 oz stoneware mug, dishwasher safe.",
        None,
        "",
        "Kitchen",
    ),
    CatalogRow(
        "Enamel Camp Mug", "MUG-02", 1450, "USD", 2, "Speckled enamel mug for camping trips.", None, "", "Outdoors"
    ),
    CatalogRow(
        "Merino Wool Socks", "SOCK-M-GRY", 2200, "USD", 50, "Warm merino hiking socks.", "P-SOCK", "M / Grey", "Apparel"
    ),
    CatalogRow(
        "Merino Wool Socks", "SOCK-L-GRY", 2200, "USD", 0, "Warm merino hiking socks.", "P-SOCK", "L / Grey", "Apparel"
    ),
    CatalogRow("Linen Tea Towel", "TOWEL-EU", 900, "EUR", 30, "Stonewashed linen tea towel.", None, "", "Kitchen"),
]


async def seed_catalog(services: Services, rows: list[CatalogRow] | None = None) -> None:
    now = utc_now()
    await services.db.write(lambda conn: upsert_catalog(conn, rows or SMALL_CATALOG, now))


@pytest.fixture
async def seeded(settings: Settings) -> AsyncIterator[Services]:
    """Services over a database holding SMALL_CATALOG."""
    built = build_services(settings)
    await seed_catalog(built)
    yield built
    await built.close()


# ---------------------------------------------------------------- shared by the contract, error, concurrency,
# property, expiry and crash suites (fixtures only; nothing above changes behaviour)
class FakeClock:
    """A clock a test moves by hand: ``build_services(settings, clock=fake_clock)``."""

    def __init__(self, start: Any = None) -> None:
        self.now = start or utc_now()

    def __call__(self) -> Any:
        return self.now

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.now = self.now + timedelta(**delta)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


class DbFacts:
    """What the database holds, read with SQLAlchemy through ``Database.read`` (never through the services)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def stock(self) -> dict[str, tuple[int, int]]:
        """SKU → (stock_on_hand, reserved)."""
        from sqlalchemy import select

        from mcp_checkout.store.models import skus

        rows = await self.db.read(lambda c: c.execute(select(skus.c.sku, skus.c.stock_on_hand, skus.c.reserved)).all())
        return {sku: (on_hand, reserved) for sku, on_hand, reserved in rows}

    async def orders(self) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from mcp_checkout.store.models import orders

        rows = await self.db.read(lambda c: c.execute(select(orders).order_by(orders.c.seq)).mappings().all())
        return [dict(row) for row in rows]

    async def order_items(self) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from mcp_checkout.store.models import order_items

        rows = await self.db.read(lambda c: c.execute(select(order_items)).mappings().all())
        return [dict(row) for row in rows]

    async def order_events(self, order_id: str) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from mcp_checkout.store.models import order_events

        query = select(order_events).where(order_events.c.order_id == order_id).order_by(order_events.c.id)
        rows = await self.db.read(lambda c: c.execute(query).mappings().all())
        return [dict(row) for row in rows]

    async def idempotency_rows(self) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from mcp_checkout.store.models import idempotency_keys

        rows = await self.db.read(lambda c: c.execute(select(idempotency_keys)).mappings().all())
        return [dict(row) for row in rows]

    async def reserved_by_orders(self) -> dict[str, int]:
        """Per SKU, the units held by orders whose stock_state is still 'reserved'."""
        from mcp_checkout.store import orders as order_store

        return await self.db.read(order_store.reserved_quantities_of_open_orders)

    async def assert_stock_consistent(self) -> None:
        """reserved == what reserved orders hold; 0 <= reserved <= stock_on_hand for every SKU."""
        stock = await self.stock()
        held = await self.reserved_by_orders()
        for sku, (on_hand, reserved) in stock.items():
            assert 0 <= reserved <= on_hand, f"{sku}: on_hand={on_hand} reserved={reserved}"
            assert reserved == held.get(sku, 0), f"{sku}: reserved={reserved} but open orders hold {held.get(sku, 0)}"
        assert set(held) <= set(stock)


@pytest.fixture
def db_facts() -> type[DbFacts]:
    """``db_facts(services.db)`` → a :class:`DbFacts` reader."""
    return DbFacts


@pytest.fixture
def small_catalog() -> list[CatalogRow]:
    return list(SMALL_CATALOG)


@pytest.fixture
def prepare_database() -> Any:
    """``await prepare_database(url, rows)``: migrate the database at ``url`` and load ``rows`` (for subprocess tests)."""
    return support.prepare_database


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    """An empty (unmigrated) PostgreSQL database of this test's own, dropped afterwards."""
    with postgres_database("mcp_checkout_fresh") as url:
        yield url


# ---------------------------------------------------------------- Stripe: the real stripe SDK against a local fake
# (tests/fakes/fake_stripe.py). Nothing above changes behaviour.
@pytest.fixture
def fake_stripe(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fake Stripe API on 127.0.0.1 (random port), stopped after the test. The SDK's retry back-off
    (0.5 s minimum) is shortened to keep the suite fast; the retries themselves are unchanged."""
    import stripe._http_client
    from fakes.fake_stripe import FakeStripe

    monkeypatch.setattr(stripe._http_client.HTTPClient, "INITIAL_DELAY", 0.02)
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
def stripe_settings(settings: Settings, fake_stripe: Any) -> Settings:
    """``settings`` with Stripe configured against the fake, and checkout links on http://shop.test."""
    from fakes.fake_stripe import PUBLISHABLE_KEY, WEBHOOK_SECRET
    from pydantic import SecretStr

    return settings.model_copy(
        update={
            "stripe_secret_key": SecretStr(fake_stripe.secret_key),
            "stripe_publishable_key": PUBLISHABLE_KEY,
            "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "stripe_api_base": fake_stripe.url,
            "public_base_url": "http://shop.test",
        }
    )


@pytest.fixture
async def stripe_shop(stripe_settings: Settings, seeded: Services, fake_stripe: Any) -> AsyncIterator[Any]:
    """A :class:`fakes.fake_stripe.StripeShop`: MCP server, web client and services over ``seeded``'s database,
    paying through StripeGateway (built from settings) against ``fake_stripe``. Tests open the MCP client."""
    from fakes.fake_stripe import StripeShop

    shop = StripeShop(stripe_settings, seeded.db, fake_stripe)
    async with shop.web:
        yield shop


# ---------------------------------------------------------------- wait_for_order (integration and e2e)
async def wait_across(client: Any, arguments: dict[str, Any], change: Any) -> tuple[dict[str, Any], float]:
    """Call wait_for_order on ``client``, await ``change()`` half a second into the wait, and return the
    tool's structured result with the seconds between the end of the change and the answer."""
    import time

    import anyio

    outcome: dict[str, Any] = {}

    async def wait() -> None:
        result = await client.call_tool("wait_for_order", arguments)
        assert not result.is_error, result.content[0].text
        outcome["result"], outcome["answered"] = dict(result.structured_content), time.monotonic()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(wait)
        await anyio.sleep(0.5)
        assert "result" not in outcome, "wait_for_order answered before the change"
        await change()
        changed = time.monotonic()
    return outcome["result"], outcome["answered"] - changed
