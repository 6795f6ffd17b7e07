"""The demo's second act: a UCP platform (a standard shopping agent) buys from the same demo store over the
UCP REST binding of ``mcp-checkout serve --http``: discovery → create checkout → update buyer, fulfilment and
discount → complete → ``requires_escalation`` → the buyer pays on the page → ``completed``.

It runs after the stdio session has ended (one process on the demo's SQLite file at a time), with a buyer
API key made by ``mcp-checkout keys create`` and a platform profile served on 127.0.0.1 (accepted over http
for the demo: ``MCP_CHECKOUT_UCP_ALLOW_HTTP_PROFILES=true``).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx

from mcp_checkout.config import Settings
from mcp_checkout.demo import DEMO_ADDRESS, DemoFailed, _buyer_pays, _say, console
from mcp_checkout.hosting import free_local_port

# The demo platform declares the capabilities it uses: the business answers with their intersection.
PLATFORM_PROFILE = {
    "ucp": {
        "version": "2026-04-08",
        "services": {},
        "payment_handlers": {},
        "capabilities": {
            name: [
                {
                    "version": "2026-04-08",
                    **({"extends": "dev.ucp.shopping.checkout"} if name.endswith(("ment", "discount")) else {}),
                }
            ]
            for name in (
                "dev.ucp.shopping.checkout",
                "dev.ucp.shopping.fulfillment",
                "dev.ucp.shopping.discount",
                "dev.ucp.shopping.catalog.search",
                "dev.ucp.shopping.catalog.lookup",
                "dev.ucp.shopping.order",
            )
        },
    }
}


def _env(settings: Settings, port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MCP_CHECKOUT_")}
    env.update(
        MCP_CHECKOUT_DATA_DIR=str(settings.data_dir.resolve()),
        MCP_CHECKOUT_LOG_LEVEL="WARNING",
        MCP_CHECKOUT_UCP_ALLOW_HTTP_PROFILES="true",
        MCP_CHECKOUT_WEB_PORT=str(port),
    )
    return env


@contextlib.contextmanager
def serve_platform_profile() -> Iterator[str]:
    """The platform's own profile (``UCP-Agent: profile=…``), served on 127.0.0.1 (the demo's and the UCP
    bench's platform); yields its URL."""
    body = json.dumps(PLATFORM_PROFILE).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/ucp"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _http_server(settings: Settings, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "mcp_checkout.cli", "serve", "--http", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("ab") as sink:
        process = subprocess.Popen(  # noqa: S603 - this interpreter running this package
            command, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, env=_env(settings, port)
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


async def _ready(http: httpx.AsyncClient, process: subprocess.Popen[bytes], log: Path) -> None:
    with anyio.move_on_after(60):
        while process.poll() is None:
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/readyz")).status_code == 200:
                    return
            await anyio.sleep(0.2)
    raise DemoFailed(f"serve --http did not start; see {log}")


def _platform(method: str, path: str, note: str, body: Any = None) -> None:
    shown = f" {json.dumps(body)}" if body is not None else ""
    console.print(f"\n[bold blue]platform →[/bold blue] {method} {path}{shown}  [dim]{note}[/dim]")


def _totals(checkout: dict[str, Any]) -> str:
    parts = ", ".join(f"{t['type']} {t['amount'] / 100:.2f}" for t in checkout["totals"] if t["type"] != "total")
    total = next(t["amount"] for t in checkout["totals"] if t["type"] == "total")
    return f"{parts} → total {total / 100:.2f} {checkout['currency']}"


def _checkout(answer: httpx.Response, expected: str) -> dict[str, Any]:
    body: dict[str, Any] = answer.json()
    if answer.status_code >= 400 or body.get("status") != expected:
        raise DemoFailed(f"UCP answered {answer.status_code} {json.dumps(body)[:400]} (expected {expected})")
    _say(f"checkout {body['id']} {body['status']}: {_totals(body)}")
    for message in body.get("messages", []):
        where = f" at {message['path']}" if message.get("path") else ""
        console.print(f"[dim]         {message.get('severity', message['type'])} {message['code']}{where}[/dim]")
    return body


def _create_key(settings: Settings) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mcp_checkout.cli", "keys", "create", "--name", "demo UCP platform", "--scope", "buyer"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(settings, 0),
        check=False,
    )
    key = done.stdout.strip()
    if done.returncode != 0 or not key.startswith("mcpk_"):
        raise DemoFailed(f"keys create failed: {done.stderr[-500:]}")
    return key


