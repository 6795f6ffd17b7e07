"""HTTP scaling of MCP tool calls: get_order and create_order with 1, 2 and 4 server processes on ONE
PostgreSQL database, plus the cost of auth + HTTP over the in-memory client.

    .venv/bin/python bench/http_scale.py                   # ~3 minutes
    .venv/bin/python bench/http_scale.py --duration 3      # a smoke run
    .venv/bin/python bench/http_scale.py --mode workers    # `serve --http --workers N` on one port instead

What it does, all on loopback:

1. Creates a PostgreSQL database of its own (dropped WITH (FORCE) at the end), migrates it, seeds a catalog
   whose SKUs hold a huge stock, ``--keys`` merchant API keys and 200 orders (in-process, through the services).
2. For N in 1, 2, 4 starts N separate ``mcp-checkout serve --http --port P_i`` processes (default ``--mode
   ports``) with ``MCP_CHECKOUT_HTTP_STATELESS=true``, ``MCP_CHECKOUT_DATABASE_URL`` = that database and a
   rate limit high enough not to refuse the load, checks one POST of each tool by hand (200, no JSON-RPC error,
   no ``isError``), then runs one ``wrk -t1`` per port concurrently (the ``--connections`` split across the
   ports) POSTing JSON-RPC ``tools/call`` bodies to ``/mcp`` with the bearer key, and sums the rates.
   ``--mode workers`` instead starts one ``serve --http --workers N`` (uvicorn's workers share one port).
   The wrk lua script checks every response (status 200 and no ``"error"``/``"isError":true`` in the body);
   create_order sends a fresh idempotency key per request (wrk process tag + counter).
3. The in-memory figure: ``mcp.Client(build_server(settings))`` calling get_order in this process on the same
   database with the same number of concurrent callers; the ratio is HTTP (1 process) / in-memory.
4. wrk's own ceiling: wrk against nginx (one worker) answering a static ``ok``.

The machine is shared: the load average is printed, and only ratios within one run mean much.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository and bench/ importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy.engine import make_url
from web_bench import Processes, _cpu_ticks, find_nginx, find_wrk, free_port, parse_wrk, wait_http, wait_idle

from bench.common import PG_ADMIN_URL, pg_admin
from mcp_checkout.config import Settings
from mcp_checkout.domain import CatalogRow, Principal, utc_now
from mcp_checkout.service.container import build_services
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.store import migrate
from mcp_checkout.store.catalog_write import upsert_catalog

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
MERCHANT = Principal(id="local", kind="merchant", client="http-scale")
CATALOG = [
    CatalogRow(f"Scale Product {i}", f"SCALE-{i:02d}", 1000 + 250 * i, "USD", 1_000_000_000, f"Scale item {i}.")
    for i in range(8)
]
PROCESS_COUNTS = (1, 2, 4)
TARGETS = {("get_order", 2): 1.7, ("create_order", 2): 1.6}


def log(message: str) -> None:
    print(f"[http-scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# ---------------------------------------------------------------- PostgreSQL database of our own


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    name = f"mcp_checkout_httpscale_{os.getpid()}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# ---------------------------------------------------------------- seeding and the in-memory figure
async def seed(settings: Settings, keys: int, orders: int) -> tuple[list[str], list[str]]:
    services = build_services(settings)
    try:
        await migrate.upgrade(services.db)
        await services.db.write(lambda conn: upsert_catalog(conn, CATALOG, utc_now()))
        secrets = [(await services.access.create_key(f"http-scale {i}", "merchant")).key for i in range(keys)]
        order_ids = []
        for i in range(orders):
            sku = CATALOG[i % len(CATALOG)].sku
            order = await services.orders.create(
                MERCHANT,
                CreateOrder(
                    idempotency_key=f"http-scale-seed-{i}",
                    items=[(sku, 1)],
                ),
            )
            order_ids.append(order.order_id)
        return secrets, order_ids
    finally:
        await services.close()


async def in_memory_rate(settings: Settings, order_ids: Sequence[str], concurrency: int, seconds: float) -> float:
    from mcp import Client

    from mcp_checkout.server import build_server

    async with Client(build_server(settings)) as client:
        for order_id in order_ids[:5]:  # warm up, and check that the call succeeds
            result = await client.call_tool("get_order", {"order_id": order_id})
            if result.is_error:
                raise RuntimeError(f"in-memory get_order failed: {result.content}")
        done = 0
        errors = 0
        deadline = time.perf_counter() + seconds

        async def caller(start: int) -> None:
            nonlocal done, errors
            i = start
            while time.perf_counter() < deadline:
                result = await client.call_tool("get_order", {"order_id": order_ids[i % len(order_ids)]})
                errors += bool(result.is_error)
                done += 1
                i += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(caller(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"in-memory get_order: {errors} of {done} calls failed")
    return done / elapsed


# ---------------------------------------------------------------- wrk lua
LUA = r"""
local keys = {KEYS}
local orders = {ORDERS}
local tool = "{TOOL}"
local skus = {SKUS}
local tag = "x"
local n = 0
ok, bad, sample = 0, 0, nil  -- globals: done() reads them with thread:get

