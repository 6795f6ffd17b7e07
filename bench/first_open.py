"""First opens of checkout links (the claim), in-process, counted: a deterministic companion to web_bench's claim.

    .venv/bin/python bench/first_open.py --mint 400 --template /tmp/fo.db     # once: a store with 400 fresh links
    .venv/bin/python bench/first_open.py --template /tmp/fo.db --opens 300    # statements, Python calls, CPU
    valgrind --tool=callgrind .venv/bin/python bench/first_open.py --template /tmp/fo.db --opens 300 --quiet

Each run copies the template, warms up on ``--warmup`` links, then opens ``--opens`` other fresh links once
each through the web app (``GET /checkout/{token}`` with ``Accept: application/json``, as web_bench's claim
does; ``--html`` for the buyer's page) and reports per first open: SQL statements, Python function calls
(cProfile) and CPU ms. For instructions, run it under callgrind with ``--opens 0`` and ``--opens N`` and
divide the difference by N (the setup is the same in both runs). ``--pg URL``: a PostgreSQL database made
from the template's links instead (minted there with ``--mint``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anyio.to_thread
from sqlalchemy import event

from mcp_checkout.config import Settings
from mcp_checkout.domain import CatalogRow, Principal, utc_now
from mcp_checkout.service.checkout_links import CreateLink
from mcp_checkout.service.container import build_services
from mcp_checkout.store import migrate
from mcp_checkout.store.catalog_write import upsert_catalog
from mcp_checkout.web.app import build_web_app

MERCHANT = Principal(id="local", kind="merchant", client="first-open-bench")
CATALOG = [
    CatalogRow(f"Bench Product {i}", f"BENCH-{i:02d}", 1000 + 250 * i, "USD", 10_000_000, "Bench.") for i in range(8)
]


async def mint(settings: Settings, count: int) -> list[str]:
    services = build_services(settings)
    try:
        await migrate.upgrade(services.db)
        await services.db.write(lambda conn: upsert_catalog(conn, CATALOG, utc_now()))
        tokens = []
        for i in range(count):
            link = await services.links.create_link(
                MERCHANT, CreateLink(sku=CATALOG[i % len(CATALOG)].sku, quantity=1, idempotency_key=f"fo-{i}")
            )
            assert link.url is not None
            tokens.append(link.url.rsplit("/", 1)[1])
        return tokens
    finally:
        await services.close()


async def get(app: Any, path: str, html: bool) -> tuple[int, bytes]:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    headers = [(b"host", b"127.0.0.1"), (b"accept", b"text/html" if html else b"application/json")]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


async def measure(settings: Settings, tokens: list[str], args: argparse.Namespace) -> None:
    services = build_services(settings)
    app = build_web_app(lambda: services)
    try:
        for token in tokens[: args.warmup]:
            status, body = await get(app, f"/checkout/{token}", args.html)
            assert status == 200, (status, body[:300])
        statements: list[str] = []
        engine = services.db.sync_engine if services.db.dialect == "sqlite" else services.db.async_engine.sync_engine

        def note(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", note)
        todo = tokens[args.warmup : args.warmup + args.opens]
        if len(todo) < args.opens:
            raise SystemExit(f"the template has {len(tokens)} links: mint more (warmup {args.warmup} + opens)")
        profile = cProfile.Profile() if args.profile else None
        in_threads: list[cProfile.Profile] = []
        if profile is not None:  # cProfile sees one thread: profile each transaction run in a worker thread too
            run_sync = anyio.to_thread.run_sync

            async def profiled_run_sync(func: Any, *func_args: Any, **kwargs: Any) -> Any:
                def run(*inner: Any) -> Any:
                    here = cProfile.Profile()
                    in_threads.append(here)
                    here.enable()
                    try:
                        return func(*inner)
                    finally:
                        here.disable()

                return await run_sync(run, *func_args, **kwargs)

            anyio.to_thread.run_sync = profiled_run_sync  # type: ignore[assignment]
        before = resource.getrusage(resource.RUSAGE_SELF)
        cpu, wall = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()

        async def one(token: str) -> None:
            if args.target == "service":  # CheckoutService.open alone, without the web app
                await services.checkout.open(token)
                return
            status, body = await get(app, "/healthz" if args.target == "healthz" else f"/checkout/{token}", args.html)
            assert status == 200, (status, body[:300])

        if args.concurrency <= 1:
            for token in todo:
                await one(token)
        else:  # as web_bench's connections: this many opens in flight at once
            pending = iter(todo)

            async def worker() -> None:
                for token in pending:
                    await one(token)

            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        if profile is not None:
            profile.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        usage = resource.getrusage(resource.RUSAGE_SELF)
        event.remove(engine, "before_cursor_execute", note)
        if args.quiet or not todo:
            return
        n = len(todo)
        print(f"{n} first opens ({'HTML' if args.html else 'JSON'}, {services.db.dialect})")
        print(f"  SQL statements per open: {len(statements) / n:.2f}")
        if args.show_sql:
            for sql in statements[: len(statements) // n]:
                print("   ", " ".join(sql.split())[:160])
        if profile is not None:
            stats = pstats.Stats(profile)
            for here in in_threads:
                stats.add(here)
            print(f"  Python calls per open: {stats.total_calls / n:,.0f} (primitive {stats.prim_calls / n:,.0f})")
            if args.top:
                stats.sort_stats(args.sort).print_stats(args.top)
        else:
            user, system = usage.ru_utime - before.ru_utime, usage.ru_stime - before.ru_stime
            print(
                f"  CPU ms per open: {cpu * 1000 / n:.3f} (user {user * 1000 / n:.3f}, system {system * 1000 / n:.3f};"
                f" wall {wall * 1000 / n:.3f})"
            )
    finally:
        await services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--template", type=Path, required=True, help="the SQLite file holding the fresh links")
    parser.add_argument("--mint", type=int, default=0, help="make the template with this many fresh links")
    parser.add_argument("--opens", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=1, help="opens in flight at once (default 1)")
    parser.add_argument("--html", action="store_true", help="open as a browser does (the HTML page)")
    parser.add_argument(
        "--target",
        choices=("web", "service", "healthz"),
        default="web",
        help="web: GET /checkout/{token} (default); service: CheckoutService.open(token) alone; healthz: GET /healthz",
    )
    parser.add_argument("--profile", action="store_true", help="count Python calls (cProfile)")
    parser.add_argument("--top", type=int, default=0, help="with --profile: print the top N functions")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--show-sql", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--pg", help="a PostgreSQL URL (an empty database; --mint fills it)")
    args = parser.parse_args()
    tokens_file = args.template.with_suffix(".tokens")
    with tempfile.TemporaryDirectory() as home:
        if args.mint:
            url = args.pg or f"sqlite:///{args.template}"
            lasting = {"order_ttl_minutes": 30 * 24 * 60, "link_ttl_minutes": 7 * 24 * 60}  # usable for a week
            tokens = asyncio.run(mint(Settings(data_dir=Path(home), database_url=url, **lasting), args.mint))
            tokens_file.write_text("\n".join(tokens) + "\n")
            return
        url = args.pg
        if url is None:
            copy = Path(home) / "checkout.db"
            shutil.copyfile(args.template, copy)
            url = f"sqlite:///{copy}"
        tokens = tokens_file.read_text().split()
        asyncio.run(measure(Settings(data_dir=Path(home), database_url=url), tokens, args))


if __name__ == "__main__":
    main()