async def run_ucp_demo(settings: Settings, sku: str) -> None:
    """A UCP platform buys ``sku`` over REST from the demo store (served by ``serve --http``)."""
    console.print("\n[bold]Act 2: a UCP platform buys over REST[/bold] (mcp-checkout serve --http)")
    key = await anyio.to_thread.run_sync(_create_key, settings)
    _say(f"buyer API key {key[:18]}… for the platform (mcp-checkout keys create --scope buyer)")
    port = free_local_port()
    log = settings.data_dir / "ucp-demo-server.log"
    with serve_platform_profile() as profile, _http_server(settings, port, log) as process:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            await _ready(http, process, log)
            _platform("GET", "/.well-known/ucp", "discovery")
            found = (await http.get("/.well-known/ucp")).json()["ucp"]
            services = ", ".join(f"{b['transport']} {b['endpoint']}" for b in found["services"]["dev.ucp.shopping"])
            _say(f"UCP {found['version']}: dev.ucp.shopping over {services}")
            handlers = ", ".join(h["id"] for group in found["payment_handlers"].values() for h in group)
            _say(f"capabilities: {', '.join(found['capabilities'])}; payment handlers: {handlers}")
            headers = {"X-API-Key": key, "UCP-Agent": f'profile="{profile}"'}

            def sent(idempotency_key: str | None = None) -> dict[str, str]:
                extra = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
                return {**headers, "Request-Id": str(uuid.uuid4()), **extra}

            lines = [{"item": {"id": sku}, "quantity": 1}]
            body: dict[str, Any] = {"line_items": lines}
            _platform("POST", "/ucp/v1/checkout-sessions", "create a checkout", body)
            answer = await http.post("/ucp/v1/checkout-sessions", json=body, headers=sent(str(uuid.uuid4())))
            checkout = _checkout(answer, "incomplete")
            path = f"/ucp/v1/checkout-sessions/{checkout['id']}"

            destination = {
                "id": "home", "first_name": "Grace", "last_name": "Buyer", "street_address": DEMO_ADDRESS["line1"],
                "address_locality": DEMO_ADDRESS["city"], "address_region": DEMO_ADDRESS["region"],
                "postal_code": DEMO_ADDRESS["postal_code"], "address_country": DEMO_ADDRESS["country"],
            }  # fmt: skip
            body = {
                "line_items": lines,
                "buyer": {"email": "grace@example.com", "first_name": "Grace", "last_name": "Buyer"},
                "fulfillment": {"methods": [{"type": "shipping", "destinations": [destination]}]},
                "discounts": {"codes": ["WELCOME10"]},
            }
            _platform("PUT", path, "buyer, where it ships, the buyer's code", body)
            checkout = _checkout(await http.put(path, json=body, headers=sent()), "incomplete")
            group = checkout["fulfillment"]["methods"][0]["groups"][0]
            for option in group["options"]:
                _say(f"option {option['id']}: {option['title']} {option['totals'][0]['amount'] / 100:.2f}")
            body = {
                "line_items": lines,
                "fulfillment": {"methods": [{"type": "shipping", "groups": [
                    {"id": group["id"], "selected_option_id": group["options"][0]["id"]}
                ]}]},
            }  # fmt: skip
            _platform("PUT", path, "the buyer picks a shipping option", body)
            checkout = _checkout(await http.put(path, json=body, headers=sent()), "ready_for_complete")

            body = {"payment": {"instruments": []}}
            _platform("POST", f"{path}/complete", "place the order (Idempotency-Key); no card sent", body)
            answer = await http.post(f"{path}/complete", json=body, headers=sent(str(uuid.uuid4())))
            escalated = _checkout(answer, "requires_escalation")
            _say(f"continue_url {escalated['continue_url']} → the buyer pays there")
            console.print(
                "\n[bold magenta]buyer →[/bold magenta] opens continue_url and presses the test-payment button"
            )
            await _buyer_pays(escalated["continue_url"])

            _platform("GET", path, "the platform checks back")
            done = _checkout(await http.get(path, headers=sent()), "completed")
            _say(f"UCP checkout completed: order {done['order']['label']} ({done['order']['id']})")
