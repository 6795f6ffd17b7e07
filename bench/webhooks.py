"""Outbound webhooks: what the outbox costs create_order, and how fast the dispatcher delivers, in one run.

    .venv/bin/python bench/webhooks.py                       # SQLite then PostgreSQL, ~2-3 minutes
    .venv/bin/python bench/webhooks.py --quick               # small counts: a smoke run (< 30 s)
    .venv/bin/python bench/webhooks.py --backend sqlite      # or postgresql, or both (the default)

1. Write path: ``services.orders.create`` (2 lines) with (a) no webhook endpoint, (b) one active endpoint
   subscribed to order.created, (c) five; the dispatcher is NOT running, so (b) and (c) only add the
   outbox write (one event row + one delivery row per endpoint, in the order's transaction). The variants
   are interleaved in rounds (their order rotated each round), sequential and with 8 concurrent callers;
   each variant's endpoints are created through the service before its block and deactivated after it.
2. Delivery, backlog: N orders queued with one endpoint, then the service's real dispatcher
   (``dispatch_once()`` in a loop) drains them to a real HTTP receiver (uvicorn in a separate process,
   answering 204). Baseline, in the same repetition and to the same receiver: the same bodies POSTed with
   plain httpx at the same concurrency (the dispatcher's batch size), free-running and in batches.
3. Delivery, live: ``dispatch_forever`` running while orders arrive at a steady rate; latency is event
   created_at -> delivered_at, read back from the delivery rows (and ``WebhookService.metrics()``'s p95
   checked against the same rows).

See bench/WEBHOOKS.md for the last results and their reading.
"""

from __future__ import annotations

import argparse
import functools
import gc
import logging
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anyio
import asyncpg  # type: ignore[import-untyped]
import httpx
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url

from bench.common import PG_ADMIN_URL, Figure, pg_admin, print_report, throughput
from mcp_checkout.config import Settings
from mcp_checkout.domain import CatalogRow, Principal, utc_now
from mcp_checkout.hosting import free_local_port as free_port
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.store import migrate
from mcp_checkout.store.catalog_write import upsert_catalog
from mcp_checkout.store.models import webhook_deliveries, webhook_events

MERCHANT = Principal(id="local", kind="merchant", client="webhook-bench")
CONCURRENCY = 8
# 200 SKUs with a huge stock: orders never run out, and concurrent callers rarely lock the same SKU row.
CATALOG = [
    CatalogRow(f"Hook Product {i}", f"HOOK-{i:03d}", 1000 + 25 * i, "USD", 1_000_000_000, f"Webhook bench item {i}.")
    for i in range(200)
]
VARIANTS = {"a": 0, "b": 1, "c": 5}  # variant -> active endpoints subscribed to order.created
VARIANT_NAMES = {"a": "(a) no endpoint", "b": "(b) 1 endpoint", "c": "(c) 5 endpoints"}
UNUSED_URL = "http://127.0.0.1:9/hooks"  # part 1 never sends: the dispatcher is not running

# The receiver: a bare ASGI app under uvicorn, in its own process (so it does not share the GIL or the
# event loop with what is measured). POST -> 204 and a count; GET -> the count.
RECEIVER = """
import sys
import uvicorn
posts = 0
async def app(scope, receive, send):
    global posts
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    if scope["method"] == "POST":
        posts += 1
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    else:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": str(posts).encode()})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, lifespan="off")
"""


