"""Request bodies are bounded as they stream, on a real `serve --http` process: a chunked body (no
Content-Length to check up front) bigger than the route's limit is answered 413 as soon as it passes the
limit, before the body ends, without a traceback, and the server's memory stays flat."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.servers import Server, create_keys, server_env, spawn, wait_ready

CHUNK = 64 * 1024


def _start(tmp_path: Path) -> tuple[Server, str]:
    env = server_env({"MCP_CHECKOUT_DATA_DIR": str(tmp_path), "MCP_CHECKOUT_HTTP_BODY_TIMEOUT_SECONDS": "20"})
    (merchant,) = create_keys(env, ("ops", "merchant"))
    server = spawn(env, tmp_path / "server.log")
    wait_ready([server])
    return server, merchant


def _head(path: str, content_type: str, key: str | None = None) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Type: {content_type}",
        "Accept: application/json, text/event-stream",
        "Transfer-Encoding: chunked",
    ]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _answer_before_the_body_ends(server: Server, head: bytes, first: bytes, total: int) -> bytes:
    """Send ``total`` bytes of a chunked body (never its last chunk), then read what the server answers."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(head + _chunk(first))
        sent = len(first)
        # The server answers and hangs up as soon as the limit is passed: stop sending once it has answered
        # (or hung up: a write then fails with a broken pipe), then read the answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < total and not select.select([conn], [], [], 0)[0]:
                conn.sendall(_chunk(b"x" * CHUNK))
                sent += CHUNK
        answer = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while b"\r\n\r\n" not in answer:
                received = conn.recv(4096)
                if not received:
                    break
                answer += received
    return answer


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _stream(server: Server, head: bytes, total: int) -> None:
    """Push ``total`` bytes of a chunked body as fast as the server takes them; stop when it hangs up."""
    with (
        contextlib.suppress(OSError),
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn,
    ):
        conn.sendall(head)
        block = _chunk(b"y" * (1024 * 1024))
        for _ in range(total // (1024 * 1024)):
            conn.sendall(block)
        conn.sendall(b"0\r\n\r\n")
        conn.recv(4096)


@pytest.mark.parametrize(
    ("path", "content_type", "first", "limit", "with_key"),
    [
        ("/webhooks/stripe", "application/json", b'{"id": "evt_1", "data": "', 1_000_000, False),
        ("/checkout/not-a-real-token/pay", "application/x-www-form-urlencoded", b"csrf=a&note=", 16_384, False),
        ("/checkout/not-a-real-token/email", "application/x-www-form-urlencoded", b"csrf=a&email=", 16_384, False),
        ("/mcp", "application/json", b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "x": "', 6_000_000, True),
    ],
    ids=["stripe-webhook", "checkout-pay-form", "checkout-email-form", "mcp"],
)
def test_a_chunked_body_over_the_limit_is_answered_413_while_it_streams(
    tmp_path: Path, path: str, content_type: str, first: bytes, limit: int, with_key: bool
) -> None:
    server, merchant = _start(tmp_path)
    try:
        head = _head(path, content_type, merchant if with_key else None)
        started = time.monotonic()
        answer = _answer_before_the_body_ends(server, head, first, limit + 2 * CHUNK)
        assert answer.startswith(b"HTTP/1.1 413 "), (answer[:200], server.log_tail())
        assert time.monotonic() - started < 8  # not after the 20 s body deadline
        assert httpx.get(f"{server.base}/healthz", timeout=5).status_code == 200  # and keeps serving
    finally:
        server.stop()
    log = server.log_tail(50_000)
    assert "Traceback" not in log and "internal error" not in log, log


def test_a_huge_chunked_webhook_leaves_memory_flat(tmp_path: Path) -> None:
    server, _merchant = _start(tmp_path)
    try:
        head = _head("/webhooks/stripe", "application/json")
        _stream(server, head, 4 * 1024 * 1024)  # warm up: first-request allocations are not the body's
        before = _rss_kib(server.pid)
        pushers = [threading.Thread(target=_stream, args=(server, head, 150 * 1024 * 1024)) for _ in range(2)]
        for pusher in pushers:
            pusher.start()
        for pusher in pushers:
            pusher.join(timeout=120)
        after = _rss_kib(server.pid)
        assert after - before < 8 * 1024, f"RSS grew {(after - before) / 1024:.0f} MiB"
        assert httpx.get(f"{server.base}/healthz", timeout=5).status_code == 200
    finally:
        server.stop()
    assert "Traceback" not in server.log_tail(50_000)
