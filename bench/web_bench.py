"""HTTP load benchmark of the real server: opening a checkout link and the Stripe webhook, vs /healthz.

    .venv/bin/python bench/web_bench.py                 # SQLite, ~2.5 minutes
    .venv/bin/python bench/web_bench.py --pg            # then the same on a PostgreSQL database of its own
    .venv/bin/python bench/web_bench.py --duration 5    # shorter runs (a smoke run)

What it does, all on loopback:

1. Seeds a fresh data dir (or a fresh PostgreSQL database) through the services, in-process: a catalog,
   orders with checkout links (some already claimed, for the resume figure), and orders whose payment
   rows carry Stripe PaymentIntent ids (for the webhook figure).
2. Starts the REAL server process, ``mcp-checkout --data-dir D serve --http --port P``, on the offline
   gateway and measures with ``wrk`` (50 connections, ``--duration`` seconds each):
   ``GET /healthz``; resume (GET of an already-claimed link with ``Accept: application/json``, across a
   set of tokens); claim (the first open of each of many fresh tokens; a wrk lua script walks them, and
   the pool is sized from the measured resume rate so that no token is opened twice); ``/healthz`` again.
3. Restarts the server in Stripe test mode (``MCP_CHECKOUT_STRIPE_SECRET_KEY=sk_test_…``, a webhook
   secret, and an API base pointing at a closed port: the webhook handler must not call Stripe) and
   measures ``/healthz``, ``POST /webhooks/stripe`` with unique signed ``payment_intent.processing`` /
   ``payment_intent.succeeded`` events, then redeliveries of already-processed events (re-signed with a
   fresh timestamp, as Stripe does), then ``/healthz`` again.
4. Measures the load generator's own ceiling: wrk against nginx answering a static ``ok`` (installed
   from Debian's packages when missing and we are root; otherwise a minimal asyncio server, which gives
   a lower bound only), and, for reference, a bare Starlette app on uvicorn.

Each figure's ratio is to the mean of the two ``/healthz`` runs of the same server process (the
machine is shared and noisy: ratios within one run mean something, absolute numbers less so). The
targets (issue 12): resume >= 0.20, first open >= 0.08, unique webhooks >= 0.10. Beside each rate the
table gives the server's CPU time per request (all its threads, from /proc, the drain included) and the
ratio computed from it ("by CPU"): other processes on a shared machine slow the rates but cost the server
no CPU, so that ratio is the steadier one. Every request must answer 2xx; the claim and webhook figures
are checked against the database afterwards (sessions created, events recorded, duplicates not recorded).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from mcp_checkout.config import Settings
from mcp_checkout.domain import CatalogRow, Principal, utc_now
from mcp_checkout.hosting import free_local_port as free_port
from mcp_checkout.payments.gateway import Intent, Refund
from mcp_checkout.service.checkout_links import CreateLink
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.store import migrate
from mcp_checkout.store.catalog_write import upsert_catalog
from mcp_checkout.store.models import checkout_sessions, gateway_events, orders

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
# Issue 12's targets, as a share of the /healthz rate of the same server in the same run.
RESUME_TARGET = 0.20
CLAIM_TARGET = 0.08
WEBHOOK_TARGET = 0.10
PG_ADMIN_URL = os.environ.get("MCP_CHECKOUT_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
STRIPE_KEY = "sk_test_webbench_" + "0" * 16
WEBHOOK_SECRET = "whsec_webbench_" + "1" * 24
API_VERSION = "2025-09-30.clover"
MERCHANT = Principal(id="local", kind="merchant", client="web-bench")
CATALOG = [
    CatalogRow(f"Bench Product {i}", f"BENCH-{i:02d}", 1000 + 250 * i, "USD", 10_000_000, f"Bench item {i}.")
    for i in range(8)
]


def log(message: str) -> None:
    print(f"[web-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- tools: wrk, nginx
def _apt_install(package: str) -> bool:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    log(f"installing {package} from Debian's packages (apt-get install -y {package})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(["apt-get", "install", "-y", "-qq", package], env=env, capture_output=True, check=False)
    if done.returncode != 0:  # a stale package list: update once and retry
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
        done = subprocess.run(["apt-get", "install", "-y", "-qq", package], env=env, capture_output=True, check=False)
    return done.returncode == 0


def find_wrk(install: bool) -> str:
    found = shutil.which("wrk")
    if found is None and install and _apt_install("wrk"):
        found = shutil.which("wrk")
    if found is None:
        raise SystemExit(
            "wrk is not installed. Install it with `apt-get install -y wrk` (as root; Debian's package), "
            "then run this again. httpx is not a usable load generator here (~450 requests/s)."
        )
    return found


def find_nginx(install: bool) -> str | None:
    found = shutil.which("nginx") or (Path("/usr/sbin/nginx").exists() and "/usr/sbin/nginx") or None
    if found is None and install and _apt_install("nginx-light"):
        found = shutil.which("nginx") or "/usr/sbin/nginx"
    return found or None


# ---------------------------------------------------------------- processes we start (and always stop)
class Processes:
    """Every child process of this run, each in its own process group, stopped at exit even on error."""

    def __init__(self) -> None:
        self._running: list[subprocess.Popen[bytes]] = []

    def start(
        self, argv: Sequence[str], *, env: dict[str, str] | None = None, log_path: Path
    ) -> subprocess.Popen[bytes]:
        with log_path.open("ab") as sink:
            proc = subprocess.Popen(
                list(argv),
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._running.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if proc in self._running:
            self._running.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self._running):
            self.stop(proc)


def wait_http(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before answering {url}:\n{_tail(log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # loopback only
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no answer from {url} within {timeout:.0f}s:\n{_tail(log_path)}")


def _cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait_idle(pid: int | None, timeout: float = 30.0) -> None:
    """Wait until the server has finished the requests still in flight when wrk stopped (it keeps working
    on them after the connections close), so that they do not count against the next figure."""
    if pid is None or _cpu_ticks(pid) is None:
        time.sleep(1.0)
        return
    hz = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + timeout
    before, quiet = _cpu_ticks(pid), 0
    while time.monotonic() < deadline and quiet < 2:  # two quiet half-seconds in a row
        time.sleep(0.5)
        now = _cpu_ticks(pid)
        if before is None or now is None:
            return
        quiet = quiet + 1 if now - before <= 0.05 * 0.5 * hz else 0  # under 5% of a core
        before = now


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------- seeding (in-process, same database)
class SeedStripe:
    """Stands in for Stripe while seeding: the payment rows get ``pi_…`` ids, as after a real handoff."""

    name = "stripe"
    publishable_key = None

    async def create_intent(self, *, amount: int, currency: str, metadata: Any, idempotency_key: str) -> Intent:
        intent_id = "pi_bench" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
        return Intent(
            intent_id, "requires_payment_method", amount, currency, 0, f"{intent_id}_secret_x", dict(metadata)
        )

    async def retrieve_intent(self, intent_id: str) -> Intent:
        raise NotImplementedError

    async def cancel_intent(self, intent_id: str, *, idempotency_key: str) -> Intent:
        raise NotImplementedError

    async def refund(self, intent_id: str, *, amount: int, idempotency_key: str, reason: str | None) -> Refund:
        raise NotImplementedError

    def verify_webhook(self, payload: bytes, signature: str | None) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class StripeOrder:
    """An order awaiting payment whose payment row carries a Stripe intent id."""

    order_id: str
    number: str
    attempt: int
    intent_id: str
    amount: int
    currency: str


async def _bounded(jobs: Sequence[Any], concurrency: int = 16) -> list[Any]:
    limit = asyncio.Semaphore(concurrency)

    async def one(job: Any) -> Any:
        async with limit:
            return await job

    return list(await asyncio.gather(*(one(job) for job in jobs)))


async def mint_links(services: Services, count: int, label: str) -> list[str]:
    """``count`` checkout links, each with its own order; returns their tokens."""

    async def one(i: int) -> str:
        sku = CATALOG[i % len(CATALOG)].sku
        key = f"web-bench-{label}-{i}"
        out = await services.links.create_link(
            MERCHANT,
            CreateLink(sku=sku, quantity=1, idempotency_key=key),
        )
        assert out.url is not None
        return out.url.rsplit("/", 1)[1]

    return await _bounded([one(i) for i in range(count)])


async def seed(settings: Settings, resume_tokens: int, webhook_orders: int) -> tuple[list[str], list[StripeOrder]]:
    services = build_services(settings)
    try:
        await migrate.upgrade(services.db)
        now = utc_now()
        await services.db.write(lambda conn: upsert_catalog(conn, CATALOG, now))
        tokens = await mint_links(services, resume_tokens, "resume")
        await _bounded([services.checkout.open(token) for token in tokens])  # claimed: later opens resume
        stripe_services = build_services(settings, db=services.db, gateway=SeedStripe())  # type: ignore[arg-type]

        async def stripe_order(i: int) -> StripeOrder:
            sku = CATALOG[i % len(CATALOG)].sku
            order = await stripe_services.orders.create(
                MERCHANT,
                CreateOrder(
                    idempotency_key=f"web-bench-stripe-{i}",
                    items=[(sku, 1)],
                ),
            )
            intent, attempt = await stripe_services.payments.ensure_intent(order.order_id)
            return StripeOrder(order.order_id, order.number, attempt, intent.id, intent.amount, intent.currency)

        made = await _bounded([stripe_order(i) for i in range(webhook_orders)])
        return tokens, made
    finally:
        await services.close()


async def mint_more(settings: Settings, count: int, label: str) -> list[str]:
    services = build_services(settings)
    try:
        return await mint_links(services, count, label)
    finally:
        await services.close()


async def db_counts(settings: Settings) -> dict[str, int]:
    services = build_services(settings)
    try:

        def run(conn: Any) -> dict[str, int]:
            return {
                "sessions": conn.execute(select(func.count()).select_from(checkout_sessions)).scalar_one(),
                "events": conn.execute(select(func.count()).select_from(gateway_events)).scalar_one(),
                "paid": conn.execute(
                    select(func.count()).select_from(orders).where(orders.c.status == "paid")
                ).scalar_one(),
            }

        return await services.db.read(run)
    finally:
        await services.close()


def settled_counts(settings: Settings, timeout: float = 15.0) -> dict[str, int]:
    """The counts once the server has finished the requests still in flight when wrk stopped."""
    counts = asyncio.run(db_counts(settings))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        again = asyncio.run(db_counts(settings))
        if again == counts:
            return counts
        counts = again
    return counts


async def recorded_event_ids(settings: Settings, prefix: str) -> set[str]:
    services = build_services(settings)
    try:
        query = select(gateway_events.c.event_id).where(gateway_events.c.event_id.like(f"{prefix}%"))
        return set(await services.db.read(lambda conn: conn.execute(query).scalars().all()))
    finally:
        await services.close()


# ---------------------------------------------------------------- signed Stripe events
def sign(payload: bytes, timestamp: int) -> str:
    """Stripe's scheme: ``t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<payload>" with the webhook secret>``."""
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def event_payload(event_id: str, kind: str, order: StripeOrder, created: int) -> bytes:
    succeeded = kind == "payment_intent.succeeded"
    intent = {
        "id": order.intent_id,
        "object": "payment_intent",
        "amount": order.amount,
        "amount_capturable": 0,
        "amount_received": order.amount if succeeded else 0,
        "capture_method": "automatic_async",
        "client_secret": f"{order.intent_id}_secret_{secrets.token_hex(8)}",
        "confirmation_method": "automatic",
        "created": created - 60,
        "currency": order.currency.lower(),
        "latest_charge": f"ch_bench{order.intent_id[8:]}" if succeeded else None,
        "livemode": False,
        "metadata": {"order_id": order.order_id, "attempt": str(order.attempt), "number": order.number},
        "payment_method": f"pm_bench{order.intent_id[8:]}",
        "payment_method_types": ["card"],
        "status": "succeeded" if succeeded else "processing",
    }
    event = {
        "id": event_id,
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": {"object": intent},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }
    return json.dumps(event, separators=(",", ":")).encode()


def write_events(path: Path, events: Sequence[tuple[str, bytes]]) -> None:
    """One event a line: ``<Stripe-Signature>\\t<payload>`` (compact JSON has no raw tab or newline)."""
    now = int(time.time())
    with path.open("wb") as out:
        for _event_id, payload in events:
            out.write(sign(payload, now).encode() + b"\t" + payload + b"\n")


def make_events(prefix: str, count: int, stripe_orders: Sequence[StripeOrder]) -> list[tuple[str, bytes]]:
    """``count`` unique events: ``processing`` then ``succeeded`` for each order in turn (each order paid
    once), then again with new ids once every order had its pair (the repeat paths: ``already paid``,
    ``ignored processing after succeeded``)."""
    created = int(time.time())
    events = []
    for n in range(count):
        pair, second = divmod(n, 2)
        kind = "payment_intent.succeeded" if second else "payment_intent.processing"
        event_id = f"{prefix}{n:07d}{secrets.token_hex(6)}"
        events.append((event_id, event_payload(event_id, kind, stripe_orders[pair % len(stripe_orders)], created)))
    return events


# ---------------------------------------------------------------- wrk
LUA_COMMON = """
local counter = 0
local threads = {}
local NTHREADS = %(threads)d

function setup(thread)
  thread:set("tid", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  reqs = {}
  local n = 0
  for line in io.lines("%(file)s") do
    if n %% NTHREADS == tid then table.insert(reqs, build(line)) end
    n = n + 1
  end
  idx = 0
  wraps = 0
  sent = 0
end

function request()
  idx = idx + 1
  if idx > #reqs then
    idx = 1
    wraps = wraps + 1
  end
  sent = sent + 1
  return reqs[idx]
end

function done(summary, latency, requests)
  local s, w = 0, 0
  for _, t in ipairs(threads) do
    s = s + t:get("sent")
    w = w + t:get("wraps")
  end
  io.write(string.format("BENCH sent=%%d wraps=%%d\\n", s, w))
end
"""

LUA_GET_TOKEN = """
function build(token)
  return wrk.format("GET", "/checkout/" .. token, {["Accept"] = "application/json"})
end
"""

LUA_POST_EVENT = """
function build(line)
  local tab = string.find(line, "\\t", 1, true)
  local sig = string.sub(line, 1, tab - 1)
  local body = string.sub(line, tab + 1)
  return wrk.format("POST", "/webhooks/stripe", {["Content-Type"] = "application/json", ["Stripe-Signature"] = sig}, body)
end
"""


def lua_script(path: Path, data: Path, builder: str, threads: int) -> Path:
    path.write_text(builder + LUA_COMMON % {"threads": threads, "file": str(data)})
    return path


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    sent: int | None = None
    wraps: int | None = None
    raw: str = ""
    cpu_ms: float | None = None  # the server's CPU time (every thread) per answered request


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(out: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    total = re.search(r"(\d+) requests in", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bench = re.search(r"BENCH sent=(\d+) wraps=(\d+)", out)
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=_ms(p50.group(1)) if p50 else float("nan"),
        p99_ms=_ms(p99.group(1)) if p99 else float("nan"),
        requests=int(total.group(1)) if total else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in sock.groups()) if sock else 0,
        sent=int(bench.group(1)) if bench else None,
        wraps=int(bench.group(2)) if bench else None,
        raw=out,
    )


@dataclass
class Wrk:
    binary: str
    threads: int
    connections: int
    duration: float

    def run(self, url: str, *, script: Path | None = None, duration: float | None = None) -> WrkResult:
        seconds = max(1, round(duration or self.duration))
        argv = [self.binary, f"-t{self.threads}", f"-c{self.connections}", f"-d{seconds}s", "--timeout", "5s"]
        argv += ["--latency"] + (["-s", str(script)] if script else []) + [url]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
        return parse_wrk(done.stdout)


# ---------------------------------------------------------------- optional: where the server's time goes (py-spy)
# A sample is attributed to the innermost frame that belongs to one of these groups (first match wins).
PROFILE_GROUPS = (
    ("Stripe SDK (construct_event, StripeObject)", ("/stripe/",)),
    ("SQL: SQLAlchemy + driver", ("/sqlalchemy/", "/aiosqlite/", "/asyncpg/", "/greenlet/", "/sqlite3/")),
    ("pydantic (views, settings)", ("/pydantic/", "/pydantic_core/")),
    ("jinja2", ("/jinja2/",)),
    ("thread hand-off (anyio worker threads, locks)", ("/anyio/", "/queue.py", "/threading.py")),
    (
        "mcp_checkout/store/db.py itself (transaction runner; mostly waiting for the write lock)",
        ("/mcp_checkout/store/db.py",),
    ),
    ("mcp_checkout code", ("/mcp_checkout/",)),
    (
        "HTTP + event loop (uvicorn, h11, starlette, asyncio)",
        ("/uvicorn/", "/h11/", "/starlette/", "/asyncio/", "/selectors.py"),
    ),
)


def summarize_profile(path: Path, seconds: float, rate: int) -> list[str]:
    """Shares of the GIL-holding samples by group, the GIL's busy share, and the top mcp_checkout frames."""
    groups: dict[str, int] = {}
    ours: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")[1:]  # the first is the thread's name
        group = "other"
        for frame in reversed(frames):
            where = "/" + frame.rpartition(" (")[2]  # py-spy shortens site-packages paths to "pkg/module.py"
            found = next((name for name, marks in PROFILE_GROUPS if any(mark in where for mark in marks)), None)
            if found:
                group = found
                break
        groups[group] = groups.get(group, 0) + n
        seen = set()
        for frame in frames:
            if "mcp_checkout/" in frame and "mcp_checkout/cli.py" not in frame:
                name = re.sub(r":\d+\)$", ")", frame)
                if name not in seen:
                    ours[name] = ours.get(name, 0) + n
                    seen.add(name)
    if not total:
        return ["(no samples)"]
    lines = [f"a thread held the GIL in {total / (seconds * rate):.0%} of the samples (py-spy --gil); of those:"]
    lines += [f"  {n / total:5.1%}  {name}" for name, n in sorted(groups.items(), key=lambda kv: -kv[1])]
    lines.append("  inclusive, mcp_checkout frames:")
    top = sorted(ours.items(), key=lambda kv: -kv[1])[:8]
    lines += [f"  {n / total:5.1%}  {name}" for name, n in top]
    return lines


# ---------------------------------------------------------------- the run
@dataclass(frozen=True)
class Baseline:
    rps: float
    cpu_ms: float | None


@dataclass
class Row:
    section: str
    endpoint: str
    result: WrkResult | None
    baseline: Baseline | None = None  # the /healthz figures this row is compared with
    target: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.result is None or self.baseline is None or not self.baseline.rps:
            return None
        return self.result.rps / self.baseline.rps

    @property
    def cpu_ratio(self) -> float | None:
        """The same ratio from CPU time per request: steadier than req/s on a shared machine (other
        processes' load slows both, but costs the server no CPU), and what a dedicated core would give."""
        if self.result is None or self.baseline is None or not self.baseline.cpu_ms or not self.result.cpu_ms:
            return None
        return self.baseline.cpu_ms / self.result.cpu_ms

    @property
    def verdict(self) -> str:
        if self.result is not None and (self.result.non_2xx or self.result.socket_errors):
            return "ERROR"
        if self.target is None or self.ratio is None:
            return "-"
        return "PASS" if self.ratio >= self.target else "MISS"


@dataclass
class Backend:
    label: str
    settings: Settings  # where the seeding and the checks connect
    server_args: list[str]  # how the server is told the same database
    server_env: dict[str, str]


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path, procs: Processes, wrk: Wrk) -> None:
        self.args = args
        self.workdir = workdir
        self.procs = procs
        self.wrk = wrk
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.profiles: list[tuple[str, list[str]]] = []
        self.server_pid: int | None = None
        self.section = ""

    # -------------------------------------------------------- server process
    def _server(self, backend: Backend, stripe: bool, name: str) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith("MCP_CHECKOUT_")}
        env.update(backend.server_env)
        if stripe:
            env.update(
                MCP_CHECKOUT_STRIPE_SECRET_KEY=STRIPE_KEY,
                MCP_CHECKOUT_STRIPE_PUBLISHABLE_KEY="pk_test_webbench",
                MCP_CHECKOUT_STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
                # A closed port: if the webhook handler called the Stripe API, its requests would fail.
                MCP_CHECKOUT_STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}",
                MCP_CHECKOUT_STRIPE_MAX_NETWORK_RETRIES="0",
            )
        argv = [str(VENV_BIN / "mcp-checkout"), *backend.server_args, "serve", "--http", "--port", str(port)]
        log_path = self.workdir / f"{name}.log"
        proc = self.procs.start(argv, env=env, log_path=log_path)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz", proc, log_path)
        log(f"server up: {' '.join(argv[1:])} (pid {proc.pid}{', Stripe test mode' if stripe else ''})")
        self.server_pid = proc.pid
        self.section = f"{backend.label}{', Stripe mode' if stripe else ''}"
        return proc, base

    def _measure(self, label: str, url: str, script: Path | None = None, *, warmup: bool = False) -> WrkResult:
        if warmup:
            self.wrk.run(url, script=script, duration=min(2.0, self.wrk.duration))
            wait_idle(self.server_pid)
        spy = None
        if self.args.py_spy and self.server_pid:
            rate = 100
            out = self.workdir / f"profile-{len(self.profiles)}.raw"
            seconds = max(1, round(self.wrk.duration) - 1)
            argv = [self.args.py_spy, "record", "-p", str(self.server_pid), "-d", str(seconds), "-r", str(rate)]
            argv += ["--gil", "--nonblocking", "-t", "-f", "raw", "-o", str(out)]
            spy = self.procs.start(argv, log_path=self.workdir / "py-spy.log")
        ticks = _cpu_ticks(self.server_pid) if self.server_pid else None
        result = self.wrk.run(url, script=script)
        wait_idle(self.server_pid)
        after = _cpu_ticks(self.server_pid) if self.server_pid else None
        if ticks is not None and after is not None and result.requests:
            result.cpu_ms = (after - ticks) * 1000 / os.sysconf("SC_CLK_TCK") / result.requests
        if spy is not None:
            spy.wait(timeout=60)
            self.procs.stop(spy)
            summary = summarize_profile(out, seconds, rate) if out.exists() else ["(py-spy wrote nothing)"]
            self.profiles.append((f"{self.section}: {label} ({result.rps:,.0f} req/s)", summary))
        log(
            f"{label}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms"
            + (f", {result.cpu_ms:.2f} CPU ms/request" if result.cpu_ms is not None else "")
            + (f", {result.non_2xx} non-2xx" if result.non_2xx else "")
            + (f", {result.socket_errors} socket errors" if result.socket_errors else "")
        )
        return result

    def _healthz_rows(self, section: str, before: WrkResult, after: WrkResult) -> Baseline:
        cpu = [r.cpu_ms for r in (before, after) if r.cpu_ms]
        baseline = Baseline(statistics.mean([before.rps, after.rps]), statistics.mean(cpu) if cpu else None)
        self.rows.append(Row(section, "GET /healthz (before)", before, baseline))
        self.rows.append(Row(section, "GET /healthz (after)", after, baseline))
        drift = abs(before.rps - after.rps) / baseline.rps
        if drift > 0.15:
            self.notes.append(
                f"{section}: /healthz moved {drift:.0%} between the runs before and after (shared machine)"
            )
        return baseline

    # -------------------------------------------------------- phases
    def run_backend(self, backend: Backend) -> None:
        args = self.args
        section = backend.label
        links, webhooks = args.only in (None, "links"), args.only in (None, "webhooks")
        resume_count = args.resume_tokens if links else 0
        order_count = args.webhook_orders if webhooks else 0
        log(f"{section}: seeding {resume_count} claimed links and {order_count} Stripe orders")
        started = time.perf_counter()
        resume_tokens, stripe_orders = asyncio.run(seed(backend.settings, resume_count, order_count))
        log(f"{section}: seeded in {time.perf_counter() - started:.1f}s")
        if links:
            self._links(backend, section, resume_tokens)
        if webhooks:
            self._webhooks(backend, section, stripe_orders)

    def _links(self, backend: Backend, section: str, resume_tokens: list[str]) -> None:
        threads = self.wrk.threads
        proc, base = self._server(backend, stripe=False, name=f"{section}-offline")
        try:
            health_before = self._measure("healthz", f"{base}/healthz", warmup=True)
            tokens_file = self.workdir / "resume_tokens.txt"
            tokens_file.write_text("\n".join(resume_tokens) + "\n")
            resume_lua = lua_script(self.workdir / "resume.lua", tokens_file, LUA_GET_TOKEN, threads)
            resume = self._measure("resume", f"{base}/checkout/", resume_lua, warmup=True)

            # The claim pool: every token opened at most once. A first open does more work than a resume,
            # but the two rates are close and noisy: 2x the resume rate for the run's length, plus slack
            # (a pool that runs out is reported in the table, never silently counted).
            pool = min(int(resume.rps * self.wrk.duration * 2) + 500, self.args.max_claim_tokens)
            log(f"{section}: minting {pool:,} fresh links for the claim run")
            started = time.perf_counter()
            fresh = asyncio.run(mint_more(backend.settings, pool, f"claim-{secrets.token_hex(4)}"))
            log(f"{section}: minted in {time.perf_counter() - started:.1f}s")
            claim_file = self.workdir / "claim_tokens.txt"
            claim_file.write_text("\n".join(fresh) + "\n")
            claim_lua = lua_script(self.workdir / "claim.lua", claim_file, LUA_GET_TOKEN, threads)
            sessions_before = settled_counts(backend.settings)["sessions"]
            claim = self._measure("claim", f"{base}/checkout/", claim_lua)
            sessions_after = settled_counts(backend.settings)["sessions"]
            health_after = self._measure("healthz", f"{base}/healthz")
        finally:
            self.procs.stop(proc)
        baseline = self._healthz_rows(section, health_before, health_after)
        self.rows.append(
            Row(
                section,
                f"GET /checkout/{{token}} resume ({len(resume_tokens)} tokens)",
                resume,
                baseline,
                RESUME_TARGET,
            )
        )
        claim_row = Row(
            section, f"GET /checkout/{{token}} first open (claim; pool {pool:,})", claim, baseline, CLAIM_TARGET
        )
        claimed = sessions_after - sessions_before
        claim_row.notes.append(f"{claimed:,} sessions created")
        if claim.wraps:
            claim_row.notes.append("POOL EXHAUSTED: the figure includes resumes; raise --max-claim-tokens")
        if claimed < claim.requests * 0.98:
            claim_row.notes.append(f"only {claimed:,} claims for {claim.requests:,} requests")
        self.rows.append(claim_row)

    def _webhooks(self, backend: Backend, section: str, stripe_orders: list[StripeOrder]) -> None:
        threads = self.wrk.threads
        proc, base = self._server(backend, stripe=True, name=f"{section}-stripe")
        try:
            health_before = self._measure("healthz (Stripe mode)", f"{base}/healthz", warmup=True)
            # Warm the webhook path on events of its own (they are then redeliveries: harmless).
            warm_file = self.workdir / "warm_events.txt"
            write_events(warm_file, make_events("evt_warm_", 200, stripe_orders[:50]))
            warm_lua = lua_script(self.workdir / "warm.lua", warm_file, LUA_POST_EVENT, threads)
            self.wrk.run(f"{base}/webhooks/stripe", script=warm_lua, duration=min(2.0, self.wrk.duration))
            wait_idle(self.server_pid)

            # Unique events: the /healthz rate bounds the webhook rate, so that many never wrap.
            count = min(max(int(health_before.rps * self.wrk.duration * 1.2), 2_000), self.args.max_events)
            prefix = f"evt_bench_{secrets.token_hex(3)}_"
            events = make_events(prefix, count, stripe_orders)
            unique_file = self.workdir / "unique_events.txt"
            write_events(unique_file, events)  # signed now: Stripe's tolerance is 300 s
            unique_lua = lua_script(self.workdir / "unique.lua", unique_file, LUA_POST_EVENT, threads)
            counts_before = settled_counts(backend.settings)
            unique = self._measure("webhook unique", f"{base}/webhooks/stripe", unique_lua)
            counts_mid = settled_counts(backend.settings)

            # Redeliveries: the events just processed, re-signed with a fresh timestamp as Stripe does.
            delivered = asyncio.run(recorded_event_ids(backend.settings, prefix))
            redeliveries = [event for event in events if event[0] in delivered]
            dup_file = self.workdir / "dup_events.txt"
            write_events(dup_file, redeliveries)
            dup_lua = lua_script(self.workdir / "dup.lua", dup_file, LUA_POST_EVENT, threads)
            dup = self._measure("webhook redelivery", f"{base}/webhooks/stripe", dup_lua)
            counts_after = settled_counts(backend.settings)
            health_after = self._measure("healthz (Stripe mode)", f"{base}/healthz")
        finally:
            self.procs.stop(proc)
        section = f"{section}, Stripe mode"
        baseline = self._healthz_rows(section, health_before, health_after)
        recorded = counts_mid["events"] - counts_before["events"]
        paid = counts_mid["paid"] - counts_before["paid"]
        row = Row(section, f"POST /webhooks/stripe, unique events ({count:,} signed)", unique, baseline, WEBHOOK_TARGET)
        row.notes.append(f"{recorded:,} events recorded, {paid:,} orders paid")
        if unique.wraps:
            row.notes.append("EVENTS EXHAUSTED: the figure includes redeliveries; raise --max-events")
        self.rows.append(row)
        dup_row = Row(section, f"POST /webhooks/stripe, redeliveries ({len(redeliveries):,} ids)", dup, baseline)
        added = counts_after["events"] - counts_mid["events"]
        dup_row.notes.append("none recorded again" if added == 0 else f"BUG: {added} redeliveries recorded")
        self.rows.append(dup_row)

    # -------------------------------------------------------- the generator's ceiling
    def ceiling(self, nginx: str | None) -> None:
        section = "Generator ceiling"
        self.server_pid = None  # never profiled
        if nginx:
            prefix = self.workdir / "nginx"
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
            argv = [nginx, "-p", str(prefix), "-e", str(prefix / "logs" / "error.log"), "-c", str(conf)]
            label = "nginx 'ok' (1 worker): wrk's ceiling"
        else:
            port = free_port()
            argv = [sys.executable, "-c", MINIMAL_ASYNCIO_SERVER, str(port)]
            label = "minimal asyncio server 'ok': wrk's ceiling is at least this"
            self.notes.append("nginx not available: the ceiling is a lower bound (install nginx-light for a real one)")
        log_path = self.workdir / "ceiling.log"
        proc = self.procs.start(argv, log_path=log_path)
        try:
            wait_http(f"http://127.0.0.1:{port}/", proc, log_path)
            self.rows.append(Row(section, label, self._measure("ceiling", f"http://127.0.0.1:{port}/", warmup=True)))
        finally:
            self.procs.stop(proc)

        port = free_port()
        argv = [str(VENV_BIN / "python"), "-c", BARE_STARLETTE, str(port)]
        proc = self.procs.start(argv, log_path=self.workdir / "starlette.log")
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", proc, self.workdir / "starlette.log")
            result = self._measure("bare starlette", f"http://127.0.0.1:{port}/healthz", warmup=True)
            self.rows.append(Row(section, "bare Starlette /healthz on uvicorn (reference)", result))
        finally:
            self.procs.stop(proc)


