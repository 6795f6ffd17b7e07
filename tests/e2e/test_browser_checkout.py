"""The buyer's checkout page in a real headless Chromium, on a real ``mcp-checkout serve`` over stdio.

One server process (SQLite in a temp data dir, offline gateway) and one browser serve the whole
module; each test opens its own browser context (fresh cookies) and mints its own links over MCP.
Every test also checks that the page asked nothing of any host but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import re
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from browser import (
    CHROMIUM_ARGS,
    available,
    off_host,
    png_facts,
    require_chromium,
    server_params,
    wait_for_page,
)
from mcp import Client
from mcp.client.stdio import stdio_client
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from mcp_checkout.domain import CatalogRow
from tests.support import free_port, prepare_database
from tests.support import tool_data as data

IMAGES = "https://img.shop.example/"  # product pictures: answered inside the browser (never leaves the machine)
CATALOG = [
    CatalogRow("Stoneware Coffee Mug", "MUG-01", 1800, "USD", 20, "A 12 oz stoneware mug.", None, "", "Kitchen"),
    CatalogRow("Enamel Camp Mug", "MUG-02", 1450, "USD", 10, "Speckled enamel mug.", None, "", "Outdoors"),
    CatalogRow("Merino Wool Socks", "SOCK-M-GRY", 2200, "USD", 50, "Warm socks.", "P-SOCK", "M / Grey", "Apparel"),
    CatalogRow("Café <b>Crème</b> & Co Beans", "BEANS-1", 1250, "USD", 30, "Whole beans.", None, "", "Kitchen"),
    CatalogRow("Harbor Teapot", "POT-01", 2900, "USD", 10, "A teapot.", None, "", "Kitchen", IMAGES + "teapot.png"),
]

TIMEOUT_MS = 15_000
TIMES = "\N{MULTIPLICATION SIGN}"  # between a line's title and its quantity on the page


@dataclass
class Shop:
    """The running server: MCP calls go through a blocking portal to the client's own event loop."""

    portal: BlockingPortal
    client: Client
    base_url: str
    stderr_log: Path
    data_dir: Path

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return data(self.portal.call(self.client.call_tool, tool, arguments))

    def stock(self, sku: str) -> int:
        return available(self.call("get_product", {"sku": sku}), sku)


@dataclass
class Tab:
    page: Page
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def assert_only_local_requests(self) -> None:
        assert self.requests, "no request was recorded"
        elsewhere = [url for url in off_host(self.requests) if not url.startswith(IMAGES)]
        assert self.blocked == [] and elsewhere == [], (self.blocked, elsewhere)


@pytest.fixture(scope="module", autouse=True)
def chromium() -> Path:
    """First of all: fail clearly without Chromium (skip only with MCP_CHECKOUT_SKIP_BROWSER=1)."""
    return require_chromium()


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    data_dir = tmp_path_factory.mktemp("browser-shop")
    asyncio.run(prepare_database(f"sqlite:///{data_dir / 'checkout.db'}", CATALOG))
    port = free_port()
    stderr_log = data_dir / "server-stderr.log"
    with (
        stderr_log.open("w") as errlog,
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(Client(stdio_client(server_params(data_dir, port), errlog=errlog))) as client,
    ):
        base_url = f"http://127.0.0.1:{port}"
        wait_for_page(base_url, stderr_log)
        yield Shop(portal, client, base_url, stderr_log, data_dir)


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 900, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    opened = Tab(page=context.new_page())

    def refuse(route: Route) -> None:  # never let the page reach past this machine
        opened.blocked.append(route.request.url)
        route.abort()

    context.route(re.compile(r"^(?!http://127\.0\.0\.1[:/])"), refuse)
    context.route(f"{IMAGES}**", lambda route: route.fulfill(status=200, content_type="image/png", body=PICTURE))
    context.on("request", lambda request: opened.requests.append(request.url))
    yield opened
    context.close()


def _picture() -> bytes:
    """A 16x16 blue PNG (what the image host answers)."""
    row = b"\x00" + b"\x2f\x5b\xea" * 16
    raw = zlib.compress(row * 16)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


PICTURE = _picture()


@contextmanager
def shipping_to_the_us(shop: Shop) -> Iterator[None]:
    """Ground and Express to the US and California's sales tax, set with the merchant's tools; taken away
    afterwards (with no active rate the store ships nothing, which the other tests here rely on)."""
    rates = [("ground", "Ground", 500, 3, 5), ("express", "Express", 1500, 1, 2)]
    for rate_id, name, price, low, high in rates:
        shop.call(
            "upsert_shipping_rate",
            {"rate_id": rate_id, "name": name, "countries": ["US"], "price": price, "min_days": low, "max_days": high},
        )
    shop.call("upsert_tax_rate", {"country": "US", "region": "CA", "rate_bps": 1000})
    try:
        yield
    finally:
        for rate_id, name, price, _, _ in rates:
            arguments = {"rate_id": rate_id, "name": name, "countries": ["US"], "price": price, "active": False}
            shop.call("upsert_shipping_rate", arguments)
        shop.call("delete_tax_rate", {"country": "US", "region": "CA"})


