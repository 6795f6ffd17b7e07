"""``mcp-checkout demo``: a scripted agent session through a real MCP client over stdio.

It prepares its own SQLite store in ``<data dir>/demo`` (emptied, migrated, demo catalog), never the
merchant's store, starts ``mcp-checkout serve`` on it as a subprocess exactly as Claude Desktop would,
and plays the agent's part, printing a transcript. Then (``demo_ucp.py``) a UCP platform buys from the same
store over the UCP REST binding of ``serve --http``.
"""

from __future__ import annotations

import json
import os
import re
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
from mcp_checkout.hosting import free_local_port
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

    async def event(self, event_type: str, within_seconds: float) -> tuple[dict[str, str], bytes]:
        """The first delivery of an ``event_type`` event (waiting up to ``within_seconds`` for it)."""
        with anyio.move_on_after(within_seconds):
            while True:
                for headers, body in list(self.received):
                    if json.loads(body).get("type") == event_type:
                        return headers, body
                await anyio.sleep(0.05)
        raise DemoFailed(f"the merchant's webhook receiver got no {event_type}")


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
    console.print(
        Panel.fit(
            "mcp-checkout demo: an agent sells from the demo catalog over MCP (stdio), "
            "then a UCP platform buys over REST"
        )
    )
    settings = demo_settings(store)
    await _prepare(settings, store)
    run_tag = time.strftime("%Y%m%d-%H%M%S")
    web_port = free_local_port()
    erp = _ErpReceiver()
    try:
        async with Client(_server_parameters(settings, web_port), mode="legacy") as client:
            tools = (await client.list_tools()).tools
            console.print("\n[bold cyan]agent →[/bold cyan] tools/list")
            _say(f"{len(tools)} tools: {', '.join(tool.name for tool in tools)}")

            hook = await _call(
                client,
                "create_webhook_endpoint",
                {"url": erp.url, "events": ["order.paid", "order.fulfilled"], "description": DEMO_WEBHOOK_DESCRIPTION},
                "the merchant's ERP wants to hear of paid and shipped orders (signed webhooks)",
            )
            _say(f"endpoint {hook['endpoint']['endpoint_id']} → {erp.url}; signing secret whsec_… shown once")
            await _configure_shipping(client)

            hits = await _call(
                client, "search_catalog", {"query": "coffee mug", "limit": 5}, "find what the buyer wants"
            )
            for item in hits["items"]:
                price, left = item["price"]["display"], item["available"]
                _say(f"{item['sku']:<16} {item['title'][:48]:<48} {price:>12}  {left} left")
            if not hits["items"]:
                raise DemoFailed("the demo catalog has no coffee mugs")
            sku = next((i["sku"] for i in hits["items"] if i["available"] >= 2), hits["items"][0]["sku"])
            # the UCP platform of act 2 buys another mug (this one's stock goes to the agent's order)
            ucp_sku = next((i["sku"] for i in hits["items"] if i["sku"] != sku and i["available"] >= 1), sku)

            product = await _call(client, "get_product", {"sku": sku}, "check the variant")
            _say(f"{product['name']} — {len(product['variants'])} variant(s); {product['description'][:70]}…")

            cart = await _call(client, "create_cart", {}, "one cart per purchase")
            cart_id = cart["cart_id"]
            _say(f"cart {cart_id}")
            cart = await _call(client, "add_to_cart", {"cart_id": cart_id, "sku": sku, "quantity": 2}, "two of them")
            _say(f"{cart['item_count']} items, subtotal {cart['subtotal']['display']} (computed by the server)")
            cart = await _call(
                client,
                "update_cart",
                {
                    "cart_id": cart_id,
                    "buyer": {"email": "buyer@example.com", "name": "Ada Buyer"},
                    "shipping_address": DEMO_ADDRESS,
                    "discount_codes": ["WELCOME10"],
                },
                "who buys, where it ships, and the buyer's code",
            )
            _say_messages(cart)
            options = cart["fulfillment_options"]
            for option in options:
                days = f"{option['min_days']}-{option['max_days']} days" if option["min_days"] is not None else ""
                _say(f"option {option['option_id']}: {option['name']} {option['price']['display']} {days}")
            if not options:
                raise DemoFailed("no shipping option for the buyer's address")
            cart = await _call(
                client,
                "update_cart",
                {"cart_id": cart_id, "fulfillment_option_id": options[0]["option_id"]},
                "the buyer picks a shipping option",
            )
            _say(_breakdown(cart) + f"; ready: {cart['ready']}")
            if not cart["ready"]:
                raise DemoFailed("the cart is not ready to order")

            order_args = {
                "idempotency_key": f"demo-order-{uuid.uuid4()}",
                "cart_id": cart_id,
                "merchant_reference_id": f"demo-{run_tag}",
            }
            order = await _call(client, "create_order", order_args, "exactly once, with an idempotency key")
            _say(f"order {order['number']} ({order['order_id']}) {order['status']}: {_breakdown(order)}")

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
            received = paid["payment"]["amount_received"]
            _say(f"the gateway took {received['display']}: the order's total {paid['total']['display']}")
            if received["amount"] != paid["total"]["amount"]:
                raise DemoFailed("the amount paid is not the order's total")
            await _verified_event(erp, hook["signing_secret"], "order.paid")

            shipped = await _call(
                client,
                "fulfill_order",
                {
                    "order_id": order["order_id"],
                    "idempotency_key": f"demo-ship-{uuid.uuid4()}",
                    "carrier": "UPS",
                    "tracking_number": "1Z999AA10123456784",
                    "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
                },
                "the merchant ships it, with tracking",
            )
            parcel = shipped["fulfillments"][-1]
            _say(f"{shipped['number']} is {shipped['status']}: {parcel['carrier']} {parcel['tracking_number']}")
            event = await _verified_event(erp, hook["signing_secret"], "order.fulfilled")
            tracking = event["data"]["fulfillments"][-1]["tracking_number"]
            _say(f"the ERP can tell the buyer: shipped with {event['data']['fulfillments'][-1]['carrier']} {tracking}")

            found = await _call(
                client, "lookup_orders", {"merchant_reference_id": f"demo-link-{run_tag}"}, "by the link's reference"
            )
            _say(f"{found['status']}: {[(o['number'], o['status']) for o in found['orders']]}")

            async with httpx.AsyncClient() as browser:
                reopened = await browser.get(link["url"], headers={"accept": "application/json"})
            console.print("\n[bold magenta]buyer →[/bold magenta] opens the link again")
            body = reopened.json()
            _say(f"HTTP {reopened.status_code} {body.get('error')}: {body.get('message')}")

        from mcp_checkout.demo_ucp import run_ucp_demo  # (it imports this module's helpers)

        await run_ucp_demo(settings, ucp_sku)
    except DemoFailed as exc:
        console.print(f"\n[bold red]demo failed:[/bold red] {exc}")
        return 1
    finally:
        erp.close()
    _print_next_steps(store, settings)
    return 0


