"""What the buyer sees on the checkout page, its cancel confirmation, its receipt and its error pages:
handlers driven through the web app (httpx on ASGI), orders made through a real MCP client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from mcp import Client

from mcp_checkout.config import Settings
from mcp_checkout.domain import utc_now
from mcp_checkout.server import build_server
from mcp_checkout.service import store_profile
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.store import store_profile as profile_store
from mcp_checkout.web.app import build_web_app

BASE = "http://shop.test"


def data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    return dict(result.structured_content)


@pytest.fixture
async def shop(settings: Settings, seeded: Services) -> AsyncIterator[tuple[Any, httpx.AsyncClient, Services]]:
    shop_settings = settings.model_copy(update={"public_base_url": BASE})
    services = build_services(shop_settings, db=seeded.db)
    server = build_server(shop_settings, services=services)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_web_app(lambda: services)), base_url=BASE
    ) as web:
        yield server, web, services


async def save_profile(services: Services, **changes: Any) -> None:
    profile = replace(store_profile.from_settings(services.settings), **changes)
    await services.db.write(lambda conn: profile_store.save(conn, profile, utc_now()))


async def order_and_link(client: Client, key: str, quantity: int = 2) -> tuple[dict[str, Any], str]:
    order = data(
        await client.call_tool(
            "create_order", {"idempotency_key": key, "items": [{"sku": "MUG-01", "quantity": quantity}]}
        )
    )
    link = data(await client.call_tool("create_checkout_link", {"order_id": order["order_id"]}))
    return order, link["url"][len(BASE) :]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


async def test_the_page_shows_the_store_its_policies_and_prices_in_the_stores_locale(shop: Any) -> None:
    server, web, services = shop
    await save_profile(
        services,
        name="Harbor Ceramics",
        locale="de_DE",
        logo_url="https://cdn.harbor.example/logo.png",
        support_email="help@harbor.example",
        terms_url="https://harbor.example/terms",
        privacy_url="https://harbor.example/privacy",
        returns_url="https://harbor.example/returns",
        shipping_policy_url="javascript:alert(1)",  # never shown as a link
    )
    async with Client(server) as client:
        order, path = await order_and_link(client, "page-brand-1")
        page = await web.get(path)
    assert page.status_code == 200
    html = page.text
    assert "Harbor Ceramics" in html and 'src="https://cdn.harbor.example/logo.png"' in html
    assert 'href="mailto:help@harbor.example"' in html
    for url in ("https://harbor.example/terms", "https://harbor.example/privacy", "https://harbor.example/returns"):
        assert f'href="{url}"' in html
    assert "javascript:" not in html
    assert order["total"]["display"] == "$36.00"  # agents read en_US; the buyer reads the store's locale
    assert '<td class="num" data-testid="order-total">36,00\xa0$</td>' in html
    assert "18,00\xa0$ each" in html and '<td class="num" data-testid="subtotal">36,00\xa0$</td>' in html
    assert "img-src 'self' data: https:;" in page.headers["content-security-policy"]

    as_json = (await web.get(path, headers={"accept": "application/json"})).json()
    assert as_json["store"]["name"] == "Harbor Ceramics" and as_json["store"]["shipping_policy_url"] is None
    assert as_json["step"] == "pay" and as_json["requires_shipping"] is False
    assert {key: as_json[key]["amount"] for key in ("subtotal", "discount_total", "shipping_total", "tax_total")} == {
        "subtotal": 3600,
        "discount_total": 0,
        "shipping_total": 0,
        "tax_total": 0,
    }
    assert as_json["total"] == {"amount": 3600, "currency": "USD", "display": "36,00\xa0$"}


async def test_cancel_asks_first_and_only_the_confirmed_post_cancels(shop: Any) -> None:
    server, web, _ = shop
    async with Client(server) as client:
        order, path = await order_and_link(client, "page-cancel-1")
        page = await web.get(path)
        assert f'href="{path}/cancel"' in page.text and 'action="' + path + '/cancel"' not in page.text
        confirm = await web.get(path + "/cancel")
        assert confirm.status_code == 200 and "Cancel this order?" in confirm.text and "$36.00" in confirm.text
        still = data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert still["status"] == "pending_payment"  # looking at the question changes nothing

        done = await web.post(path + "/cancel", data={"csrf": csrf_of(confirm.text)})
        assert done.status_code == 303 and "/checkout/canceled/" in done.headers["location"]
        canceled = data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert canceled["status"] == "canceled" and canceled["stock"] == "released"
        outcome = await web.get(done.headers["location"][len(BASE) :])
        assert "Order canceled" in outcome.text and order["number"] in outcome.text


async def test_the_success_page_is_a_receipt(shop: Any) -> None:
    server, web, _ = shop
    async with Client(server) as client:
        order, path = await order_and_link(client, "page-receipt-1", quantity=3)
        page = await web.get(path)
        paid = await web.post(path + "/pay", data={"csrf": csrf_of(page.text)})
        assert paid.status_code == 303
        receipt = await web.get(paid.headers["location"][len(BASE) :])
        view = data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
    html = receipt.text
    assert receipt.status_code == 200 and "Thank you" in html
    assert f'data-testid="order-number">{order["number"]}<' in html
    paid_at = next(change["at"] for change in view["status_history"] if change["to_status"] == "paid")
    assert f'data-testid="receipt-date">{paid_at[:10]} {paid_at[11:16]} UTC<' in html
    assert "Stoneware Coffee Mug" in html and "\N{MULTIPLICATION SIGN} 3" in html and "$18.00 each" in html
    assert 'data-testid="subtotal">$54.00<' in html and 'data-testid="order-total">$54.00<' in html


@pytest.mark.parametrize(
    ("break_it", "status", "headline"),
    [
        ("unknown", 404, "Checkout not found"),
        ("canceled", 410, "This link has expired"),
        ("paid", 410, "Already paid"),
    ],
)
async def test_error_pages_speak_to_buyers(shop: Any, break_it: str, status: int, headline: str) -> None:
    server, web, _ = shop
    async with Client(server) as client:
        order, path = await order_and_link(client, f"page-error-{break_it}")
        if break_it == "unknown":
            path = path[:-6] + "AAAAAA"
        elif break_it == "canceled":
            await client.call_tool("cancel_order", {"order_id": order["order_id"]})
        else:
            page = await web.get(path)
            await web.post(path + "/pay", data={"csrf": csrf_of(page.text)})
        answer = await web.get(path)
    assert answer.status_code == status
    assert re.search(r"<h1>(.*)</h1>", answer.text).group(1) == headline  # type: ignore[union-attr]
    message = re.search(r'data-testid="error-message">(.*?)</p>', answer.text, re.S).group(1)  # type: ignore[union-attr]
    assert "_" not in message and "call " not in message, message  # no tool names, no codes
    json_answer = await web.get(path, headers={"accept": "application/json"})
    assert json_answer.json()["error"] in ("link_not_found", "link_expired", "link_consumed")  # agents keep codes


async def test_an_order_that_ships_asks_for_the_address_first_and_makes_no_intent_yet(shop: Any) -> None:
    server, web, _ = shop
    async with Client(server) as client:
        await add_rates(client)  # the store ships: an order of things that ship needs an address
        order, path = await order_and_link(client, "page-ships-1")
        page = await web.get(path)
        assert page.status_code == 200
        assert 'data-testid="address-form"' in page.text and 'data-testid="pay"' not in page.text
        assert '<select id="country" name="country"' in page.text and '<option value="DE">Germany</option>' in page.text
        assert (await web.get(path, headers={"accept": "application/json"})).json()["step"] == "address"
        view = data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert view["payment"] is None  # no PaymentIntent before the total is final


async def test_a_bad_address_comes_back_with_the_buyers_words_beside_each_field_and_nothing_typed_is_lost(
    shop: Any,
) -> None:
    server, web, _ = shop
    async with Client(server) as client:
        await add_rates(client)
        order, path = await order_and_link(client, "page-bad-address-1")
        page = await web.get(path)
        typed = {
            "name": "Ada Lovelace",
            "line1": "12 St James's Square",
            "line2": "",
            "city": "London",
            "region": "",
            "postal_code": "   ",  # blank
            "country": "GB",
        }
        answer = await web.post(path + "/address", data={**typed, "csrf": csrf_of(page.text)})
        assert answer.status_code == 400
        html = answer.text
        assert 'data-testid="error-postal_code">Enter the postal code.</p>' in html
        assert (
            'id="postal_code" name="postal_code"' in html
            and 'aria-invalid="true" aria-describedby="postal_code-error"' in html
        )
        assert (
            'value="Ada Lovelace"' in html and 'value="12 St James&#39;s Square"' in html and 'value="London"' in html
        )
        assert '<option value="GB" selected>United Kingdom</option>' in html
        assert "invalid_input" not in html and "shipping_address" not in html  # no codes, no argument names

        too_long = {**typed, "postal_code": "SW1Y 4LE", "city": "L" * 101, "name": "Ada\x00Lovelace"}
        answer = await web.post(path + "/address", data={**too_long, "csrf": csrf_of(page.text)})
        assert answer.status_code == 400
        assert 'data-testid="error-city">This is too long; shorten it.</p>' in answer.text
        assert 'data-testid="error-name">This contains characters we cannot accept; retype it.</p>' in answer.text
        assert 'data-testid="error-postal_code"' not in answer.text

        view = data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert view["shipping_address"] is None and view["payment"] is None  # nothing changed
        assert (await web.get(path, headers={"accept": "application/json"})).json()["step"] == "address"


async def add_rates(client: Client) -> None:
    """Two ways to ship to the US and one to Germany, and California's sales tax, with the merchant's tools."""
    for rate_id, name, country, price, low, high in (
        ("us-ground", "Ground", "US", 500, 3, 5),
        ("us-express", "Express", "US", 1500, 1, 2),
        ("de-post", "Deutsche Post", "DE", 900, 4, 7),
    ):
        arguments = {"rate_id": rate_id, "name": name, "countries": [country], "price": price, "currency": "USD"}
        data(await client.call_tool("upsert_shipping_rate", {**arguments, "min_days": low, "max_days": high}))
    data(await client.call_tool("upsert_tax_rate", {"country": "US", "region": "CA", "rate_bps": 1000}))


ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "1 Market St",
    "line2": "",
    "city": "San Francisco",
    "region": "California",
    "postal_code": "94105",
    "country": "US",
}


async def test_address_then_options_then_pay_charges_the_total_priced_on_the_server(shop: Any) -> None:
    server, web, _ = shop
    async with Client(server) as client:
        await add_rates(client)
        order, path = await order_and_link(client, "page-flow-1")  # 2 mugs, $36.00
        page = await web.get(path)
        saved = await web.post(path + "/address", data={**ADDRESS, "csrf": csrf_of(page.text)})
        assert saved.status_code == 303 and saved.headers["location"] == path

        options = await web.get(path)
        assert 'data-testid="delivery-form"' in options.text and 'data-testid="pay"' not in options.text
        assert 'value="us-ground"' in options.text and 'value="us-express"' in options.text
        assert 'value="de-post"' not in options.text  # only what serves this address
        assert "Arrives in 3 to 5 days" in options.text and "$5.00" in options.text and "$15.00" in options.text
        assert data(await client.call_tool("get_order", {"order_id": order["order_id"]}))["payment"] is None

        bad = await web.post(path + "/delivery", data={"option_id": "de-post", "csrf": csrf_of(options.text)})
        assert bad.status_code == 400 and 'data-testid="delivery-error"' in bad.text  # not for this address
        chosen = await web.post(path + "/delivery", data={"option_id": "us-express", "csrf": csrf_of(options.text)})
        assert chosen.status_code == 303

        view = data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert view["shipping_total"]["amount"] == 1500 and view["tax_total"]["amount"] == 360  # 10 % of $36.00
        assert view["total"]["amount"] == 3600 + 1500 + 360
        assert view["shipping_address"]["region"] == "CA"

        ready = await web.get(path)
        html = ready.text
        assert 'data-testid="pay">Pay $54.60 (test payment)<' in html
        assert 'data-testid="shipping">$15.00<' in html and 'data-testid="tax">$3.60<' in html
        assert 'data-testid="ship-to"' in html and "San Francisco, CA 94105" in html and "United States" in html
        paid = await web.post(path + "/pay", data={"csrf": csrf_of(html)})
        assert paid.status_code == 303
        final = data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert final["status"] == "paid" and final["payment"]["amount_received"]["amount"] == final["total"]["amount"]
        receipt = (await web.get(paid.headers["location"][len(BASE) :])).text
        assert 'data-testid="order-total">$54.60<' in receipt and "San Francisco, CA 94105" in receipt


async def test_an_unknown_region_is_shown_beside_the_region_field(shop: Any) -> None:
    server, web, _ = shop
    async with Client(server) as client:
        await add_rates(client)
        order, path = await order_and_link(client, "page-region-1")
        page = await web.get(path)
        answer = await web.post(path + "/address", data={**ADDRESS, "region": "Atlantis", "csrf": csrf_of(page.text)})
        assert answer.status_code == 400
        assert 'data-testid="error-region">We do not know this state or region in United States' in answer.text
        assert 'value="Atlantis"' in answer.text and 'value="1 Market St"' in answer.text
        view = data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert view["shipping_address"] is None


async def test_changing_the_address_after_the_intent_exists_replaces_it_one_live_intent(
    stripe_shop: Any,
) -> None:
    shop, fake = stripe_shop, stripe_shop.fake
    async with Client(shop.server) as client:
        await add_rates(client)
        order = data(
            await client.call_tool(
                "create_order", {"idempotency_key": "page-change-1", "items": [{"sku": "MUG-01", "quantity": 2}]}
            )
        )
        link = data(await client.call_tool("create_checkout_link", {"order_id": order["order_id"]}))
        path = shop.path_of(link["url"])
        page = await shop.web.get(path)
        assert fake.intents_for_order(order["order_id"]) == []  # no intent before the total is final
        await shop.web.post(path + "/address", data={**ADDRESS, "csrf": csrf_of(page.text)})
        await shop.web.post(path + "/delivery", data={"option_id": "us-ground", "csrf": csrf_of(page.text)})
        first = await shop.web.get(path)
        [intent] = fake.intents_for_order(order["order_id"])
        assert intent["amount"] == 3600 + 500 + 360 and 'data-testid="pay">Pay $44.60<' in first.text

        # "Change" under Ship to: the form again, filled in with the address as it is
        change = await shop.web.get(path + "?change=address")
        assert 'data-testid="address-form"' in change.text and 'value="1 Market St"' in change.text
        assert len(fake.intents_for_order(order["order_id"])) == 1  # looking at the form changes nothing
        # to Germany: no Californian tax; the option must be chosen again; the $44.60 intent is canceled at once
        moved = await shop.web.post(
            path + "/address",
            data={**ADDRESS, "region": "", "city": "Berlin", "postal_code": "10115", "country": "DE",
                  "csrf": csrf_of(change.text)},
        )  # fmt: skip
        assert moved.status_code == 303
        assert fake.intents[intent["id"]]["status"] == "canceled"
        await shop.web.post(path + "/delivery", data={"option_id": "de-post", "csrf": csrf_of(change.text)})
        again = await shop.web.get(path)
        intents = fake.intents_for_order(order["order_id"])
        live = [i for i in intents if i["status"] != "canceled"]
        assert len(intents) == 2 and len(live) == 1 and live[0]["amount"] == 3600 + 900
        view = data(await client.call_tool("get_order", {"order_id": order["order_id"]}))
        assert view["total"]["amount"] == live[0]["amount"] and view["payment"]["attempt"] == 2
        assert 'data-testid="pay">Pay $45.00<' in again.text
        assert (await shop.web.get(path)).text.count('data-testid="pay"') == 1
        assert len(fake.intents_for_order(order["order_id"])) == 2  # reloading makes no new intent
