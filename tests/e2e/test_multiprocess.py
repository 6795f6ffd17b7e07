"""Several real `mcp-checkout serve --http` processes on ONE database, driven over HTTP by concurrent clients.

PostgreSQL (a fresh database of this module's own, migrated once with `mcp-checkout migrate`, catalog from
`mcp-checkout import-catalog`, keys from `mcp-checkout keys create`):
- 300 create_order calls with 30 idempotency keys, spread over 3 processes → exactly 30 orders, one order_id
  per key, exactly one call per key created it;
- 200 single-unit orders against stock 50 → exactly 50 orders, the rest insufficient_stock, never oversold;
- a checkout link opened through two processes at once → one buyer session (and one payment attempt);
- the per-key rate limit holds across processes;
- SIGKILL of one of 3 processes mid-burst: nothing acknowledged is lost, no stock leaks, retries on a
  surviving process return the original orders;
- `serve --http --workers 2`: stateless /mcp answers legacy and default-mode clients; /readyz is 200.
SQLite: the exactly-once test with 2 processes on one file.

The database is read directly (asyncpg / sqlite3), never through the server.
"""

from __future__ import annotations

import contextlib
import random
import re
import sqlite3
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from mcp import Client
from servers import Server, cli, cli_parallel, pgbouncer, running, server_env, write_catalog

from tests.support import asyncpg_dsn, error_body, error_code, postgres_database, tool_data

pytestmark = pytest.mark.timeout(240)

STOCK = 100_000
SCARCE = 50
RATE_LIMIT = 12
CATALOG = [
    ("Exactly Once Mug", "EO-MUG", "12.00", STOCK),
    ("Exactly Once Socks", "EO-SOCK", "9.00", STOCK),
    ("Scarce Lamp", "SCARCE-LAMP", "40.00", SCARCE),
    ("Pooled Scarce Lamp", "POOLED-LAMP", "40.00", SCARCE),
    ("Link Test Towel", "LINK-TOWEL", "7.00", STOCK),
    ("Crash Mug", "KILL-MUG", "11.00", STOCK),
    ("Crash Socks", "KILL-SOCK", "8.00", STOCK),
    ("Worker Mug", "WORK-MUG", "10.00", STOCK),
]
IN_FLIGHT = "idempotency_in_flight"


