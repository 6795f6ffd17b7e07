"""A real HTTP webhook receiver on 127.0.0.1 for tests: records every request, answers from a script,
can be taken down and brought back on the same port, and verifies signatures with the PyPI
``standardwebhooks`` library (and, on demand, with the npm one through node)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook

from tests.support import npm_ci_once

NODE_DIR = Path(__file__).resolve().parents[1] / "e2e" / "node_webhooks"
UCP_NODE_DIR = Path(__file__).resolve().parents[1] / "e2e" / "node_ucp_signatures"


@dataclass
class Received:
    headers: dict[str, str]
    body: str
    status: int  # what the receiver answered (0: it never answered, the request was held)
    at: float = field(default_factory=time.monotonic)

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


class Receiver:
    """``with Receiver() as r``: ``r.url``; ``r.script = [500, 500]`` answers those first, then 200;
    ``r.hold = seconds`` delays every answer; ``r.gate = threading.Event()`` holds requests unanswered;
    ``r.down()`` / ``r.up()`` stop and restart the listener."""

    def __init__(self, port: int = 0) -> None:
        self.received: list[Received] = []
        self.script: list[int] = []
        self.retry_after: str | None = None
        self.hold = 0.0
        self.gate: threading.Event | None = None  # set: requests are held (never answered) until it opens
        self.connections = 0  # TCP connections accepted, whatever came over them (TLS, garbage or HTTP)
        self._lock = threading.Lock()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length).decode()
                headers = {key.lower(): value for key, value in self.headers.items()}
                record = Received(headers, body, 0)
                with receiver._lock:
                    receiver.received.append(record)
                    status = receiver.script.pop(0) if receiver.script else 200
                    hold, gate = receiver.hold, receiver.gate
                if gate is not None:
                    gate.wait(60)
                    return  # a held request is never answered: its sender is gone by then
                if hold:
                    time.sleep(hold)
                self.send_response(status)
                if receiver.retry_after is not None:
                    self.send_header("Retry-After", receiver.retry_after)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                self.wfile.flush()
                record.status = status

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            # socketserver's default listen backlog is 5: two dispatching processes sending at once overflowed it
            # on a busy machine, a connection waited out its SYN retransmit (1 s, the tests' webhook timeout) and
            # a delivery took a second attempt (test_two_dispatching_processes_on_postgresql_deliver_each_event_once).
            request_queue_size = 128

            def verify_request(self, request: Any, client_address: Any) -> bool:
                with receiver._lock:
                    receiver.connections += 1
                return True

        self._server = Server(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Receiver:
        self.up()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.down()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/hooks"

    # ------------------------------------------------------------ what arrived
    def delivered(self) -> list[Received]:
        """Requests answered 2xx."""
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def all(self) -> list[Received]:
        with self._lock:
            return list(self.received)


def verify_python(secret: str, received: Received) -> dict[str, Any]:
    """Verify with the PyPI standardwebhooks library; raises WebhookVerificationError when refused."""
    return dict(Webhook(secret).verify(received.body, received.headers))


def ensure_node_modules(folder: Path = NODE_DIR, package: str = "standardwebhooks") -> None:
    """Install the npm library from package-lock.json on first use."""
    npm_ci_once(folder, folder / "node_modules" / package, what="verifying webhooks with npm", timeout=180)


def verify_ucp_node(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Verify RFC 9421 signed UCP order webhooks with the npm http-message-signatures library (not the one
    that signed them). cases: [{method, url, headers, body, signing_keys}] → [{ok, keyid} | {ok: false, error}]."""
    ensure_node_modules(UCP_NODE_DIR, "http-message-signatures")
    done = subprocess.run(
        ["node", "verify.js"], cwd=UCP_NODE_DIR, input=json.dumps(cases), capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    return list(json.loads(done.stdout))


def verify_node(secret: str, deliveries: list[Received]) -> list[dict[str, Any]]:
    """Verify each delivery with the npm standardwebhooks library: [{ok, type} | {ok: false, error}]."""
    ensure_node_modules()
    cases = [{"secret": secret, "headers": r.headers, "body": r.body} for r in deliveries]
    done = subprocess.run(
        ["node", "verify.js"],
        cwd=NODE_DIR,
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return list(json.loads(done.stdout))


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def iter_types(received: list[Received]) -> Iterator[str]:
    for r in received:
        yield r.payload["type"]