def summary_rows(page: Page) -> list[tuple[str, str]]:
    """(item cell text, line total) for each order line in the page's summary table."""
    rows = page.locator('table[aria-label="Order summary"] tr:not(.total)')
    return [(row.locator("td").nth(0).inner_text(), row.locator("td.num").inner_text()) for row in rows.all()]


def assert_shows_order(page: Page, order: dict[str, Any]) -> None:
    expect(page.get_by_test_id("order-number")).to_have_text(order["number"])
    expect(page.get_by_test_id("order-total")).to_have_text(order["total"]["display"])
    rows = summary_rows(page)
    assert len(rows) == len(order["lines"]), rows
    for (item, line_total), line in zip(rows, order["lines"], strict=True):
        assert line["title"] in item and f"{TIMES} {line['quantity']}" in item, (item, line)
        assert f"{line['unit_price']['display']} each" in item
        assert line_total == line["line_total"]["display"]


def assert_real_screenshot(path: Path) -> None:
    width, height, distinct = png_facts(path)
    assert width >= 600 and height >= 300, (width, height)
    assert path.stat().st_size > 8_000 and distinct > 32, "the screenshot looks blank"


def test_link_for_an_order_shows_it_pays_once_and_then_answers_410(shop: Shop, tab: Tab, tmp_path: Path) -> None:
    page = tab.page
    order = shop.call(
        "create_order",
        {
            "idempotency_key": "browser-order-1",
            "items": [{"sku": "MUG-01", "quantity": 2}, {"sku": "BEANS-1", "quantity": 1}],
        },
    )
    link = shop.call("create_checkout_link", {"order_id": order["order_id"], "merchant_reference_id": "crm-b-1"})
    assert link["url"].startswith(shop.base_url + "/checkout/")

    response = page.goto(link["url"])
    assert response is not None and response.status == 200
    assert_shows_order(page, order)
    assert order["total"]["display"] == "$48.50"
    # the product title is shown as text, not markup
    assert page.get_by_text("Café <b>Crème</b> & Co Beans").count() == 1 and page.locator("main b").count() == 0
    expect(page.get_by_test_id("pay")).to_have_text("Pay $48.50 (test payment)")
    expect(page.get_by_role("note")).to_contain_text("Test mode")
    assert page.title() == "Pay $48.50 · Demo Store"

    shot = tmp_path / "checkout_page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert_real_screenshot(shot)

    page.get_by_test_id("pay").click()
    page.wait_for_url(re.compile(r"/checkout/done/cs_[0-9a-f]+$"))
    expect(page.get_by_test_id("paid")).to_be_visible()
    expect(page.get_by_test_id("order-number")).to_have_text(order["number"])
    page.screenshot(path=str(tmp_path / "paid_page.png"), full_page=True)
    assert_real_screenshot(tmp_path / "paid_page.png")

    paid = shop.call("get_order", {"order_id": order["order_id"]})
    assert paid["status"] == "paid" and paid["stock"] == "committed"
    assert paid["checkout"]["link_status"] == "consumed" and paid["checkout"]["session_status"] == "completed"
    assert paid["status_history"][-1]["actor"] == "buyer"

    again = page.goto(link["url"])
    assert again is not None and again.status == 410
    expect(page.get_by_test_id("error-code")).to_have_text("link_consumed")
    expect(page.locator("h1")).to_have_text("Already paid")
    assert page.get_by_test_id("pay").count() == 0
    tab.assert_only_local_requests()


def test_link_minted_from_sku_and_quantity_opens_and_pays(shop: Shop, tab: Tab) -> None:
    page = tab.page
    before = shop.stock("SOCK-M-GRY")
    link = shop.call("create_checkout_link", {"sku": "SOCK-M-GRY", "quantity": 3, "idempotency_key": "browser-sku-1"})
    order = shop.call("get_order", {"order_id": link["order_id"]})
    assert order["total"]["display"] == "$66.00" == link["total"]["display"]
    assert shop.stock("SOCK-M-GRY") == before - 3

    response = page.goto(link["url"])
    assert response is not None and response.status == 200
    assert_shows_order(page, order)
    assert summary_rows(page) == [(f"Merino Wool Socks - M / Grey {TIMES} 3\n$22.00 each", "$66.00")]
    page.get_by_test_id("pay").click()
    expect(page.get_by_test_id("paid")).to_be_visible()
    assert shop.call("get_order", {"order_id": link["order_id"]})["status"] == "paid"
    assert shop.stock("SOCK-M-GRY") == before - 3  # sold, not released
    tab.assert_only_local_requests()