function init(args)
  tag = args[1] or "x"
end

function request()
  n = n + 1
  local body
  if tool == "get_order" then
    body = '{"jsonrpc":"2.0","id":' .. n .. ',"method":"tools/call","params":{"name":"get_order",'
      .. '"arguments":{"order_id":"' .. orders[(n % #orders) + 1] .. '"}}}'
  else
    body = '{"jsonrpc":"2.0","id":' .. n .. ',"method":"tools/call","params":{"name":"create_order",'
      .. '"arguments":{"idempotency_key":"hs-' .. tag .. '-' .. n .. '","items":[{"sku":"'
      .. skus[(n % #skus) + 1] .. '","quantity":1}]}}}'
  end
  local headers = {
    ["Authorization"] = "Bearer " .. keys[(n % #keys) + 1],
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
  }
  return wrk.format("POST", "/mcp", headers, body)
end

function response(status, headers, body)
  if status == 200 and not body:find('"isError":true', 1, true) and not body:find('"error":', 1, true) then
    ok = ok + 1
  else
    bad = bad + 1
    if sample == nil then sample = status .. " " .. body:sub(1, 300) end
  end
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local good, wrong, first = 0, 0, nil
  for _, t in ipairs(threads) do
    good = good + t:get("ok")
    wrong = wrong + t:get("bad")
    first = first or t:get("sample")
  end
  io.write(string.format("CHECK ok=%d bad=%d\n", good, wrong))
  if first then io.write("SAMPLE " .. first:gsub("\n", " ") .. "\n") end
end
"""


def _lua_list(values: Sequence[str]) -> str:
    return "{" + ", ".join(json.dumps(v) for v in values) + "}"


def write_lua(path: Path, tool: str, keys: Sequence[str], order_ids: Sequence[str]) -> Path:
    text = (
        LUA.replace("{KEYS}", _lua_list(keys))
        .replace("{ORDERS}", _lua_list(order_ids))
        .replace("{SKUS}", _lua_list([row.sku for row in CATALOG]))
        .replace("{TOOL}", tool)
    )
    path.write_text(text)
    return path


@dataclass
class Figure:
    rps: float
    ok: int
    bad: int
    non_2xx: int
    socket_errors: int
    sample: str | None
    server_cores: float = 0.0  # CPU the server processes used during the figure, in cores
    machine_cores: float = 0.0  # CPU the whole machine used (servers, PostgreSQL, wrk, other tenants)


def run_wrk_group(wrk: str, ports: Sequence[int], connections: int, seconds: float, script: Path, tag: str) -> Figure:
    """One wrk -t1 per port, all at once; the rates summed."""
    per_port = max(1, connections // len(ports))
    running = []
    for i, port in enumerate(ports):
        argv = [wrk, "-t1", f"-c{per_port}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "--latency"]
        argv += ["-s", str(script), f"http://127.0.0.1:{port}/mcp", "--", f"{tag}p{i}"]
        running.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    figure = Figure(0.0, 0, 0, 0, 0, None)
    for proc in running:
        out, err = proc.communicate(timeout=seconds + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"wrk failed ({proc.returncode}): {err or out}")
        result = parse_wrk(out)
        figure.rps += result.rps
        figure.non_2xx += result.non_2xx
        figure.socket_errors += result.socket_errors
        for line in out.splitlines():
            if line.startswith("CHECK "):
                fields = dict(part.split("=") for part in line.split()[1:])
                figure.ok += int(fields["ok"])
                figure.bad += int(fields["bad"])
            elif line.startswith("SAMPLE ") and figure.sample is None:
                figure.sample = line[7:]
    return figure


def check_by_hand(port: int, key: str, order_id: str) -> None:
    """One POST of each tool, the way the lua script sends them: must be 200 with no error in the body."""
    bodies = {
        "get_order": {"order_id": order_id},
        "create_order": {"idempotency_key": f"hs-hand-{port}", "items": [{"sku": CATALOG[0].sku, "quantity": 1}]},
    }
    for tool, arguments in bodies.items():
        payload = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/mcp",
            data=json.dumps(payload).encode(),
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # loopback only
            body = response.read().decode()
            if response.status != 200 or '"isError":true' in body or '"error":' in body:
                raise RuntimeError(f"{tool} by hand on port {port}: {response.status} {body[:500]}")


# ---------------------------------------------------------------- servers
def start_servers(procs: Processes, workdir: Path, url: str, count: int, mode: str) -> tuple[list[int], list[Any]]:
    env = {
        **os.environ,
        "MCP_CHECKOUT_DATABASE_URL": url,
        "MCP_CHECKOUT_HTTP_STATELESS": "true",
        "MCP_CHECKOUT_RATE_LIMIT_PER_MINUTE": "1000000",
        "MCP_CHECKOUT_LOG_LEVEL": "WARNING",
    }
    cli = str(VENV_BIN / "mcp-checkout")
    started: list[tuple[int, Any, Path]] = []
    if mode == "workers":
        port = free_port()
        log_path = workdir / f"serve-w{count}.log"
        argv = [cli, "--data-dir", str(workdir / "data"), "serve", "--http", "--port", str(port)]
        argv += ["--workers", str(count)]
        started.append((port, procs.start(argv, env=env, log_path=log_path), log_path))
    else:
        for i in range(count):
            port = free_port()
            log_path = workdir / f"serve-{count}-{i}.log"
            argv = [cli, "--data-dir", str(workdir / f"data{i}"), "serve", "--http", "--port", str(port)]
            started.append((port, procs.start(argv, env=env, log_path=log_path), log_path))
    for port, proc, log_path in started:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, log_path)
    return [port for port, _, _ in started], [proc for _, proc, _ in started]


def nginx_ceiling(procs: Processes, workdir: Path, nginx: str | None, wrk: str, connections: int, seconds: float):
    if nginx is None:
        return None
    prefix = workdir / "nginx"
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(
        textwrap.dedent(
            f"""\
            daemon off;
            master_process off;
            worker_processes 1;
            error_log {prefix}/logs/error.log warn;
            pid {prefix}/nginx.pid;
            events {{ worker_connections 1024; }}
            http {{
                access_log off;
                keepalive_requests 10000000;
                client_body_temp_path {prefix}/tmp_body;
                proxy_temp_path {prefix}/tmp_proxy;
                fastcgi_temp_path {prefix}/tmp_fastcgi;
                uwsgi_temp_path {prefix}/tmp_uwsgi;
                scgi_temp_path {prefix}/tmp_scgi;
                server {{
                    listen 127.0.0.1:{port};
                    location / {{ default_type text/plain; return 200 "ok"; }}
                }}
            }}
            """
        )
    )
    log_path = workdir / "nginx.log"
    argv = [nginx, "-p", str(prefix), "-e", str(prefix / "logs" / "error.log"), "-c", str(conf)]
    proc = procs.start(argv, log_path=log_path)
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc, log_path)
        argv = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"http://127.0.0.1:{port}/"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
        return parse_wrk(done.stdout).rps
    finally:
        procs.stop(proc)


# ---------------------------------------------------------------- main
def _spin(iterations: int) -> float:
    started = time.perf_counter()
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return time.perf_counter() - started


def cpu_scaling(iterations: int = 6_000_000) -> float:
    """How much faster 2 CPU-bound Python processes get through work than 1, on this machine right now
    (the best case for any 1 -> 2 process figure; shared or SMT vCPUs give less than 2)."""
    rates = {}
    for count in (1, 2, 1, 2):
        with multiprocessing.Pool(count) as pool:
            started = time.perf_counter()
            pool.map(_spin, [iterations] * count)
            rates.setdefault(count, []).append(count * iterations / (time.perf_counter() - started))
    return max(rates[2]) / max(rates[1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per figure (default 8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up load before each (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections in all (default 32)")
    parser.add_argument(
        "--mode",
        choices=("ports", "workers"),
        default="ports",
        help="ports: N separate `serve --http` processes on N ports (default); workers: `--workers N` on one port",
    )
    parser.add_argument("--keys", type=int, default=1, help="merchant API keys the requests rotate through (default 1)")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install wrk / nginx-light")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, lua)")
    args = parser.parse_args(argv)

    wrk = find_wrk(not args.no_install)
    nginx = find_nginx(not args.no_install)
    workdir = Path(tempfile.mkdtemp(prefix="mcp_checkout_httpscale_"))
    procs = Processes()

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    load_before = loadavg()
    started = time.perf_counter()
    rates: dict[tuple[str, int], Figure] = {}
    notes: list[str] = []
    try:
        with pg_database() as url:
            settings = Settings(data_dir=workdir / "inproc", database_url=url, rate_limit_per_minute=1_000_000)
            log("seeding the database")
            keys, order_ids = asyncio.run(seed(settings, args.keys, 200))
            scripts = {tool: write_lua(workdir / f"{tool}.lua", tool, keys, order_ids) for tool in TOOLS}
            for count in PROCESS_COUNTS:
                log(f"{count} process(es), mode {args.mode}")
                ports, servers = start_servers(procs, workdir, url, count, args.mode)
                try:
                    for port in ports:
                        check_by_hand(port, keys[0], order_ids[0])
                    for tool in TOOLS:
                        tag = f"{tool[:1]}{count}"
                        if args.warmup > 0:
                            run_wrk_group(wrk, ports, args.connections, args.warmup, scripts[tool], tag + "w")
                        pids = [proc.pid for proc in servers]
                        if args.mode == "workers":  # uvicorn's worker processes are children of the one we started
                            pids += [
                                int(p)
                                for p in Path(f"/proc/{servers[0].pid}/task/{servers[0].pid}/children")
                                .read_text()
                                .split()
                            ]
                        ticks0, (busy0, total0), t0 = (
                            [_cpu_ticks(p) or 0 for p in pids],
                            cpu_times(),
                            time.perf_counter(),
                        )
                        figure = run_wrk_group(wrk, ports, args.connections, args.duration, scripts[tool], tag)
                        ticks1, (busy1, total1), t1 = (
                            [_cpu_ticks(p) or 0 for p in pids],
                            cpu_times(),
                            time.perf_counter(),
                        )
                        hz = os.sysconf("SC_CLK_TCK")
                        figure.server_cores = (sum(ticks1) - sum(ticks0)) / hz / (t1 - t0)
                        figure.machine_cores = (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)
                        rates[(tool, count)] = figure
                        log(
                            f"  {tool}: {figure.rps:,.0f} req/s (ok {figure.ok:,}, bad {figure.bad:,}); "
                            f"servers used {figure.server_cores:.2f} cores, the machine {figure.machine_cores:.2f}"
                        )
                        if figure.sample:
                            notes.append(f"{tool}, {count} process(es), first bad response: {figure.sample}")
                        for proc in servers:
                            wait_idle(proc.pid)
                finally:
                    for proc in servers:
                        procs.stop(proc)
            log("in-memory client")
            in_memory = asyncio.run(in_memory_rate(settings, order_ids, args.connections, args.duration))
        log("wrk's ceiling (nginx)")
        ceiling = nginx_ceiling(procs, workdir, nginx, wrk, args.connections, args.duration)
        log("the machine's own 1 -> 2 process ceiling (CPU-bound loop)")
        machine_two = cpu_scaling()
    finally:
        procs.stop_all()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    how = (
        "separate `serve --http` processes, one port each, one wrk -t1 per port at once"
        if args.mode == "ports"
        else "`serve --http --workers N` on one port, one wrk -t1"
    )
    print(
        f"mcp-checkout HTTP scaling: {how}; {args.connections} connections in all; {args.duration:g}s per figure "
        f"(+{args.warmup:g}s warm-up); {args.keys} API key(s); PostgreSQL; {os.cpu_count()} CPUs (shared); "
        f"load average {load_before} before, {loadavg()} after; {time.perf_counter() - started:.0f}s in all"
    )
    print()
    header = ["tool", *(f"{n} proc req/s" for n in PROCESS_COUNTS), *(f"x{n}/x1" for n in PROCESS_COUNTS[1:])]
    header += ["target 2/1", "verdict", "errors"]
    lines = []
    failed = False
    for tool in TOOLS:
        base = rates[(tool, 1)].rps
        speedups = [rates[(tool, n)].rps / base if base else float("nan") for n in PROCESS_COUNTS[1:]]
        target = TARGETS[(tool, 2)]
        bad = sum(
            rates[(tool, n)].bad + rates[(tool, n)].non_2xx + rates[(tool, n)].socket_errors for n in PROCESS_COUNTS
        )
        failed |= any(rates[(tool, n)].bad or rates[(tool, n)].non_2xx for n in PROCESS_COUNTS)
        verdict = "ok" if speedups[0] >= target else "MISS"
        lines.append(
            [
                tool,
                *(f"{rates[(tool, n)].rps:,.0f}" for n in PROCESS_COUNTS),
                *(f"{s:.2f}" for s in speedups),
                f">= {target:.1f}",
                verdict,
                str(bad),
            ]
        )
    widths = [max(len(header[i]), *(len(line[i]) for line in lines)) for i in range(len(header))]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for line in lines:
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        print("  ".join(cells).rstrip())
    print()
    print("CPU during each figure, in cores (servers' own / whole machine incl. PostgreSQL, wrk, other tenants),")
    print("and server CPU per request:")
    for tool in TOOLS:
        cells = []
        for n in PROCESS_COUNTS:
            f = rates[(tool, n)]
            per = f.server_cores / f.rps * 1000 if f.rps else float("nan")
            cells.append(f"{n} proc {f.server_cores:.2f}/{f.machine_cores:.2f} ({per:.1f} ms/req)")
        print(f"  {tool:<12}  " + "   ".join(cells))
    print()
    http_one = rates[("get_order", 1)].rps
    print(
        f"get_order, in-memory client (mcp.Client(build_server(settings)), {args.connections} concurrent callers, "
        f"same database): {in_memory:,.0f} calls/s; HTTP + auth, 1 process: {http_one:,.0f} req/s "
        f"= {http_one / in_memory:.2f}x the in-memory rate"
    )
    one = rates[("get_order", 1)]
    print(
        f"headroom: with 1 server process the machine already used {one.machine_cores:.2f} of {os.cpu_count()} CPUs "
        f"for get_order, so a 2nd process can add at most {(os.cpu_count() or 1) / one.machine_cores:.2f}x at "
        f"the same cost per request; a CPU-bound Python loop runs {machine_two:.2f}x faster in 2 processes than "
        "in 1 on this machine right now"
    )
    if ceiling is not None:
        print(f"wrk's ceiling (nginx, 1 worker, static 'ok', {args.connections} connections): {ceiling:,.0f} req/s")
    else:
        print("wrk's ceiling: nginx not available")
    for note in notes:
        print(f"note: {note}")
    return 1 if failed else 0


TOOLS = ("get_order", "create_order")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted: servers and wrk stopped, database dropped")
        sys.exit(130)
