"""``mcp-checkout demo``: a scripted agent session through a real MCP client over stdio.

It prepares its own SQLite store in ``<data dir>/demo`` (emptied, migrated, demo catalog), never the
merchant's store, starts ``mcp-checkout serve`` on it as a subprocess exactly as Claude Desktop would,
and plays the agent's part, printing a transcript.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import httpx
from mcp import Client, StdioServerParameters
from rich.console import Console
from rich.panel import Panel
from sqlalchemy.engine import make_url
from standardwebhooks import Webhook, WebhookVerificationError

from mcp_checkout.config import Settings
from mcp_checkout.domain import utc_now
from mcp_checkout.install import claude_desktop_config
from mcp_checkout.service.container import open_database
from mcp_checkout.service.maintenance import reset_store
from mcp_checkout.service.policy import OPERATOR
from mcp_checkout.store import migrate
from mcp_checkout.store.demo_catalog import DEMO_WEBHOOK_DESCRIPTION, seed_demo_catalog

console = Console(highlight=False)


class DemoFailed(RuntimeError):
    pass


class _ErpReceiver:
    """The merchant's own system for the demo: a local HTTP endpoint that records the webhooks it gets."""

    def __init__(self) -> None:
        received: list[tuple[dict[str, str], bytes]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.received = received
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    async def first(self, within_seconds: float) -> tuple[dict[str, str], bytes]:
        with anyio.move_on_after(within_seconds):
            while not self.received:  # noqa: ASYNC110 - a list filled by the receiver's thread
                await anyio.sleep(0.05)
        if not self.received:
            raise DemoFailed("the merchant's webhook receiver got nothing")
        return self.received[0]


def demo_settings(settings: Settings) -> Settings:
    """The demo's own store: SQLite in ``<data dir>/demo``, whatever database the merchant's store uses."""
    return settings.model_copy(
        update={"data_dir": settings.data_dir / "demo", "database_url": None, "import_dir": None, "secret_key": None}
    )


async def _prepare(settings: Settings, store: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(settings)
    try:
        await migrate.upgrade(db)
        await reset_store(db, OPERATOR, utc_now())  # each run starts from the demo catalog alone
        counts = await seed_demo_catalog(db, utc_now())
        console.print(
            f"[dim]demo store: {settings.data_dir.resolve()} (its own SQLite database, emptied for each run; your "
            f"store at {_store_name(store)} is not touched); demo catalog: {counts.created} SKUs[/dim]"
        )
    finally:
        await db.dispose()


def _store_name(settings: Settings) -> str:
    if settings.database_url:
        return make_url(settings.database_url).render_as_string(hide_password=True)
    return str(settings.data_dir.resolve())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_parameters(settings: Settings, web_port: int) -> StdioServerParameters:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MCP_CHECKOUT_")}
    env["MCP_CHECKOUT_DATA_DIR"] = str(settings.data_dir.resolve())
    env["MCP_CHECKOUT_WEB_PORT"] = str(web_port)
    if settings.database_url:
        env["MCP_CHECKOUT_DATABASE_URL"] = settings.database_url
    env["MCP_CHECKOUT_LOG_LEVEL"] = "WARNING"
    return StdioServerParameters(command=sys.executable, args=["-m", "mcp_checkout.cli", "serve"], env=env)


async def _call(client: Client, tool: str, arguments: dict[str, Any], note: str) -> dict[str, Any]:
    console.print(f"\n[bold cyan]agent →[/bold cyan] {tool}({json.dumps(arguments)})  [dim]{note}[/dim]")
    result = await client.call_tool(tool, arguments)
    if result.is_error or result.structured_content is None:
        text = result.content[0].text if result.content and hasattr(result.content[0], "text") else "?"
        console.print(f"[bold red]server ✗[/bold red] {text}")
        raise DemoFailed(f"{tool} failed")
    return dict(result.structured_content)


def _say(text: str) -> None:
    console.print(f"[bold green]server ✓[/bold green] {text}")


async def run_demo(store: Settings) -> int:
    """Run the demo against its own store beside ``store`` (the merchant's settings, left untouched)."""
    console.print(Panel.fit("mcp-checkout demo: an agent sells from the demo catalog over MCP (stdio)"))
    settings = demo_settings(store)
    await _prepare(settings, store)
    run_tag = time.strftime("%Y%m%d-%H%M%S")
    web_port = _free_port()
    erp = _ErpReceiver()
    try:
        async with Client(_server_parameters(settings, web_port), mode="legacy") as client:
            tools = (await client.list_tools()).tools
            console.print("\n[bold cyan]agent →[/bold cyan] tools/list")
            _say(f"{len(tools)} tools: {', '.join(tool.name for tool in tools)}")

            hook = await _call(
                client,
                "create_webhook_endpoint",
                {"url": erp.url, "events": ["order.paid"], "description": DEMO_WEBHOOK_DESCRIPTION},
                "the merchant's ERP wants to hear of paid orders (signed webhooks)",
            )
            _say(f"endpoint {hook['endpoint']['endpoint_id']} → {erp.url}; signing secret whsec_… shown once")

            hits = await _call(
                client, "search_catalog", {"query": "coffee mug", "limit": 5}, "find what the buyer wants"
            )
            for item in hits["items"]:
                price, left = item["price"]["display"], item["available"]
                _say(f"{item['sku']:<16} {item['title'][:48]:<48} {price:>12}  {left} left")
            if not hits["items"]:
                raise DemoFailed("the demo catalog has no coffee mugs")
            sku = next((i["sku"] for i in hits["items"] if i["available"] >= 2), hits["items"][0]["sku"])

            product = await _call(client, "get_product", {"sku": sku}, "check the variant")
            _say(f"{product['name']} — {len(product['variants'])} variant(s); {product['description'][:70]}…")

            cart = await _call(client, "create_cart", {}, "one cart per purchase")
            cart_id = cart["cart_id"]
            _say(f"cart {cart_id}")
            cart = await _call(client, "add_to_cart", {"cart_id": cart_id, "sku": sku, "quantity": 2}, "two of them")
            _say(f"{cart['item_count']} items, total {cart['total']['display']} (computed by the server)")

            order_args = {
                "idempotency_key": f"demo-order-{uuid.uuid4()}",
                "cart_id": cart_id,
                "email": "buyer@example.com",
                "merchant_reference_id": f"demo-{run_tag}",
            }
            order = await _call(client, "create_order", order_args, "exactly once, with an idempotency key")
            _say(f"order {order['number']} ({order['order_id']}) {order['status']}, total {order['total']['display']}")

            again = await _call(client, "create_order", order_args, "the agent retries after a 'timeout'")
            if again["order_id"] != order["order_id"] or again["replayed"] is not True:
                raise DemoFailed("the retry created a second order")
            _say(f"replayed: {again['replayed']} → the same order {again['number']}, no duplicate")

            fetched = await _call(client, "get_order", {"order_id": order["order_id"]}, "check on it later")
            history = ", ".join(f"{h['to_status']} by {h['actor']}" for h in fetched["status_history"])
            _say(f"{fetched['number']} is {fetched['status']}; stock {fetched['stock']}; history: {history}")

            link = await _call(
                client,
                "create_checkout_link",
                {"order_id": order["order_id"], "merchant_reference_id": f"demo-link-{run_tag}"},
                "a single-use link for the human buyer",
            )
            _say(f"link {link['link_id']} ({link['status']}) → {link['url']}")

            waited: dict[str, Any] = {}

            async def agent_waits() -> None:
                waited.update(
                    await _call(
                        client,
                        "wait_for_order",
                        {"order_id": order["order_id"], "statuses": ["paid"], "timeout_seconds": 30},
                        "wait for the buyer instead of polling",
                    )
                )

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(agent_waits)
                await anyio.sleep(0.3)
                console.print(
                    "\n[bold magenta]buyer →[/bold magenta] opens the link and presses the test-payment button"
                )
                await _buyer_pays(link["url"])
            paid = waited["order"]
            _say(
                f"reached: {waited['reached']} after {waited['waited_seconds']:.1f}s → {paid['number']} is "
                f"{paid['status']}; stock {paid['stock']}; link {paid['checkout']['link_status']}"
            )
            if paid["status"] != "paid":
                raise DemoFailed("the order is not paid after the buyer paid")

            headers, body = await erp.first(within_seconds=15)
            try:  # as a receiver does it: the standardwebhooks library checks signature and timestamp
                Webhook(hook["signing_secret"]).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
            event = json.loads(body)
            console.print(f"\n[bold yellow]ERP ←[/bold yellow] POST {headers['webhook-id']}")
            _say(
                f"{event['type']} for {event['data']['number']} ({event['data']['status']}), "
                f"Standard Webhooks signature {'✓ verified' if verified else '✗ WRONG'} with the endpoint's secret"
            )
            if not verified:
                raise DemoFailed("the webhook signature did not verify")

            found = await _call(
                client, "lookup_orders", {"merchant_reference_id": f"demo-link-{run_tag}"}, "by the link's reference"
            )
            _say(f"{found['status']}: {[(o['number'], o['status']) for o in found['orders']]}")

            async with httpx.AsyncClient() as browser:
                reopened = await browser.get(link["url"], headers={"accept": "application/json"})
            console.print("\n[bold magenta]buyer →[/bold magenta] opens the link again")
            body = reopened.json()
            _say(f"HTTP {reopened.status_code} {body.get('error')}: {body.get('message')}")
    except DemoFailed as exc:
        console.print(f"\n[bold red]demo failed:[/bold red] {exc}")
        return 1
    finally:
        erp.close()
    _print_next_steps(store, settings)
    return 0


async def _buyer_pays(url: str) -> None:
    """What a buyer's browser does: load the page, submit its payment form (offline test payment)."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=10) as browser:
        page: httpx.Response | None = None
        for _ in range(50):  # the page server starts beside the MCP server; give it a moment
            try:
                page = await browser.get(url)
                break
            except httpx.TransportError:
                await anyio.sleep(0.2)
        if page is None or page.status_code != 200:
            raise DemoFailed(f"the checkout page did not load ({page.status_code if page else 'no answer'})")
        total = re.search(r'data-testid="order-total">([^<]+)<', page.text)
        console.print(f"[bold green]page ✓[/bold green] HTTP 200, total {total.group(1) if total else '?'}, test mode")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        if csrf is None:
            raise DemoFailed("the checkout page has no payment form")
        paid = await browser.post(f"{url}/pay", data={"csrf": csrf.group(1)})
        if paid.status_code != 303:
            raise DemoFailed(f"payment was refused: HTTP {paid.status_code}")
        done = await browser.get(paid.headers["location"])
        console.print(
            f"[bold green]page ✓[/bold green] paid → redirected to {paid.headers['location']} ({done.status_code})"
        )


def _print_next_steps(settings: Settings, demo: Settings) -> None:
    data_dir = demo.data_dir.resolve()
    config = json.dumps(claude_desktop_config(settings), indent=2)
    console.print(
        Panel(
            f"The demo ran on its own store in {data_dir}; your store ({_store_name(settings)}) holds only "
            "what you import.\n\n"
            "[bold]Connect Claude Desktop[/bold] to your store: merge this into claude_desktop_config.json "
            "(or run `.venv/bin/mcp-checkout claude-config`), then restart Claude Desktop:\n\n"
            f"{config}\n\n"
            "[bold]Poke the demo store in the MCP Inspector[/bold] (Node 20):\n"
            f"  npx -y @modelcontextprotocol/inspector@2.12.0 --cli {sys.executable} -m mcp_checkout.cli "
            f"--data-dir {data_dir} serve --method tools/list\n\n"
            "[bold]Import your own catalog[/bold]:  .venv/bin/mcp-checkout import-catalog catalog.csv\n"
            "[bold]Before going live[/bold]:  .venv/bin/mcp-checkout doctor\n"
            "[bold]One-click install[/bold]:  make bundle  → dist/mcp-checkout.mcpb for Claude Desktop",
            title="next steps",
        )
    )