MINIMAL_ASYNCIO_SERVER = """
import asyncio, sys
RESPONSE = b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nContent-Type: text/plain\\r\\n\\r\\nok"
class P(asyncio.Protocol):
    def connection_made(self, t): self.t, self.buf = t, b""
    def data_received(self, data):
        self.buf += data
        n = self.buf.count(b"\\r\\n\\r\\n")
        if n:
            self.buf = self.buf.rsplit(b"\\r\\n\\r\\n", 1)[1]
            self.t.write(RESPONSE * n)
async def main():
    server = await asyncio.get_running_loop().create_server(P, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
asyncio.run(main())
"""

BARE_STARLETTE = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
async def healthz(request): return JSONResponse({"status": "ok"})
app = Starlette(routes=[Route("/healthz", healthz)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, lifespan="off")
"""


# ---------------------------------------------------------------- the table
def table(rows: Sequence[Row]) -> str:
    header = [
        "endpoint",
        "req/s",
        "p50 ms",
        "p99 ms",
        "vs /healthz",
        "target",
        "verdict",
        "CPU ms/req",
        "by CPU",
        "notes",
    ]
    sections: list[str] = []
    for row in rows:
        if row.section not in sections:
            sections.append(row.section)
    out: list[str] = []
    for section in sections:
        lines: list[list[str]] = []
        for row in (r for r in rows if r.section == section):
            result = row.result
            notes = list(row.notes)
            if result is not None and result.non_2xx:
                notes.append(f"{result.non_2xx} non-2xx")
            if result is not None and result.socket_errors:
                notes.append(f"{result.socket_errors} socket errors")
            lines.append(
                [
                    row.endpoint,
                    f"{result.rps:,.0f}" if result else "-",
                    f"{result.p50_ms:.1f}" if result else "-",
                    f"{result.p99_ms:.1f}" if result else "-",
                    f"{row.ratio:.2f}" if row.ratio is not None else "-",
                    f">= {row.target:.2f}" if row.target is not None else "-",
                    row.verdict,
                    f"{result.cpu_ms:.2f}" if result and result.cpu_ms else "-",
                    f"{row.cpu_ratio:.2f}" if row.cpu_ratio is not None else "-",
                    "; ".join(notes),
                ]
            )
        widths = [max(len(header[i]), *(len(line[i]) for line in lines)) for i in range(len(header))]
        out.append(f"\n{section}")
        out.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
        out.append("  ".join("-" * w for w in widths))
        for line in lines:
            cells = [
                cell.rjust(w) if 0 < i < 6 or i in (7, 8) else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            ]
            out.append("  ".join(cells).rstrip())
    return "\n".join(out)


# ---------------------------------------------------------------- PostgreSQL database of our own
def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_admin(sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(_dsn(PG_ADMIN_URL), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    name = f"mcp_checkout_webbench_{os.getpid()}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# ---------------------------------------------------------------- main
def _git_state() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "mcp_checkout"],
            capture_output=True,
            text=True,
            check=False,
        )
        return head.stdout.strip() + (" + uncommitted changes in mcp_checkout/" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=50, help="concurrent connections (default 50)")
    parser.add_argument(
        "--threads", type=int, default=1, help="wrk threads (default 1: 2 cores are shared with the server)"
    )
    parser.add_argument("--resume-tokens", type=int, default=200, help="claimed links the resume run cycles through")
    parser.add_argument("--webhook-orders", type=int, default=2_000, help="orders with a Stripe intent for the events")
    parser.add_argument("--max-claim-tokens", type=int, default=30_000, help="upper bound on the claim pool")
    parser.add_argument("--max-events", type=int, default=120_000, help="upper bound on unique webhook events")
    parser.add_argument("--pg", action="store_true", help=f"also run on PostgreSQL ({PG_ADMIN_URL}, own database)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run")
    parser.add_argument(
        "--only", choices=["links", "webhooks"], help="measure only the checkout link figures, or only the webhook ones"
    )
    parser.add_argument(
        "--no-ceiling", action="store_true", help="skip the generator's ceiling (nginx, bare Starlette)"
    )
    parser.add_argument("--no-install", action="store_true", help="never apt-get install wrk / nginx-light")
    parser.add_argument(
        "--py-spy",
        metavar="PATH",
        help="profile the server with this py-spy during every figure and print where the time goes "
        "(e.g. `python3 -m venv /tmp/spy && /tmp/spy/bin/pip install py-spy`, then --py-spy /tmp/spy/bin/py-spy); "
        "the figures of a profiled run are a little lower",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, data, lua)")
    args = parser.parse_args(argv)

    wrk = Wrk(find_wrk(not args.no_install), args.threads, args.connections, args.duration)
    nginx = find_nginx(not args.no_install)
    workdir = Path(tempfile.mkdtemp(prefix="mcp_checkout_webbench_"))
    procs = Processes()
    bench = Bench(args, workdir, procs, wrk)

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    started = time.perf_counter()
    try:
        if not args.no_sqlite:
            data_dir = workdir / "data"
            bench.run_backend(Backend("SQLite", Settings(data_dir=data_dir), ["--data-dir", str(data_dir)], {}))
        if args.pg:
            with pg_database() as url:
                settings = Settings(data_dir=workdir / "pg-data", database_url=url)
                bench.run_backend(
                    Backend(
                        "PostgreSQL",
                        settings,
                        ["--data-dir", str(workdir / "pg-data")],
                        {"MCP_CHECKOUT_DATABASE_URL": url},
                    )
                )
        if not args.no_ceiling:
            bench.ceiling(nginx)
    finally:
        procs.stop_all()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    ceiling_rows = [row for row in bench.rows if row.section == "Generator ceiling" and row.result]
    ceiling = ceiling_rows[0].result.rps if ceiling_rows and ceiling_rows[0].result else None
    print(
        f"mcp-checkout web benchmark: {_git_state()}; wrk -t{args.threads} -c{args.connections} "
        f"-d{args.duration:g}s per figure; {os.cpu_count()} CPUs (shared); {time.perf_counter() - started:.0f}s in all"
    )
    print(table(bench.rows))
    print()
    if ceiling:
        fastest = max(
            (row.result.rps for row in bench.rows if row.result and row.section != "Generator ceiling"), default=0
        )
        print(
            f"Generator ceiling: wrk reached {ceiling:,.0f} req/s on this machine against a static 'ok' "
            f"({fastest / ceiling:.0%} of it used by the fastest server figure): wrk is not the bottleneck."
            if fastest < ceiling * 0.5
            else f"Generator ceiling: {ceiling:,.0f} req/s; the fastest figure is {fastest / ceiling:.0%} of it."
        )
    for title, summary in bench.profiles:
        print(f"\nprofile, {title}")
        for line in summary:
            print(f"  {line}")
    for note in bench.notes:
        print(f"note: {note}")
    misses = [row for row in bench.rows if row.verdict in ("MISS", "ERROR")]
    return 1 if any(row.verdict == "ERROR" for row in misses) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted: the server, wrk and the temporary files are cleaned up")
        sys.exit(130)