def test_email_locked_link_asks_for_the_email_refuses_a_wrong_one_accepts_the_right_one(shop: Shop, tab: Tab) -> None:
    page = tab.page
    link = shop.call(
        "create_checkout_link",
        {"sku": "MUG-02", "quantity": 1, "idempotency_key": "browser-email-1", "email": "Buyer@Example.com"},
    )
    assert link["email_locked"] is True
    page.goto(link["url"])
    email = page.locator("input#email[type=email]")
    expect(email).to_be_visible()
    assert page.get_by_test_id("pay").count() == 0
    assert "buyer@example.com" not in page.content().lower()

    email.fill("eve@example.com")
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/email")) as refused:
        page.get_by_role("button", name="Continue").click()
    assert refused.value.status == 403
    expect(page.get_by_test_id("error-code")).to_have_text("email_mismatch")
    assert "buyer@" not in page.content().lower()
    assert shop.call("get_order", {"order_id": link["order_id"]})["status"] == "pending_payment"

    page.goto(link["url"])  # still locked
    expect(page.locator("input#email")).to_be_visible()
    page.locator("input#email").fill("BUYER@example.com")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(link["url"])
    expect(page.get_by_test_id("pay")).to_be_visible()
    assert page.locator("input#email").count() == 0
    page.get_by_test_id("pay").click()
    expect(page.get_by_test_id("paid")).to_be_visible()
    assert shop.call("get_order", {"order_id": link["order_id"]})["status"] == "paid"
    tab.assert_only_local_requests()


def test_cancel_button_cancels_the_order_and_releases_the_stock(shop: Shop, tab: Tab) -> None:
    page = tab.page
    before = shop.stock("MUG-01")
    order = shop.call(
        "create_order", {"idempotency_key": "browser-cancel-1", "items": [{"sku": "MUG-01", "quantity": 3}]}
    )
    assert shop.stock("MUG-01") == before - 3
    link = shop.call("create_checkout_link", {"order_id": order["order_id"]})
    page.goto(link["url"])
    assert_shows_order(page, order)

    page.get_by_role("link", name="Cancel this order").click()  # asks first; keeping the order changes nothing
    expect(page.locator("h1")).to_have_text("Cancel this order?")
    page.get_by_role("link", name="No, keep my order").click()
    page.wait_for_url(link["url"])
    expect(page.get_by_test_id("order-total")).to_have_text(order["total"]["display"])
    assert shop.call("get_order", {"order_id": order["order_id"]})["status"] == "pending_payment"

    page.get_by_role("link", name="Cancel this order").click()
    page.get_by_role("button", name="Yes, cancel the order").click()
    page.wait_for_url(re.compile(r"/checkout/canceled/cs_[0-9a-f]+$"))
    expect(page.locator("h1")).to_have_text("Order canceled")
    expect(page.locator("main")).to_contain_text(order["number"])

    canceled = shop.call("get_order", {"order_id": order["order_id"]})
    assert canceled["status"] == "canceled" and canceled["stock"] == "released"
    assert canceled["status_history"][-1]["actor"] == "buyer"
    assert shop.stock("MUG-01") == before

    again = page.goto(link["url"])
    assert again is not None and again.status == 410
    expect(page.get_by_test_id("error-code")).to_have_text("link_expired")
    expect(page.locator("h1")).to_have_text("This link has expired")  # words for the buyer: no code, no tool
    assert "create_checkout_link" not in page.content() and "_" not in page.get_by_test_id("error-message").inner_text()
    tab.assert_only_local_requests()


def test_email_locked_link_cannot_be_canceled_before_the_email_is_confirmed(shop: Shop, tab: Tab) -> None:
    page = tab.page
    link = shop.call(
        "create_checkout_link",
        {"sku": "MUG-02", "quantity": 1, "idempotency_key": "browser-email-2", "email": "owner@example.com"},
    )
    page.goto(link["url"])
    expect(page.locator("input#email")).to_be_visible()
    assert page.get_by_role("link", name="Cancel this order").count() == 0
    confirm = page.goto(link["url"] + "/cancel")  # straight to the confirmation: back to the email step
    assert confirm is not None and confirm.url == link["url"]
    expect(page.locator("input#email")).to_be_visible()
    assert shop.call("get_order", {"order_id": link["order_id"]})["status"] == "pending_payment"
    tab.assert_only_local_requests()


def test_the_buyer_gives_the_address_picks_an_option_pays_the_total_and_gets_a_receipt(
    shop: Shop, tab: Tab, tmp_path: Path
) -> None:
    with shipping_to_the_us(shop):
        buy_a_teapot_that_ships(shop, tab, tmp_path)


