"""`serve --http` lifecycle: SIGTERM lets a running tool call finish and answer its caller, an idle
server (with an open GET notification stream) still stops promptly, and a stalled request body is dropped."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import anyio
import httpx
import pytest

from tests.e2e.servers import Server, create_keys, server_env, spawn, wait_ready
from tests.support import tool_data

ROWS = 150_000  # about 3.9 MB of CSV text: an import that runs for seconds on this machine


def _catalog_text(rows: int) -> str:
    lines = ["product_name,sku_code,unit_price,quantity_on_hand"]
    lines += [f"Product {i},SKU-{i:06d},{i % 90 + 1}.00,{i % 7}" for i in range(rows)]
    return "\n".join(lines) + "\n"


def _start(tmp_path: Path, **extra: str) -> tuple[Server, str]:
    env = server_env({"MCP_CHECKOUT_DATA_DIR": str(tmp_path), **extra})
    (merchant,) = create_keys(env, ("ops", "merchant"))
    server = spawn(env, tmp_path / "server.log")
    wait_ready([server])
    return server, merchant


@pytest.mark.parametrize(
    ("mode", "stateless"), [("legacy", "false"), ("auto", "true")], ids=["stateful-2025-11-25", "stateless-modern"]
)
async def test_sigterm_during_a_long_import_still_answers_the_caller(tmp_path: Path, mode: str, stateless: str) -> None:
    # The grace period is the merchant's setting; a long one here keeps the test about finishing the call,
    # not about how fast a loaded CI machine imports (150,000 rows took 22-38 s at load 9).
    server, merchant = _start(
        tmp_path, MCP_CHECKOUT_HTTP_STATELESS=stateless, MCP_CHECKOUT_SHUTDOWN_GRACE_SECONDS="110"
    )
    text = _catalog_text(ROWS)
    answered: dict[str, object] = {}
    sent_at = 0.0
    try:
        async with server.client(merchant, mode=mode, timeout=120) as client:
            await client.list_tools()  # the client checks results against the schemas it has listed

            async def terminate_while_importing() -> None:
                await anyio.sleep(1.0)
                answered["sigterm_at"] = time.monotonic()
                os.kill(server.pid, signal.SIGTERM)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(terminate_while_importing)
                sent_at = time.monotonic()
                answered["result"] = tool_data(await client.call_tool("import_catalog_csv", {"csv_text": text}))
                answered["answered_at"] = time.monotonic()
    except* Exception:  # the client's own teardown cannot reach a server that has stopped: expected here
        pass
    assert "result" in answered, f"the import got no answer:\n{server.log_tail()}"
    assert answered["result"]["created"] == ROWS  # type: ignore[index]
    # The signal really arrived while the call ran (not after it had answered).
    assert sent_at < answered["sigterm_at"] < answered["answered_at"]  # type: ignore[operator]
    server.process.wait(timeout=30)
    log = server.log_tail(20_000)
    assert "still running" not in log
    assert "Finished server process" in log


async def test_an_idle_server_with_an_open_notification_stream_stops_promptly(tmp_path: Path) -> None:
    server, merchant = _start(tmp_path)
    sigterm_at = 0.0
    try:
        async with server.client(merchant, mode="legacy") as client:
            await client.list_tools()  # legacy clients keep a GET stream open for server notifications
            await anyio.sleep(0.3)
            sigterm_at = time.monotonic()
            os.kill(server.pid, signal.SIGTERM)
            await anyio.to_thread.run_sync(server.process.wait, 15)
    except* Exception:  # the client's teardown cannot reach a stopped server: expected here
        pass
    server.process.wait(timeout=15)
    stopped_after = time.monotonic() - sigterm_at
    # uvicorn alone would wait its whole graceful timeout (grace + 5 s) for the idle GET stream.
    assert sigterm_at and stopped_after < 3, f"stopped {stopped_after:.1f}s after SIGTERM:\n{server.log_tail()}"
    assert "Finished server process" in server.log_tail()


def test_a_request_whose_body_stalls_is_dropped_after_the_body_timeout(tmp_path: Path) -> None:
    server, merchant = _start(tmp_path, MCP_CHECKOUT_HTTP_BODY_TIMEOUT_SECONDS="1")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=15) as conn:
            conn.sendall(
                b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Accept: application/json, text/event-stream\r\n"
                + f"Authorization: Bearer {merchant}\r\nContent-Length: 5000\r\n\r\n".encode()
                + b'{"jsonrpc": "2.0", '  # ... and nothing more
            )
            started = time.monotonic()
            answer = conn.recv(
                4096
            )  # the server gives up on the request: its answer (the SDK says 500) or a bare close
            dropped_after = time.monotonic() - started
        assert 0.5 < dropped_after < 4, f"dropped after {dropped_after:.1f}s"
        assert answer == b"" or answer.startswith(b"HTTP/1.1 "), answer[:80]
        assert httpx.get(f"{server.base}/healthz", timeout=5).status_code == 200  # and keeps serving
    finally:
        server.stop()
