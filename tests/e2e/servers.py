"""Real `mcp-checkout` server processes for end-to-end tests: free ports, the CLI, start, readiness, kill.

Every process is started in its own session (process group), so teardown can SIGKILL the whole group
(`serve --http --workers N` forks workers) and nothing outlives a test. Server output goes to a log file
that failure messages quote.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy.engine import make_url

from tests.support import free_port

CLI = Path(sys.executable).with_name("mcp-checkout")
CLI_TIMEOUT = 90


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without any MCP_CHECKOUT_* setting of the caller's, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_CHECKOUT_")}
    return env | dict(extra or {})


def cli(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `mcp-checkout ARGS` to completion; fail the test with its stderr if it fails."""
    done = subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, timeout=CLI_TIMEOUT, env=dict(env), check=False
    )
    if done.returncode != 0:
        pytest.fail(f"mcp-checkout {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done


def cli_parallel(env: Mapping[str, str], *commands: Sequence[str]) -> list[subprocess.CompletedProcess[str]]:
    """Several CLI commands at once (each one is a Python start-up: seconds on a loaded machine)."""
    processes = [
        subprocess.Popen([str(CLI), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(env))
        for args in commands
    ]
    results = []
    for args, process in zip(commands, processes, strict=True):
        try:
            stdout, stderr = process.communicate(timeout=CLI_TIMEOUT)
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            pytest.fail(f"mcp-checkout {' '.join(args)} did not finish in {CLI_TIMEOUT}s")
        if process.returncode != 0:
            pytest.fail(f"mcp-checkout {' '.join(args)} exited {process.returncode}:\n{stderr[-3000:]}")
        results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return results


def create_keys(env: Mapping[str, str], *specs: tuple[str, str]) -> list[str]:
    """``(name, scope)`` → API keys, created with `mcp-checkout keys create` (the key is stdout's only line)."""
    done = cli_parallel(env, *(["keys", "create", "--name", name, "--scope", scope] for name, scope in specs))
    keys = [result.stdout.strip() for result in done]
    assert all(key.startswith("mcpk_") for key in keys), keys
    return keys


def write_catalog(path: Path, rows: Sequence[tuple[str, str, str, int]]) -> Path:
    """A catalog CSV of ``(product name, sku, price, stock)`` rows for `mcp-checkout import-catalog`."""
    lines = ["product_name,sku_code,unit_price,quantity_on_hand"]
    lines += [f"{name},{sku},{price},{stock}" for name, sku, price, stock in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Server:
    """One `mcp-checkout serve --http` process (or a `--workers N` supervisor)."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def client(self, key: str | None, mode: str = "legacy", timeout: float = 60) -> Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        http = httpx2.AsyncClient(headers=headers, timeout=timeout)
        return Client(streamable_http_client(f"{self.base}/mcp", http_client=http), mode=mode)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def sigkill(self) -> None:
        """SIGKILL the server process itself (not a graceful shutdown)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, a short wait for a graceful exit, then SIGKILL the whole process group."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # workers of a supervisor, or a stuck server
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def spawn(env: Mapping[str, str], log: Path, *serve_args: str, port: int | None = None) -> Server:
    """Start `mcp-checkout serve --http --port P SERVE_ARGS` without waiting for it."""
    port = port or free_port()
    command = [str(CLI), "serve", "--http", "--host", "127.0.0.1", "--port", str(port), *serve_args]
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, env=dict(env), start_new_session=True
        )
    return Server(process, port, log)


def wait_ready(servers: Sequence[Server], timeout: float = 90) -> None:
    """Until every server's /readyz answers 200 (database reachable, schema current); fail with its log if not."""
    deadline = time.monotonic() + timeout
    pending = list(servers)
    while pending:
        server = pending[0]
        if not server.alive():
            pytest.fail(f"server on port {server.port} exited {server.process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.base}/readyz", timeout=2).status_code == 200:
                pending.pop(0)
                continue
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"server on port {server.port} not ready after {timeout:.0f}s:\n{server.log_tail()}")
        time.sleep(0.2)


@contextlib.contextmanager
def running(
    env: Mapping[str, str], logs: Path, count: int, *serve_args: str, name: str = "server"
) -> Iterator[list[Server]]:
    """``count`` servers on one database (given by ``env``), ready, and always stopped afterwards."""
    logs.mkdir(parents=True, exist_ok=True)
    servers: list[Server] = []
    try:
        for index in range(count):
            servers.append(spawn(env, logs / f"{name}-{index}.log", *serve_args))
        wait_ready(servers)
        yield servers
    finally:
        for server in servers:
            server.stop()


# ---------------------------------------------------------------- PgBouncer in front of PostgreSQL
PGBOUNCER = os.environ.get("MCP_CHECKOUT_PGBOUNCER", "/usr/sbin/pgbouncer")


@contextlib.contextmanager
def pgbouncer(database_url: str) -> Iterator[str]:
    """A transaction-pooling PgBouncer in front of ``database_url``'s server; yields the same URL through it.
    scripts/services.sh installs Debian's pgbouncer when it is missing; without it the test fails."""
    if not Path(PGBOUNCER).exists():
        pytest.fail(f"pgbouncer is not installed at {PGBOUNCER} (scripts/services.sh installs Debian's pgbouncer)")
    upstream = make_url(database_url)
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="mcpco-pgbouncer-"))
    if os.geteuid() == 0:  # pgbouncer refuses to run as root: it runs as postgres and writes its log here
        shutil.chown(workdir, "postgres")
    (workdir / "userlist.txt").write_text(f'"{upstream.username}" ""\n')
    config = workdir / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = host={upstream.host} port={upstream.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {workdir / 'userlist.txt'}\n"
        "pool_mode = transaction\nmax_client_conn = 1000\ndefault_pool_size = 20\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
        f"logfile = {workdir / 'pgbouncer.log'}\n"
    )
    for path in workdir.iterdir():
        path.chmod(0o644)
    command = [PGBOUNCER, *(["-u", "postgres"] if os.geteuid() == 0 else []), str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 20
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            break
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"pgbouncer did not start: {process.stderr.read().decode()[-2000:] if process.stderr else ''}")
        time.sleep(0.1)
    try:
        yield upstream.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
        shutil.rmtree(workdir, ignore_errors=True)