def buy_a_teapot_that_ships(shop: Shop, tab: Tab, tmp_path: Path) -> None:
    page = tab.page
    order = shop.call(
        "create_order", {"idempotency_key": "browser-ships-1", "items": [{"sku": "POT-01", "quantity": 2}]}
    )
    link = shop.call("create_checkout_link", {"order_id": order["order_id"]})
    page.goto(link["url"])

    # 1. the address first: no pay button, no intent yet
    expect(page.get_by_test_id("address-form")).to_be_visible()
    assert page.get_by_test_id("pay").count() == 0
    assert shop.call("get_order", {"order_id": order["order_id"]})["payment"] is None
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Address", exact=True).fill("1 Market St")
    page.get_by_label("City").fill("San Francisco")
    page.get_by_label("Country").select_option("US")
    page.get_by_label("Postal code").fill("94105")
    page.get_by_role("button", name="Continue to delivery options").click()

    # 2. the options for this address, with prices and delivery times
    expect(page.get_by_test_id("delivery-form")).to_be_visible()
    expect(page.get_by_test_id("option-ground")).to_contain_text("Ground")
    expect(page.get_by_test_id("option-ground")).to_contain_text("Arrives in 3 to 5 days")
    expect(page.get_by_test_id("option-ground")).to_contain_text("$5.00")
    expect(page.get_by_test_id("option-express")).to_contain_text("$15.00")
    page.get_by_test_id("option-express").click()
    page.get_by_role("button", name="Continue to payment").click()

    # 3. the breakdown, final before the intent exists; the ship-to; pay
    priced = shop.call("get_order", {"order_id": order["order_id"]})
    assert priced["shipping_total"]["display"] == "$15.00" and priced["subtotal"]["display"] == "$58.00"
    expect(page.get_by_test_id("subtotal")).to_have_text("$58.00")
    expect(page.get_by_test_id("shipping")).to_have_text("$15.00")
    expect(page.get_by_test_id("order-total")).to_have_text(priced["total"]["display"])
    expect(page.get_by_test_id("ship-to")).to_contain_text("Ada Lovelace")
    expect(page.get_by_test_id("ship-to")).to_contain_text("San Francisco")
    assert page.get_by_test_id("line-image").evaluate("img => img.naturalWidth") == 16  # the product's picture
    expect(page.get_by_test_id("pay")).to_have_text(f"Pay {priced['total']['display']} (test payment)")
    page.screenshot(path=str(tmp_path / "priced_page.png"), full_page=True)
    assert_real_screenshot(tmp_path / "priced_page.png")
    page.get_by_test_id("pay").click()

    # 4. the receipt
    page.wait_for_url(re.compile(r"/checkout/done/cs_[0-9a-f]+$"))
    expect(page.get_by_test_id("paid")).to_be_visible()
    expect(page.get_by_test_id("order-number")).to_have_text(order["number"])
    expect(page.get_by_test_id("receipt-date")).to_contain_text("UTC")
    expect(page.get_by_test_id("order-total")).to_have_text(priced["total"]["display"])
    expect(page.get_by_test_id("shipping")).to_have_text("$15.00")
    expect(page.get_by_test_id("ship-to")).to_contain_text("1 Market St")
    paid = shop.call("get_order", {"order_id": order["order_id"]})
    assert paid["status"] == "paid" and paid["payment"]["amount_received"]["amount"] == paid["total"]["amount"]
    tab.assert_only_local_requests()


def test_on_a_phone_the_card_keeps_a_margin_and_nothing_scrolls_sideways(shop: Shop, tab: Tab) -> None:
    page = tab.page
    page.set_viewport_size({"width": 375, "height": 740})
    link = shop.call("create_checkout_link", {"sku": "SOCK-M-GRY", "quantity": 1, "idempotency_key": "browser-phone-1"})
    page.goto(link["url"])
    box = page.locator("main").bounding_box()
    assert box is not None
    assert box["x"] >= 8 and box["x"] + box["width"] <= 375 - 8, box  # the card no longer touches the edges
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    pay = page.get_by_test_id("pay").bounding_box()
    assert pay is not None and pay["x"] >= box["x"] and pay["x"] + pay["width"] <= box["x"] + box["width"]
    tab.assert_only_local_requests()


def test_server_is_still_healthy_and_quiet(shop: Shop) -> None:
    """Last in the module: the server log holds no error and no checkout token."""
    log = shop.stderr_log.read_text()
    assert "Uvicorn running on http://127.0.0.1" in log
    assert " ERROR " not in log and "Traceback" not in log, log[-3000:]
    assert not re.search(r"/checkout/[A-Za-z0-9_-]{43}", log), "a checkout token reached the log"