# ---------------------------------------------------------------- reading the database directly
class Facts:
    """What the database holds. ``rows(sql)`` with literal values only (the tests make them up)."""

    async def rows(self, sql: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def orders(self, reference_prefix: str) -> list[dict[str, Any]]:
        return await self.rows(
            "SELECT id, merchant_reference_id, status, stock_state FROM orders "
            f"WHERE merchant_reference_id LIKE '{reference_prefix}%'"
        )

    async def stock(self) -> dict[str, tuple[int, int]]:
        return {r["sku"]: (r["stock_on_hand"], r["reserved"]) for r in await self.rows("SELECT * FROM skus")}

    async def assert_stock_consistent(self) -> None:
        """Per SKU: 0 <= reserved <= on hand, and reserved == the units orders still holding stock hold."""
        held = {
            r["sku"]: int(r["held"])
            for r in await self.rows(
                "SELECT i.sku AS sku, SUM(i.quantity) AS held FROM order_items i JOIN orders o ON o.id = i.order_id "
                "WHERE o.stock_state = 'reserved' GROUP BY i.sku"
            )
        }
        for sku, (on_hand, reserved) in (await self.stock()).items():
            assert 0 <= reserved <= on_hand, f"{sku}: on_hand={on_hand} reserved={reserved}"
            assert reserved == held.get(sku, 0), f"{sku}: reserved={reserved} but reserved orders hold {held.get(sku)}"

    async def idempotency(self, key_prefix: str) -> list[dict[str, Any]]:
        return await self.rows(f"SELECT key, status, resource_id FROM idempotency_keys WHERE key LIKE '{key_prefix}%'")


class PgFacts(Facts):
    def __init__(self, url: str) -> None:
        self.dsn = asyncpg_dsn(url)

    async def rows(self, sql: str) -> list[dict[str, Any]]:
        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            return [dict(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()


class SqliteFacts(Facts):
    def __init__(self, path: Path) -> None:
        self.path = path

    async def rows(self, sql: str) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as db:
                db.row_factory = sqlite3.Row
                return [dict(row) for row in db.execute(sql).fetchall()]

        return await anyio.to_thread.run_sync(read)


# ---------------------------------------------------------------- fixtures: one database, several processes
@dataclass
class Shop:
    env: dict[str, str]
    facts: Facts
    logs: Path
    keys: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def pg_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """One fresh PostgreSQL database: migrated once, the catalog imported, two buyer keys."""
    home = tmp_path_factory.mktemp("pg_shop")
    with postgres_database() as url:
        env = server_env(
            {
                "MCP_CHECKOUT_DATABASE_URL": url,
                "MCP_CHECKOUT_DATA_DIR": str(home),
                "MCP_CHECKOUT_IDEMPOTENCY_LEASE_SECONDS": "2",  # claims of a killed process free up quickly
                "MCP_CHECKOUT_RATE_LIMIT_PER_MINUTE": "100000",
            }
        )
        cli(env, "migrate")
        names = ["agents", "rate"]  # "rate" only for the rate-limit test: its budget is its own
        done = cli_parallel(
            env,
            ["import-catalog", str(write_catalog(home / "catalog.csv", CATALOG))],
            *(["keys", "create", "--name", name, "--scope", "buyer"] for name in names),
        )
        keys = {name: result.stdout.strip() for name, result in zip(names, done[1:], strict=True)}
        yield Shop(env, PgFacts(url), home / "logs", keys)


@pytest.fixture(scope="module")
def trio(pg_shop: Shop) -> Iterator[list[Server]]:
    """Three `serve --http` processes on different ports, all on the module's PostgreSQL database."""
    with running(pg_shop.env, pg_shop.logs, 3, name="trio") as servers:
        yield servers


@pytest.fixture(scope="module")
def pooled_trio(pg_shop: Shop) -> Iterator[list[Server]]:
    """Three processes on the same database through one transaction-pooling PgBouncer, as several machines
    would share it (MCP_CHECKOUT_DATABASE_POOLER=pgbouncer)."""
    with pgbouncer(pg_shop.env["MCP_CHECKOUT_DATABASE_URL"]) as pooled_url:
        env = pg_shop.env | {"MCP_CHECKOUT_DATABASE_URL": pooled_url, "MCP_CHECKOUT_DATABASE_POOLER": "pgbouncer"}
        with running(env, pg_shop.logs, 3, name="pooled") as servers:
            yield servers


# ---------------------------------------------------------------- driving several processes at once
Job = Callable[[Client], Awaitable[None]]


async def drive(
    server: Server, key: str, jobs: Sequence[Job], concurrency: int, mode: str = "legacy", *, list_first: bool = False
) -> None:
    """Run ``jobs`` against ``server`` over one MCP client, ``concurrency`` at a time, in order of start.
    ``list_first``: call tools/list once before the jobs, as agents do (the client then knows every tool's
    output schema and sends no tools/list of its own in between)."""
    limiter = anyio.CapacityLimiter(concurrency)

    async def run(job: Job, client: Client) -> None:
        async with limiter:
            await job(client)

    async with server.client(key, mode) as client, anyio.create_task_group() as tasks:
        if list_first:
            await client.list_tools()
        for job in jobs:
            tasks.start_soon(run, job, client)


async def call_until_settled(client: Client, tool: str, arguments: dict[str, Any], retries: Counter[str]) -> Any:
    """Call, and while the answer is idempotency_in_flight, wait a moment and call again with the same key."""
    deadline = time.monotonic() + 45
    while True:
        result = await client.call_tool(tool, arguments)
        if error_code(result) != IN_FLIGHT or time.monotonic() > deadline:
            return result
        retries[IN_FLIGHT] += 1
        await anyio.sleep(0.1 + random.random() * 0.2)


def order_arguments(key: str, index: int) -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "items": [{"sku": "EO-MUG", "quantity": 1 + index % 3}, {"sku": "EO-SOCK", "quantity": 1}],
        "merchant_reference_id": key,
    }


async def exactly_once(
    servers: Sequence[Server], api_key: str, facts: Facts, keys: int = 30, calls_per_key: int = 10
) -> None:
    """``keys`` times ``calls_per_key`` identical create_order calls, each key's calls spread over every process
    and issued together → exactly ``keys`` orders, one order_id per key, exactly one creator per key."""
    run = f"eo-{uuid.uuid4().hex[:8]}-"
    jobs: list[list[Job]] = [[] for _ in servers]
    answers: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    errors: list[str] = []
    retries: Counter[str] = Counter()

    def job(key: str, arguments: dict[str, Any]) -> Job:
        async def call(client: Client) -> None:
            result = await call_until_settled(client, "create_order", arguments, retries)
            if result.is_error:
                errors.append(f"{key}: {result.content[0].text[:300]}")
            else:
                answers[key].append((result.structured_content["order_id"], result.structured_content["replayed"]))

        return call

    for k in range(keys):
        key = f"{run}{k:02d}"
        for r in range(calls_per_key):
            jobs[(k + r) % len(servers)].append(job(key, order_arguments(key, k)))
    with anyio.fail_after(150):
        async with anyio.create_task_group() as tasks:
            for server, server_jobs in zip(servers, jobs, strict=True):
                tasks.start_soon(drive, server, api_key, server_jobs, 12)

    print(f"exactly once: {keys} keys x {calls_per_key} calls, {retries[IN_FLIGHT]} in-flight retries")
    assert errors == [], f"{len(errors)} calls failed (after {retries[IN_FLIGHT]} in-flight retries): {errors[:5]}"
    assert len(answers) == keys and all(len(a) == calls_per_key for a in answers.values())
    for key, seen in answers.items():
        assert len({order_id for order_id, _ in seen}) == 1, f"{key} answered different orders: {seen}"
        assert sum(not replayed for _, replayed in seen) == 1, f"{key}: not exactly one creating call: {seen}"
    orders = await facts.orders(run)
    assert len(orders) == keys, f"{len(orders)} orders in the database for {keys} idempotency keys"
    assert {o["merchant_reference_id"]: o["id"] for o in orders} == {k: seen[0][0] for k, seen in answers.items()}
    records = await facts.idempotency(run)
    assert len(records) == keys and {r["status"] for r in records} == {"completed"}
    await facts.assert_stock_consistent()


# ---------------------------------------------------------------- PostgreSQL, 3 processes
async def test_300_create_order_calls_with_30_keys_make_exactly_30_orders_over_3_processes(
    pg_shop: Shop, trio: list[Server]
) -> None:
    await exactly_once(trio, pg_shop.keys["agents"], pg_shop.facts)


async def sell_scarce(pg_shop: Shop, trio: Sequence[Server], sku: str) -> None:
    """200 single-unit orders for ``sku`` (stock SCARCE) spread over the processes → exactly SCARCE sold."""
    run = f"os-{uuid.uuid4().hex[:8]}-"
    outcomes: Counter[str] = Counter()
    available_seen: list[int] = []
    jobs: list[list[Job]] = [[] for _ in trio]

    def job(index: int) -> Job:
        key = f"{run}{index:03d}"
        arguments = {
            "idempotency_key": key,
            "items": [{"sku": sku, "quantity": 1}],
            "merchant_reference_id": key,
        }

        async def call(client: Client) -> None:
            result = await call_until_settled(client, "create_order", arguments, Counter())
            outcomes[error_code(result) or "ordered"] += 1

        return call

    for index in range(200):
        jobs[index % len(trio)].append(job(index))

    async def watch_stock(stop: anyio.Event) -> None:
        while not stop.is_set():
            on_hand, reserved = (await pg_shop.facts.stock())[sku]
            available_seen.append(on_hand - reserved)
            await anyio.sleep(0.05)

    with anyio.fail_after(120):
        async with anyio.create_task_group() as watcher:
            stop = anyio.Event()
            watcher.start_soon(watch_stock, stop)
            async with anyio.create_task_group() as tasks:
                for server, server_jobs in zip(trio, jobs, strict=True):
                    tasks.start_soon(drive, server, pg_shop.keys["agents"], server_jobs, 15)
            stop.set()

    assert outcomes == {"ordered": SCARCE, "insufficient_stock": 200 - SCARCE}, outcomes
    assert available_seen and min(available_seen) >= 0
    orders = await pg_shop.facts.orders(run)
    assert len(orders) == SCARCE and {o["stock_state"] for o in orders} == {"reserved"}
    assert (await pg_shop.facts.stock())[sku] == (SCARCE, SCARCE)
    await pg_shop.facts.assert_stock_consistent()


async def test_200_single_unit_orders_against_stock_50_sell_exactly_50_over_3_processes(
    pg_shop: Shop, trio: list[Server]
) -> None:
    await sell_scarce(pg_shop, trio, "SCARCE-LAMP")


# ---------------------------------------------------------------- PostgreSQL behind PgBouncer (transaction pooling)
async def test_exactly_once_holds_through_pgbouncer_in_transaction_pooling(
    pg_shop: Shop, pooled_trio: list[Server]
) -> None:
    await exactly_once(pooled_trio, pg_shop.keys["agents"], pg_shop.facts)


async def test_no_oversell_through_pgbouncer_in_transaction_pooling(pg_shop: Shop, pooled_trio: list[Server]) -> None:
    await sell_scarce(pg_shop, pooled_trio, "POOLED-LAMP")


async def test_a_checkout_link_opened_through_two_processes_at_once_makes_one_session(
    pg_shop: Shop, trio: list[Server]
) -> None:
    links: list[tuple[str, str, str]] = []  # (link_id, order_id, token)
    async with trio[0].client(pg_shop.keys["agents"]) as client:
        for index in range(4):
            link = tool_data(
                await client.call_tool(
                    "create_checkout_link",
                    {"sku": "LINK-TOWEL", "quantity": 1, "idempotency_key": f"link-{uuid.uuid4().hex[:8]}-{index}"},
                )
            )
            links.append((link["link_id"], link["order_id"], link["url"].rsplit("/", 1)[1]))
    pages: dict[str, list[tuple[int, Any]]] = defaultdict(list)

    async def open_page(web: httpx.AsyncClient, server: Server, token: str) -> None:
        response = await web.get(f"{server.base}/checkout/{token}", headers={"accept": "application/json"})
        pages[token].append((response.status_code, response.json()))

    with anyio.fail_after(90):
        async with httpx.AsyncClient(timeout=30) as web:
            for _, _, token in links:  # each link: 8 opens on each of two processes, all at once
                async with anyio.create_task_group() as tasks:
                    for _ in range(8):
                        tasks.start_soon(open_page, web, trio[1], token)
                        tasks.start_soon(open_page, web, trio[2], token)

    for link_id, order_id, token in links:
        answers = pages[token]
        assert {status for status, _ in answers} == {200}, answers[:3]
        assert len({body["session_id"] for _, body in answers}) == 1, f"{link_id}: several sessions answered"
        sessions = await pg_shop.facts.rows(f"SELECT id FROM checkout_sessions WHERE link_id = '{link_id}'")
        assert [row["id"] for row in sessions] == [answers[0][1]["session_id"]]
        payments = await pg_shop.facts.rows(f"SELECT attempt FROM payments WHERE order_id = '{order_id}'")
        assert len(payments) == 1, f"{order_id}: {len(payments)} payment attempts for one checkout"


async def test_the_rate_limit_of_a_key_holds_across_processes(pg_shop: Shop) -> None:
    """RATE_LIMIT calls per key per minute in all, whichever process answers. The server counts in minute
    windows of the wall clock; a burst that straddles a boundary may use two windows' budgets, so the
    budget is checked per window against the database's own counts and against the client's clock."""
    # Small pools: this module's other servers (the trio, PgBouncer's pool) still hold connections meanwhile, and
    # three default pools on top of them could pass PostgreSQL's 100 ("too many clients": a 503 at the key check).
    env = pg_shop.env | {
        "MCP_CHECKOUT_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
        "MCP_CHECKOUT_DB_POOL_SIZE": "4",
        "MCP_CHECKOUT_DB_MAX_OVERFLOW": "2",
    }
    key = pg_shop.keys["rate"]
    per_process = RATE_LIMIT  # 3 times the budget offered in total
    outcomes: list[tuple[float, float, str | None, Any]] = []  # (sent, answered, error code, result)

    def job() -> Job:
        async def call(client: Client) -> None:
            sent = time.time()
            result = await client.call_tool("search_catalog", {"query": "mug"})
            outcomes.append((sent, time.time(), error_code(result), result))

        return call

    with running(env, pg_shop.logs, 3, name="rate") as servers, anyio.fail_after(90):
        async with anyio.create_task_group() as tasks:
            for server in servers:
                tasks.start_soon(
                    partial(drive, list_first=True), server, key, [job() for _ in range(per_process)], per_process
                )

    listed = len(servers)  # one tools/list per client, first: every request counts, not only tool calls
    codes = Counter(code for _, _, code, _ in outcomes)
    assert set(codes) <= {None, "rate_limited"}, codes
    successes = codes[None]
    windows = {
        int(row["window_start"]): int(row["calls"])
        for row in await pg_shop.facts.rows(
            f"SELECT window_start, calls FROM rate_limit_windows WHERE key_id = 'key:{key.split('_')[2]}'"
        )
    }
    total = 3 * per_process + listed
    assert sum(windows.values()) == total, f"not every request was counted in the shared windows: {windows}"
    assert successes + listed == sum(min(calls, RATE_LIMIT) for calls in windows.values()), (codes, windows)
    client_windows = {int(t // 60) for sent, answered, _, _ in outcomes for t in (sent, answered)}
    assert successes + listed <= RATE_LIMIT * len(client_windows), (codes, client_windows)
    if len(client_windows) == 1:  # the usual case: the whole burst inside one minute
        assert successes + listed == RATE_LIMIT
    limited = [result for _, _, code, result in outcomes if code == "rate_limited"]
    assert limited and all(error_body(r)["retry_after_seconds"] >= 1 for r in limited)


async def test_kill_9_of_one_process_mid_burst_loses_nothing_and_retries_get_the_original_orders(
    pg_shop: Shop,
) -> None:
    run = f"kill-{uuid.uuid4().hex[:8]}-"
    burst, kill_after = 90, 15
    calls = {
        f"{run}{i:03d}": {
            "idempotency_key": f"{run}{i:03d}",
            "items": [{"sku": "KILL-MUG", "quantity": 1 + i % 3}]
            + ([{"sku": "KILL-SOCK", "quantity": 2}] if i % 4 == 0 else []),
            "merchant_reference_id": f"{run}{i:03d}",
        }
        for i in range(burst)
    }
    acknowledged: dict[str, str] = {}
    other_errors: list[str] = []
    enough = anyio.Event()

    def job(key: str) -> Job:
        async def call(client: Client) -> None:
            result = await client.call_tool("create_order", calls[key])
            if result.is_error:
                if error_code(result) != IN_FLIGHT:
                    other_errors.append(result.content[0].text[:300])
                return
            acknowledged[key] = result.structured_content["order_id"]
            if len(acknowledged) >= kill_after:
                enough.set()

        return call

    keys = list(calls)
    with running(pg_shop.env, pg_shop.logs, 3, name="kill") as servers:
        victim, survivors = servers[0], servers[1:]

        killed = anyio.Event()

        async def drive_victim() -> None:
            try:
                await drive(victim, pg_shop.keys["agents"], [job(k) for k in keys[0::3]], 8)
            except Exception:  # its connection died under the client: its calls in flight are unacknowledged
                if not killed.is_set():
                    raise

        async def kill_when_enough() -> None:
            await enough.wait()
            killed.set()
            victim.sigkill()

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(kill_when_enough)
                tasks.start_soon(drive_victim)
                for offset, server in enumerate(survivors, start=1):
                    tasks.start_soon(drive, server, pg_shop.keys["agents"], [job(k) for k in keys[offset::3]], 8)
        assert not victim.alive() and all(server.alive() for server in survivors)
        assert other_errors == [], other_errors[:5]
        lost_with_the_victim = len([k for k in keys[0::3] if k not in acknowledged])
        assert lost_with_the_victim > 0, "the kill came after the burst: nothing was in flight"

        # Every acknowledged order is in the database, and reserved stock matches the orders holding it.
        in_db = {row["merchant_reference_id"]: row["id"] for row in await pg_shop.facts.orders(run)}
        assert {k: in_db.get(k) for k in acknowledged} == acknowledged
        await pg_shop.facts.assert_stock_consistent()

        # Retrying every key on a survivor: the original order for acknowledged ones, one order for the rest.
        retried: dict[str, dict[str, Any]] = {}
        retries: Counter[str] = Counter()

        def retry(key: str) -> Job:
            async def call(client: Client) -> None:
                retried[key] = tool_data(await call_until_settled(client, "create_order", calls[key], retries))

            return call

        with anyio.fail_after(90):
            async with anyio.create_task_group() as tasks:
                for offset, server in enumerate(survivors):
                    tasks.start_soon(drive, server, pg_shop.keys["agents"], [retry(k) for k in keys[offset::2]], 8)

    print(f"kill -9: {len(acknowledged)} acknowledged, {lost_with_the_victim} unanswered by the victim, {retries}")
    for key, order_id in acknowledged.items():
        assert retried[key]["order_id"] == order_id and retried[key]["replayed"] is True, key
    orders = await pg_shop.facts.orders(run)
    assert len(orders) == burst and {o["merchant_reference_id"]: o["id"] for o in orders} == {
        k: answer["order_id"] for k, answer in retried.items()
    }
    assert {r["status"] for r in await pg_shop.facts.idempotency(run)} == {"completed"}
    await pg_shop.facts.assert_stock_consistent()


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_workers_2_serve_stateless_mcp_to_both_client_modes(pg_shop: Shop, workers: Server, mode: str) -> None:
    assert len(_children(workers.pid)) >= 2, "serve --workers 2 did not fork two workers"
    async with httpx.AsyncClient(timeout=10) as web:
        ready = await web.get(f"{workers.base}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    order_ids = []
    async with workers.client(pg_shop.keys["agents"], mode) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "create_order" in names and "refund_order" not in names
        for index in range(4):
            key = f"work-{mode}-{uuid.uuid4().hex[:8]}-{index}"
            arguments = {"idempotency_key": key, "items": [{"sku": "WORK-MUG", "quantity": 1}]}
            created = tool_data(await client.call_tool("create_order", arguments))
            again = tool_data(await client.call_tool("create_order", arguments))
            assert again["order_id"] == created["order_id"] and again["replayed"] is True
            fetched = tool_data(await client.call_tool("get_order", {"order_id": created["order_id"]}))
            assert fetched["status"] == "pending_payment"
            assert tool_data(await client.call_tool("search_catalog", {"query": "worker"}))["items"]
            order_ids.append(created["order_id"])
    assert len(set(order_ids)) == 4


def test_workers_2_log_like_a_single_process(workers: Server) -> None:
    log = workers.log_tail(200_000)
    started = re.findall(r"^\S+ \S+ INFO uvicorn\.error: Started server process \[(\d+)\]$", log, re.MULTILINE)
    assert len(set(started)) == 2, "expected one plain 'Started server process' record per worker"
    assert "Context impl" not in log  # alembic is kept at WARNING, as in a single process


@pytest.fixture(scope="module")
def workers(pg_shop: Shop) -> Iterator[Server]:
    with running(pg_shop.env, pg_shop.logs, 1, "--workers", "2", name="workers") as servers:
        yield servers[0]


# ---------------------------------------------------------------- SQLite, 2 processes on one file
@pytest.fixture
def sqlite_shop(tmp_path: Path) -> Shop:
    env = server_env({"MCP_CHECKOUT_DATA_DIR": str(tmp_path), "MCP_CHECKOUT_IDEMPOTENCY_LEASE_SECONDS": "5"})
    cli(env, "migrate")
    done = cli_parallel(
        env,
        ["import-catalog", str(write_catalog(tmp_path / "catalog.csv", CATALOG))],
        ["keys", "create", "--name", "sqlite agent", "--scope", "buyer"],
    )
    return Shop(env, SqliteFacts(tmp_path / "checkout.db"), tmp_path / "logs", {"buyer": done[1].stdout.strip()})


async def test_300_create_order_calls_with_30_keys_make_exactly_30_orders_over_2_processes_on_one_sqlite_file(
    sqlite_shop: Shop,
) -> None:
    with running(sqlite_shop.env, sqlite_shop.logs, 2, name="sqlite") as servers:
        await exactly_once(servers, sqlite_shop.keys["buyer"], sqlite_shop.facts)