DEMO_ADDRESS = {
    "name": "Ada Buyer",
    "line1": "1 Market Street",
    "city": "San Francisco",
    "region": "CA",
    "postal_code": "94105",
    "country": "US",
}


async def _configure_shipping(client: Client) -> None:
    """The merchant's side: how the store ships, the tax it collects and a discount code."""
    await _call(
        client,
        "upsert_shipping_rate",
        {
            "rate_id": "us-standard", "name": "Standard shipping", "countries": ["US"], "price": 599,
            "free_over": 10000, "min_days": 3, "max_days": 5, "carrier": "UPS",
        },
        "the merchant ships in the US: $5.99, free over $100",
    )  # fmt: skip
    await _call(
        client,
        "upsert_shipping_rate",
        {"rate_id": "us-express", "name": "Express", "countries": ["US"], "price": 1999, "min_days": 1,
         "max_days": 2, "carrier": "UPS"},
        "and faster, for more",
    )  # fmt: skip
    await _call(
        client,
        "upsert_tax_rate",
        {"country": "US", "region": "CA", "rate_bps": 725},
        "California sales tax 7.25 %, added on top of prices",
    )
    await _call(
        client,
        "upsert_discount_code",
        {"code": "WELCOME10", "kind": "percent", "value": 1000, "max_uses": 100},
        "10 % off, for the first 100 orders",
    )
    _say("shipping rates, tax and a discount code are set")


def _breakdown(priced: dict[str, Any]) -> str:
    parts = [
        ("subtotal", "subtotal"),
        ("discount", "discount_total"),
        ("shipping", "shipping_total"),
        ("tax", "tax_total"),
    ]
    shown = ", ".join(f"{label} {priced[key]['display']}" for label, key in parts if priced.get(key))
    return f"{shown} → total {priced['total']['display']}"


def _say_messages(priced: dict[str, Any]) -> None:
    for message in priced.get("messages", []):
        console.print(f"[dim]         {message['severity']} {message['code']}: {message['message']}[/dim]")


async def _verified_event(erp: _ErpReceiver, secret: str, event_type: str) -> dict[str, Any]:
    """The ERP's first ``event_type`` delivery, checked as a receiver does (standardwebhooks: signature, time)."""
    headers, body = await erp.event(event_type, within_seconds=15)
    try:
        Webhook(secret).verify(body, headers)
        verified = True
    except WebhookVerificationError:
        verified = False
    event: dict[str, Any] = json.loads(body)
    console.print(f"\n[bold yellow]ERP ←[/bold yellow] POST {headers['webhook-id']}")
    _say(
        f"{event['type']} for {event['data']['number']} ({event['data']['status']}), "
        f"Standard Webhooks signature {'✓ verified' if verified else '✗ WRONG'} with the endpoint's secret"
    )
    if not verified:
        raise DemoFailed("the webhook signature did not verify")
    return event


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