def log(message: str) -> None:
    print(f"[webhooks {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Plan:
    rounds: int  # write path: rounds of (a, b, c)
    orders_seq: int  # orders per variant and round, one caller
    orders_conc: int  # orders per variant and round, CONCURRENCY callers
    backlog: int  # deliveries queued per backlog repetition
    backlog_reps: int
    live_rate: float  # orders per second while dispatch_forever runs
    live_seconds: float


def plan_for(args: argparse.Namespace) -> Plan:
    if args.quick:
        return Plan(rounds=2, orders_seq=25, orders_conc=30, backlog=100, backlog_reps=1, live_rate=30,
                    live_seconds=1.5)  # fmt: skip
    return Plan(rounds=10, orders_seq=120, orders_conc=160, backlog=800, backlog_reps=3, live_rate=40, live_seconds=8)


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (the rule ``service.webhooks.p95`` uses)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


# ---------------------------------------------------------------- the receiver
class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", RECEIVER, str(self.port)])
        deadline = time.monotonic() + 15
        while True:
            try:
                self.posts()
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the webhook receiver (uvicorn) did not start") from None
                time.sleep(0.1)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the receiver process has used so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def posts(self) -> int:
        return int(httpx.get(self.url, timeout=5, trust_env=False).text)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None


# ---------------------------------------------------------------- one backend
class BackendBench:
    def __init__(self, label: str, url: str, plan: Plan, workdir: Path, receiver: Receiver) -> None:
        self.label = label
        self.url = url
        self.plan = plan
        self.workdir = workdir
        self.receiver = receiver
        self.figures: list[Figure] = []
        self.notes: list[str] = []
        self._keys = iter(range(10**9))

    async def run(self) -> tuple[list[Figure], list[str]]:
        settings = Settings(
            data_dir=self.workdir, database_url=self.url, sweep_interval_seconds=3600, log_level="WARNING"
        )
        services = build_services(settings)
        try:
            await migrate.upgrade(services.db)
            await services.db.write(lambda conn: upsert_catalog(conn, CATALOG, utc_now()))
            await self.write_path(services)
            await self.backlog(services)
            await self.live(services)
            await self.metrics_check(services)
        finally:
            await services.close()
        return self.figures, self.notes

    async def create_order(self, services: Services, _i: int = 0) -> str:
        key = next(self._keys)
        first, second = CATALOG[(key * 7) % len(CATALOG)].sku, CATALOG[(key * 13 + 1) % len(CATALOG)].sku
        items = [(first, 1), (second, 2)] if first != second else [(first, 3)]
        order = await services.orders.create(
            MERCHANT,
            CreateOrder(
                idempotency_key=f"wh-bench-{key}",
                items=items,
            ),
        )
        return order.order_id

    # ------------------------------------------------------------ 1. the outbox on the write path
    async def write_path(self, services: Services) -> None:
        plan = self.plan
        hooks = services.webhooks

        async def endpoints(n: int) -> list[str]:
            created = [await hooks.create_endpoint(MERCHANT, UNUSED_URL, ["order.created"], "bench") for _ in range(n)]
            return [c.endpoint.endpoint_id for c in created]

        async def create(i: int) -> None:
            await self.create_order(services, i)

        async def count(table: Any) -> int:
            stmt = select(func.count()).select_from(table)
            return int(await services.db.read(lambda conn: conn.execute(stmt).scalar_one()))

        events_before, deliveries_before = await count(webhook_events), await count(webhook_deliveries)
        rates: dict[tuple[str, int], list[float]] = {}
        order_counts = dict.fromkeys(VARIANTS, 0)
        variants = list(VARIANTS)
        for round_ in range(-1, plan.rounds):  # round -1: warm-up, not recorded
            log(f"[{self.label}] write path, round {round_ + 1}/{plan.rounds} ...")
            shift = max(round_, 0) % len(variants)
            for variant in variants[shift:] + variants[:shift]:  # a b c, b c a, c a b, ...
                ids = await endpoints(VARIANTS[variant])
                for concurrency, full in ((1, plan.orders_seq), (CONCURRENCY, plan.orders_conc)):
                    n = full if round_ >= 0 else max(10, full // 4)
                    rate = await throughput(create, n, concurrency)
                    order_counts[variant] += n
                    if round_ >= 0:
                        rates.setdefault((variant, concurrency), []).append(rate)
                for endpoint_id in ids:
                    await hooks.deactivate_endpoint(MERCHANT, endpoint_id)

        # The outbox rows must be there: one event per order of (b) and (c), one delivery per endpoint.
        events = await count(webhook_events) - events_before
        deliveries = await count(webhook_deliveries) - deliveries_before
        want_events = order_counts["b"] + order_counts["c"]
        want_deliveries = order_counts["b"] + 5 * order_counts["c"]
        if (events, deliveries) != (want_events, want_deliveries):
            raise RuntimeError(f"outbox rows: {events} events, {deliveries} deliveries; "
                               f"expected {want_events} and {want_deliveries}")  # fmt: skip
        self.notes.append(f"{self.label}: write path wrote {events:,} events and {deliveries:,} deliveries "
                          f"(as expected for {sum(order_counts.values()):,} orders)")  # fmt: skip

        # SQL statements per create_order in each variant, counted on the engine (a listener only for this).
        db = services.db
        engine = db.sync_engine if db.dialect == "sqlite" else db.async_engine.sync_engine
        executed: list[str] = []

        def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            executed.append(statement)

        statements: dict[str, int] = {}
        for variant, n in VARIANTS.items():
            ids = await endpoints(n)
            event.listen(engine, "before_cursor_execute", note)
            try:
                executed.clear()
                await self.create_order(services)
                statements[variant] = len(executed)
            finally:
                event.remove(engine, "before_cursor_execute", note)
            for endpoint_id in ids:
                await hooks.deactivate_endpoint(MERCHANT, endpoint_id)

        section = (
            f"{self.label}: create_order (service, 2 lines) with the outbox, orders/s "
            f"(median of {plan.rounds} interleaved rounds; ratio = median of per-round ratios to (a), worst in [])"
        )
        self.figures.append(
            Figure(section, "SQL statements per create_order, (a) / (b) / (c) (executemany counts once)",
                   " / ".join(str(statements[v]) for v in VARIANTS), "-", math.nan, "-", None)
        )  # fmt: skip
        for concurrency in (1, CONCURRENCY):
            callers = "sequential" if concurrency == 1 else f"{concurrency} concurrent"
            base = rates["a", concurrency]
            self.figures.append(Figure(section, f"{VARIANT_NAMES['a']}, {callers}",
                                       f"{statistics.median(base):,.0f}/s", "-", math.nan, "-", None))  # fmt: skip
            for variant in ("b", "c"):
                own = rates[variant, concurrency]
                ratios = [x / y for x, y in zip(own, base, strict=True)]
                ratio, worst = statistics.median(ratios), min(ratios)
                target, passed = (">= 0.80x", ratio >= 0.8) if variant == "b" else ("-", None)
                self.figures.append(
                    Figure(section, f"{VARIANT_NAMES[variant]}, {callers} [worst round {worst:.2f}x]",
                           f"{statistics.median(own):,.0f}/s", f"(a) {statistics.median(base):,.0f}/s",
                           ratio, target, passed)
                )  # fmt: skip

    # ------------------------------------------------------------ 2. draining a backlog vs plain POSTs
    async def backlog(self, services: Services) -> None:
        plan = self.plan
        hooks = services.webhooks
        batch = services.settings.webhook_batch_size
        endpoint_id = (
            await hooks.create_endpoint(MERCHANT, self.receiver.url, ["order.created"], "backlog")
        ).endpoint.endpoint_id

        async def queue(n: int) -> list[str]:
            """Queue n order.created deliveries (dispatcher idle); returns their bodies, oldest first."""
            started = utc_now()
            await throughput(lambda i: self.create_order(services, i), n, CONCURRENCY)
            d, e = webhook_deliveries, webhook_events
            stmt = (
                select(e.c.body)
                .join_from(d, e, e.c.id == d.c.event_id)
                .where(d.c.endpoint_id == endpoint_id, d.c.status == "pending", d.c.created_at >= started)
                .order_by(d.c.created_at)
            )
            bodies = list(await services.db.read(lambda conn: conn.execute(stmt).scalars().all()))
            if len(bodies) != n:
                raise RuntimeError(f"queued {len(bodies)} deliveries, expected {n}")
            return bodies

        async def drain() -> tuple[float, datetime]:
            """Run the real dispatcher until nothing is due; (seconds, when it started)."""
            gc.collect()
            wall = utc_now()
            started = time.perf_counter()
            while await hooks.dispatch_once():
                pass
            return time.perf_counter() - started, wall

        # The baseline's client is built once, like the dispatcher's long-lived one (building an
        # httpx.AsyncClient loads the CA bundle: tens of milliseconds of CPU that are not per request).
        limits = httpx.Limits(max_connections=max(batch, 10))
        client = httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False, limits=limits, trust_env=False)
        headers = {"content-type": "application/json"}

        async def plain(bodies: Sequence[str], batched: bool) -> float:
            """The same bodies POSTed with plain httpx (no claim, no signing, no outcome write), ``batch`` at a
            time: free-running workers, or batches of ``batch`` awaited one after another."""

            async def post(i: int) -> None:
                # client.stream, as the dispatcher sends (client.post costs ~0.7 ms more CPU per request here)
                async with client.stream("POST", self.receiver.url, content=bodies[i].encode(), headers=headers) as r:
                    if r.status_code != 204:
                        raise RuntimeError(f"receiver answered {r.status_code}")

            if not batched:
                return await throughput(post, len(bodies), batch)
            gc.collect()
            started = time.perf_counter()
            for start in range(0, len(bodies), batch):
                async with anyio.create_task_group() as tasks:
                    for i in range(start, min(start + batch, len(bodies))):
                        tasks.start_soon(post, i)
            return len(bodies) / (time.perf_counter() - started)

        async def delivered_rows(since: datetime) -> list[tuple[datetime, datetime]]:
            d = webhook_deliveries
            stmt = select(d.c.created_at, d.c.delivered_at, d.c.status).where(
                d.c.endpoint_id == endpoint_id, d.c.created_at >= since
            )
            rows = await services.db.read(lambda conn: conn.execute(stmt).all())
            bad = [row.status for row in rows if row.status != "delivered"]
            if bad:
                raise RuntimeError(f"{len(bad)} deliveries not delivered: {sorted(set(bad))}")
            return [(row.created_at, row.delivered_at) for row in rows]

        async def metered(call: Callable[[], Awaitable[Any]]) -> tuple[Any, tuple[float, float, float]]:
            """``call()``'s result and (CPU s in this process, CPU s in the receiver, wall s) it took."""
            own, theirs, wall = time.process_time(), self.receiver.cpu_seconds(), time.perf_counter()
            result = await call()
            used = (time.process_time() - own, self.receiver.cpu_seconds() - theirs, time.perf_counter() - wall)
            return result, used

        try:
            # Warm-up: the dispatcher's HTTP client, the claim statements, the receiver.
            warm = await queue(batch * 2)
            await drain()
            await plain(warm, batched=False)

            section = (
                f"{self.label}: delivering a backlog of {plan.backlog} queued events, 1 endpoint, "
                f"batch/concurrency {batch} (per repetition)"
            )
            for rep in range(plan.backlog_reps):
                log(f"[{self.label}] backlog, repetition {rep + 1}/{plan.backlog_reps} ...")
                queued_at = utc_now()
                bodies = await queue(plan.backlog)
                posts_before = self.receiver.posts()
                cpu: dict[str, tuple[float, float, float]] = {}  # phase -> CPU s here, CPU s in the receiver, wall s
                free, cpu["plain"] = await metered(functools.partial(plain, bodies, batched=False))
                (seconds, dispatch_start), cpu["dispatcher"] = await metered(drain)
                batched = await plain(bodies, batched=True)
                posts = self.receiver.posts() - posts_before
                if posts != 3 * plan.backlog:
                    raise RuntimeError(f"receiver got {posts} POSTs, expected {3 * plan.backlog}")
                rows = await delivered_rows(queued_at)
                if len(rows) != plan.backlog:
                    raise RuntimeError(f"{len(rows)} delivered rows, expected {plan.backlog}")
                n = plan.backlog
                rate = n / seconds
                since_created = [(done - created).total_seconds() for created, done in rows]
                since_start = [(done - dispatch_start).total_seconds() for _created, done in rows]
                rep_label = f"rep {rep + 1}"
                self.figures += [
                    Figure(section, f"{rep_label}: dispatcher vs plain httpx POSTs, free-running",
                           f"{rate:,.0f}/s", f"plain {free:,.0f}/s", rate / free, "-", None),
                    Figure(section, f"{rep_label}: dispatcher vs plain httpx POSTs in awaited batches",
                           f"{rate:,.0f}/s", f"batched {batched:,.0f}/s", rate / batched, "-", None),
                    Figure(section, f"{rep_label}: CPU of this process per delivery, dispatcher vs plain free-running",
                           f"{cpu['dispatcher'][0] / n * 1000:.2f} ms", f"plain {cpu['plain'][0] / n * 1000:.2f} ms",
                           cpu["dispatcher"][0] / cpu["plain"][0], "-", None),
                    Figure(section, f"{rep_label}: receiver CPU busy (share of one core), dispatcher vs plain",
                           f"{cpu['dispatcher'][1] / cpu['dispatcher'][2]:.0%}",
                           f"plain {cpu['plain'][1] / cpu['plain'][2]:.0%}", math.nan, "-", None),
                    Figure(section, f"{rep_label}: time to delivery from dispatcher start, p50 / p95",
                           f"{pct(since_start, 50):.2f} / {pct(since_start, 95):.2f} s", "-", math.nan, "-", None),
                    Figure(section, f"{rep_label}: event created_at -> delivered_at, p50 / p95 (incl. queueing)",
                           f"{pct(since_created, 50):.2f} / {pct(since_created, 95):.2f} s", "-", math.nan, "-", None),
                ]  # fmt: skip
        finally:
            await client.aclose()
        await hooks.deactivate_endpoint(MERCHANT, endpoint_id)

    # ------------------------------------------------------------ 3. live: dispatch_forever while orders arrive
    async def live(self, services: Services) -> None:
        plan = self.plan
        hooks = services.webhooks
        endpoint_id = (
            await hooks.create_endpoint(MERCHANT, self.receiver.url, ["order.created"], "live")
        ).endpoint.endpoint_id
        count = round(plan.live_rate * plan.live_seconds)
        log(f"[{self.label}] live: {count} orders at {plan.live_rate:.0f}/s with dispatch_forever running ...")
        d = webhook_deliveries
        pending = select(func.count()).where(d.c.endpoint_id == endpoint_id, d.c.status == "pending")
        late = 0
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(hooks.dispatch_forever)
            await anyio.sleep(0.2)
            started = time.perf_counter()
            for i in range(count):
                delay = started + i / plan.live_rate - time.perf_counter()
                if delay > 0:
                    await anyio.sleep(delay)
                else:
                    late += 1
                await self.create_order(services, i)
            with anyio.fail_after(30):
                while await services.db.read(lambda conn: conn.execute(pending).scalar_one()):  # noqa: ASYNC110
                    await anyio.sleep(0.05)  # (polling the database: there is no event to wait on)
            tasks.cancel_scope.cancel()
        stmt = select(d.c.created_at, d.c.delivered_at, d.c.status).where(d.c.endpoint_id == endpoint_id)
        rows = await services.db.read(lambda conn: conn.execute(stmt).all())
        if len(rows) != count or any(row.status != "delivered" for row in rows):
            raise RuntimeError(f"live: {len(rows)} rows, statuses {sorted({row.status for row in rows})}")
        latencies = [(row.delivered_at - row.created_at).total_seconds() * 1000 for row in rows]
        section = (
            f"{self.label}: live, {count} orders at {plan.live_rate:.0f}/s, dispatch_forever running "
            "(event created_at -> delivered_at)"
        )
        self.figures.append(
            Figure(section, "latency p50 / p95 / max",
                   f"{pct(latencies, 50):.1f} / {pct(latencies, 95):.1f} / {max(latencies):.1f} ms",
                   "-", math.nan, "-", None)
        )  # fmt: skip
        if late > count // 10:
            self.notes.append(f"{self.label}: live phase fell behind its schedule for {late} of {count} orders")
        await hooks.deactivate_endpoint(MERCHANT, endpoint_id)

    # ------------------------------------------------------------ metrics() against the rows
    async def metrics_check(self, services: Services) -> None:
        metrics = await services.webhooks.metrics(MERCHANT, window_minutes=60)
        since = utc_now() - timedelta(minutes=60)
        d = webhook_deliveries
        stmt = select(d.c.created_at, d.c.delivered_at).where(d.c.status == "delivered", d.c.delivered_at >= since)
        rows = await services.db.read(lambda conn: conn.execute(stmt).all())
        own = pct([(done - created).total_seconds() for created, done in rows], 95)
        self.notes.append(
            f"{self.label}: WebhookService.metrics(60 min): created {metrics.created:,}, delivered "
            f"{metrics.delivered:,}, abandoned {metrics.abandoned:,} (the write path's, by deactivation), pending "
            f"{metrics.pending}, p95 {metrics.p95_delivery_seconds} s; the same {len(rows):,} delivered rows "
            f"read directly: p95 {own:.3f} s (both mix the backlog's queueing and the live phase)"
        )


# ---------------------------------------------------------------- PostgreSQL database of our own


# ---------------------------------------------------------------- main
async def main(args: argparse.Namespace) -> int:
    plan = plan_for(args)
    logging.getLogger("mcp_checkout").setLevel(logging.ERROR)
    load_before = os.getloadavg()
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="mcp_checkout_webhooks_"))
    receiver = Receiver()
    figures: list[Figure] = []
    notes: list[str] = []
    try:
        receiver.start()
        if args.backend in ("sqlite", "both"):
            bench = BackendBench("SQLite", f"sqlite:///{workdir / 'bench.db'}", plan, workdir, receiver)
            more, extra = await bench.run()
            figures += more
            notes += extra
        if args.backend in ("postgresql", "both"):
            name = f"mcp_checkout_webhooks_{os.getpid()}"
            try:
                await pg_admin(f'CREATE DATABASE "{name}"')
            except (OSError, asyncpg.PostgresError) as exc:
                notes.append(f"PostgreSQL skipped: {PG_ADMIN_URL} not usable ({type(exc).__name__}: {exc})")
            else:
                try:
                    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
                    more, extra = await BackendBench("PostgreSQL", url, plan, workdir, receiver).run()
                    figures += more
                    notes += extra
                finally:
                    await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        receiver.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()
    print(f"mcp-checkout webhooks benchmark{' (--quick)' if args.quick else ''}: backend {args.backend}, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, run took {elapsed:.0f}s")  # fmt: skip
    busy = max(load_before[0], load_after[0]) > 1.5
    print(f"  load average (1/5/15 min) {'/'.join(f'{x:.2f}' for x in load_before)} before, "
          f"{'/'.join(f'{x:.2f}' for x in load_after)} after"
          + ("  (!) other processes competed for the CPUs: figures are noisier" if busy else ""))  # fmt: skip
    print_report(notes, figures)
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run (< 30 s)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(anyio.run(main, parse_args()))
