"""The UCP checkout capability over REST (in process, both backends): the lifecycle mapped onto native
carts, orders and checkout links; every answer validated against the spec's pinned schemas and the
ucp-sdk models (tests/ucp_client.conforms)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import text

from mcp_checkout.config import Settings
from mcp_checkout.domain import Principal, utc_now
from mcp_checkout.service.container import Services, build_services
from tests.pricing_rows import add_discount_code
from tests.ucp_client import (
    DESTINATION,
    PLATFORM_PROFILE,
    Platform,
    conforms,
    platform_profile,
    priced_store,
    totals,
    ucp_app,
)

BASE = "http://shop.test"
OLD_PLATFORM = "https://old-platform.test/.well-known/ucp"
CHECKOUT_ONLY = "https://checkout-only.test/.well-known/ucp"
CATALOG_ONLY = "https://catalog-only.test/.well-known/ucp"


@pytest.fixture
async def shop(settings: Settings, seeded: Services) -> AsyncIterator[tuple[Platform, httpx.AsyncClient, Services]]:
    services = build_services(settings.model_copy(update={"public_base_url": BASE}), db=seeded.db)
    app = ucp_app(
        services,
        {
            PLATFORM_PROFILE: platform_profile(),
            OLD_PLATFORM: platform_profile("2026-01-11"),
            CHECKOUT_ONLY: platform_profile(capabilities={"dev.ucp.shopping.checkout": [{"version": "2026-04-08"}]}),
            CATALOG_ONLY: platform_profile(
                capabilities={"dev.ucp.shopping.catalog.search": [{"version": "2026-04-08"}]}
            ),
        },
    )
    key = (await services.access.create_key("platform", "buyer")).key
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield Platform(client, key), client, services


async def pay_on_our_page(web: httpx.AsyncClient, url: str) -> None:
    path = url.removeprefix(BASE)
    page = await web.get(path)
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    paid = await web.post(path + "/pay", data={"csrf": csrf.group(1)})
    assert paid.status_code == 303, paid.text


async def orders_of(services: Services, cart_id: str) -> int:
    query = text("select count(*) from orders where cart_id = :cart_id")
    return int(await services.db.read(lambda conn: conn.execute(query, {"cart_id": cart_id}).scalar_one()))


async def test_create_then_update_gives_a_priced_checkout_ready_to_complete(shop: Any) -> None:
    platform, _, _ = shop
    created = await platform.create([("MUG-01", 2)])
    assert created.status_code == 201
    checkout = conforms(created)
    assert checkout["status"] == "ready_for_complete"
    assert checkout["currency"] == "USD"
    assert checkout["ucp"]["version"] == "2026-04-08"
    assert checkout["ucp"]["capabilities"] == {
        "dev.ucp.shopping.checkout": [{"version": "2026-04-08"}],
        "dev.ucp.shopping.fulfillment": [{"version": "2026-04-08", "extends": "dev.ucp.shopping.checkout"}],
        "dev.ucp.shopping.discount": [{"version": "2026-04-08", "extends": "dev.ucp.shopping.checkout"}],
    }
    [line] = checkout["line_items"]
    assert (line["item"]["id"], line["item"]["price"], line["quantity"]) == ("MUG-01", 1800, 2)
    assert totals(checkout) == {"subtotal": 3600, "total": 3600}

    updated = conforms(await platform.update(checkout["id"], [("MUG-02", 1), ("SOCK-M-GRY", 3)]))
    assert [(x["item"]["id"], x["quantity"]) for x in updated["line_items"]] == [("MUG-02", 1), ("SOCK-M-GRY", 3)]
    assert totals(updated)["total"] == 1450 + 3 * 2200
    assert conforms(await platform.get(checkout["id"])) == updated


async def test_lines_that_cannot_be_had_are_messages_with_a_jsonpath(shop: Any) -> None:
    platform, _, _ = shop
    checkout = conforms(await platform.create([("MUG-01", 1), ("NO-SUCH-SKU", 1), ("TOWEL-EU", 1)]))
    assert checkout["status"] == "incomplete"
    problems = {(m["code"], m["path"], m["severity"]) for m in checkout["messages"]}
    assert problems == {
        ("item_unavailable", "$.line_items[1].item.id", "recoverable"),
        ("item_unavailable", "$.line_items[2].item.id", "recoverable"),  # priced in EUR, the checkout in USD
    }
    over = conforms(await platform.update(checkout["id"], [("MUG-02", 5)]))  # 2 in stock
    assert over["status"] == "incomplete"
    assert [(m["code"], m["path"]) for m in over["messages"]] == [
        ("out_of_stock", "$.line_items[0].quantity"),
        ("missing", "$.line_items"),
    ]


async def test_a_checkout_of_nothing_available_is_the_error_envelope(shop: Any) -> None:
    platform, _, _ = shop
    answer = await platform.create([("NO-SUCH-SKU", 1), ("SOCK-L-GRY", 1)])  # unknown; out of stock
    assert answer.status_code == 200
    body = conforms(answer)
    assert body["ucp"]["status"] == "error"
    assert {m["severity"] for m in body["messages"]} == {"unrecoverable"}


async def test_completing_escalates_to_our_checkout_page_then_the_paid_order_completes_it(shop: Any) -> None:
    platform, web, services = shop
    checkout = conforms(await platform.create([("MUG-01", 2)]))
    key = str(uuid.uuid4())
    escalated = conforms(await platform.complete(checkout["id"], key))
    assert escalated["status"] == "requires_escalation"
    assert escalated["continue_url"].startswith(f"{BASE}/checkout/")
    assert [(m["code"], m["severity"]) for m in escalated["messages"]] == [("payment_required", "requires_buyer_input")]
    assert conforms(await platform.get(checkout["id"]))["continue_url"] == escalated["continue_url"]

    await pay_on_our_page(web, escalated["continue_url"])
    completed = conforms(await platform.get(checkout["id"]))
    assert completed["status"] == "completed"
    assert "continue_url" not in completed
    order_id = completed["order"]["id"]
    principal = Principal(id="merchant", kind="merchant")
    native = await services.orders.get(principal, order_id)  # one order, seen by the native tools too
    assert (native.status, native.cart_id, native.total.amount) == ("paid", checkout["id"], 3600)


async def test_buyer_destination_option_and_discount_code_price_the_checkout_then_it_is_paid(shop: Any) -> None:
    platform, web, services = shop
    await services.db.write(priced_store)
    checkout = conforms(await platform.create([("MUG-01", 2)]))
    assert checkout["status"] == "incomplete"  # the mug ships: a destination and an option are missing
    assert {m["path"] for m in checkout["messages"]} >= {"$.fulfillment.methods[0].destinations[0]"}

    bad = conforms(
        await platform.update(
            checkout["id"],
            [("MUG-01", 2)],
            fulfillment={"methods": [{"type": "shipping", "destinations": [{**DESTINATION, "address_country": "ZZ"}]}]},
        )
    )
    assert bad["status"] == "incomplete"
    assert any(
        m["code"] == "invalid" and m["path"].startswith("$.fulfillment.methods[0].destinations[0]")
        for m in bad["messages"]
    )

    addressed = conforms(
        await platform.update(
            checkout["id"],
            [("MUG-01", 2)],
            buyer={"email": "Ada@Example.com", "first_name": "Ada", "last_name": "Lovelace"},
            fulfillment={
                "methods": [{"type": "shipping", "destinations": [DESTINATION], "selected_destination_id": "home"}]
            },
            discounts={"codes": ["ten"]},
        )
    )
    assert addressed["buyer"] == {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}
    [method] = addressed["fulfillment"]["methods"]
    assert method["destinations"][0]["postal_code"] == "94105"
    [group] = method["groups"]
    assert [(o["id"], o["totals"][0]["amount"]) for o in group["options"]] == [("ground", 599), ("express", 1999)]
    assert "selected_option_id" not in group
    assert addressed["status"] == "incomplete"
    assert "$.fulfillment.methods[0].groups[0].selected_option_id" in {m.get("path") for m in addressed["messages"]}
    said = [m["content"] for m in checkout["messages"] + addressed["messages"]]
    assert not [text for text in said if "update_cart" in text], said  # UCP words, not native tool names

    chosen = {"methods": [{"type": "shipping", "groups": [{"id": "shipping_group", "selected_option_id": "express"}]}]}
    ready = conforms(await platform.update(checkout["id"], [("MUG-01", 2)], fulfillment=chosen))
    assert ready["status"] == "ready_for_complete", ready.get("messages")
    assert ready["fulfillment"]["methods"][0]["groups"][0]["selected_option_id"] == "express"
    assert ready["discounts"]["applied"] == [{"code": "TEN", "title": "TEN", "amount": 360}]
    tax = round((3600 - 360 + 1999) * 0.0725)
    assert totals(ready) == {
        "subtotal": 3600,
        "discount": -360,
        "fulfillment": 1999,
        "tax": tax,
        "total": 3600 - 360 + 1999 + tax,
    }

    escalated = conforms(await platform.complete(checkout["id"], str(uuid.uuid4())))
    assert escalated["status"] == "requires_escalation"
    assert totals(escalated) == totals(ready)
    await pay_on_our_page(web, escalated["continue_url"])
    completed = conforms(await platform.get(checkout["id"]))
    assert completed["status"] == "completed"
    assert completed["discounts"]["applied"][0]["code"] == "TEN"
    native = await services.orders.get(Principal(id="merchant", kind="merchant"), completed["order"]["id"])
    assert (native.status, native.total.amount, native.shipping_address is not None) == (
        "paid",
        totals(ready)["total"],
        True,
    )


async def test_offline_test_tokens_pay_or_are_declined_at_completion(shop: Any) -> None:
    platform, _, _ = shop
    declined_checkout = conforms(await platform.create([("MUG-01", 1)]))
    declined = conforms(await platform.complete(declined_checkout["id"], str(uuid.uuid4()), token="decline_token"))
    assert declined["status"] == "requires_escalation"
    assert declined["messages"][0]["code"] == "payment_failed"
    assert declined["messages"][0]["path"] == "$.payment.instruments[0].credential"

    paid_checkout = conforms(await platform.create([("MUG-01", 1)]))
    paid = conforms(await platform.complete(paid_checkout["id"], str(uuid.uuid4()), token="success_token"))
    assert paid["status"] == "completed" and paid["order"]["id"].startswith("ord")


async def test_complete_is_exactly_once_per_idempotency_key(shop: Any) -> None:
    platform, _, services = shop
    checkout = conforms(await platform.create([("MUG-01", 1)]))
    missing_key = await platform.complete(checkout["id"], None)
    assert missing_key.status_code == 400 and conforms(missing_key)["code"] == "invalid_request"

    key = str(uuid.uuid4())
    first = conforms(await platform.complete(checkout["id"], key))
    again = conforms(await platform.complete(checkout["id"], key))
    assert again == first
    conflict = await platform.complete(checkout["id"], key, token="success_token")  # same key, other body
    assert conflict.status_code == 409 and conforms(conflict)["code"] == "idempotency_conflict"
    assert await orders_of(services, checkout["id"]) == 1


async def test_concurrent_completes_of_one_checkout_make_one_order(shop: Any) -> None:
    platform, _, services = shop
    checkout = conforms(await platform.create([("MUG-01", 1)]))
    answers: list[dict[str, Any]] = []

    async def complete(key: str) -> None:
        answers.append(conforms(await platform.complete(checkout["id"], key)))

    async with anyio.create_task_group() as tasks:
        for key in [str(uuid.uuid4()) for _ in range(4)] + ["same-key"] * 2:
            tasks.start_soon(complete, key)
    assert {a["status"] for a in answers} == {"requires_escalation"}
    assert len({a["continue_url"] for a in answers}) == 1
    assert await orders_of(services, checkout["id"]) == 1


async def test_cancel_closes_an_open_checkout_or_its_unpaid_order_and_refuses_twice(shop: Any) -> None:
    platform, _, services = shop
    open_checkout = conforms(await platform.create([("MUG-01", 1)]))
    assert conforms(await platform.cancel(open_checkout["id"]))["status"] == "canceled"
    again = await platform.cancel(open_checkout["id"])
    assert again.status_code == 409 and conforms(again)["code"] == "invalid_state"
    closed = await platform.update(open_checkout["id"], [("MUG-01", 2)])
    assert closed.status_code == 409

    escalated = conforms(await platform.create([("MUG-01", 1)]))
    conforms(await platform.complete(escalated["id"], str(uuid.uuid4())))
    canceled = conforms(await platform.cancel(escalated["id"]))
    assert canceled["status"] == "canceled" and "continue_url" not in canceled
    merchant = Principal(id="merchant", kind="merchant")
    cart = await services.carts.get(merchant, escalated["id"])
    assert (await services.orders.get(merchant, cart.order_id or "")).status == "canceled"


async def test_unknown_checkouts_are_not_found_in_the_error_envelope(shop: Any) -> None:
    platform, _, _ = shop
    answer = await platform.get("cart_does_not_exist")
    assert answer.status_code == 404
    assert conforms(answer)["messages"][0]["code"] == "not_found"


async def test_platforms_are_authenticated_and_negotiated(shop: Any) -> None:
    platform, client, _ = shop
    body = {"line_items": [{"item": {"id": "MUG-01"}, "quantity": 1}]}
    url = "/ucp/v1/checkout-sessions"
    no_key = await client.post(url, json=body, headers={"UCP-Agent": platform.headers["UCP-Agent"]})
    assert no_key.status_code == 401 and no_key.headers["www-authenticate"] == 'Bearer realm="ucp"'
    assert conforms(no_key)["code"] == "unauthorized"

    no_agent = await client.post(url, json=body, headers={"X-API-Key": platform.headers["X-API-Key"]})
    assert (no_agent.status_code, conforms(no_agent)["code"]) == (400, "invalid_profile_url")

    old = await client.post(url, json=body, headers={**platform.headers, "UCP-Agent": f'profile="{OLD_PLATFORM}"'})
    assert (old.status_code, conforms(old)["code"]) == (422, "version_unsupported")

    gone = await client.post(
        url, json=body, headers={**platform.headers, "UCP-Agent": 'profile="https://nowhere.test/.well-known/ucp"'}
    )
    assert (gone.status_code, conforms(gone)["code"]) == (424, "profile_unreachable")


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"line_items": "x"}', b'{"line_items": [{"item": {}, "quantity": 1}]}',
     b'{"line_items": [{"item": {"id": "MUG-01"}, "quantity": 0}]}'],
)  # fmt: skip
async def test_bad_input_is_a_400_protocol_error(shop: Any, body: bytes) -> None:
    platform, client, _ = shop
    answer = await client.post(
        "/ucp/v1/checkout-sessions", content=body, headers={**platform.headers, "Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert conforms(answer)["code"] == "invalid_request"


async def test_create_under_an_idempotency_key_is_one_checkout_and_another_body_conflicts(shop: Any) -> None:
    platform, client, _ = shop
    headers = {**platform.headers, "Idempotency-Key": str(uuid.uuid4())}
    body = {"line_items": [{"item": {"id": "MUG-01"}, "quantity": 1}]}
    first = await client.post("/ucp/v1/checkout-sessions", json=body, headers=headers)
    retry = await client.post("/ucp/v1/checkout-sessions", json=body, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert conforms(retry) == conforms(first)
    other = {"line_items": [{"item": {"id": "MUG-01"}, "quantity": 2}]}
    conflict = await client.post("/ucp/v1/checkout-sessions", json=other, headers=headers)
    assert (conflict.status_code, conforms(conflict)["code"]) == (409, "idempotency_conflict")


async def test_the_store_policy_pages_are_the_checkouts_links(shop: Any) -> None:
    platform, _, services = shop
    merchant = Principal(id="merchant", kind="merchant")
    await services.store_profile.update(
        merchant, {"privacy_url": "https://shop.test/privacy", "terms_url": "https://shop.test/terms"}
    )
    checkout = conforms(await platform.create([("MUG-01", 1)]))
    assert checkout["links"] == [
        {"type": "privacy_policy", "url": "https://shop.test/privacy"},
        {"type": "terms_of_service", "url": "https://shop.test/terms"},
    ]


async def test_a_cancel_retried_under_its_idempotency_key_answers_like_the_first(shop: Any) -> None:
    """The spec's Idempotency-Key rule (checkout-rest.md): a duplicate key gets the cached result, another
    request under the key 409. Before, a retried cancel got 409 invalid_state (the checkout was canceled)."""
    platform, _, _ = shop
    first_checkout = conforms(await platform.create([("MUG-01", 1)]))
    other_checkout = conforms(await platform.create([("MUG-01", 1)]))
    key = str(uuid.uuid4())
    first = await platform.cancel(first_checkout["id"], key)
    assert first.status_code == 200 and conforms(first)["status"] == "canceled"
    replay = await platform.cancel(first_checkout["id"], key)
    assert replay.status_code == 200 and conforms(replay) == conforms(first)
    elsewhere = await platform.cancel(other_checkout["id"], key)  # the key names another request
    assert (elsewhere.status_code, conforms(elsewhere)["code"]) == (409, "idempotency_conflict")
    assert conforms(await platform.get(other_checkout["id"]))["status"] == "ready_for_complete"
    again = await platform.cancel(first_checkout["id"])  # a new request: the checkout is canceled already
    assert (again.status_code, conforms(again)["code"]) == (409, "invalid_state")


async def test_a_cancel_without_an_idempotency_key_is_refused_and_cancels_nothing(shop: Any) -> None:
    """The spec requires the key on cancel as on complete (rest.openapi.json: the Idempotency-Key parameter
    is required; checkout-mcp.md: cancel_checkout requires meta["idempotency-key"]). Before, a cancel
    without one was carried out."""
    platform, client, _ = shop
    checkout = conforms(await platform.create([("MUG-01", 1)]))
    unkeyed = await client.post(f"/ucp/v1/checkout-sessions/{checkout['id']}/cancel", headers=platform.headers)
    assert (unkeyed.status_code, conforms(unkeyed)["code"]) == (400, "invalid_request")
    assert "Idempotency-Key" in conforms(unkeyed)["content"]
    assert conforms(await platform.get(checkout["id"]))["status"] == "ready_for_complete"


async def test_answers_carry_only_the_capabilities_negotiated_with_the_platform(shop: Any) -> None:
    """The spec's intersection (overview.md, Negotiation Protocol): a platform that declares the checkout
    but not its fulfillment and discount extensions gets a checkout without them; one that declares no
    checkout gets capabilities_incompatible (200, the error envelope) and no checkout is made. Before,
    every answer named all our capabilities whatever the platform declared."""
    platform, client, services = shop
    await services.db.write(lambda conn: add_discount_code(conn, "SAVE10"))
    lean = Platform(client, platform.headers["X-API-Key"], CHECKOUT_ONLY)
    created = conforms(await lean.create([("MUG-01", 1)], discounts={"codes": ["SAVE10"]}))
    assert created["ucp"]["capabilities"] == {"dev.ucp.shopping.checkout": [{"version": "2026-04-08"}]}
    assert "discounts" not in created and "fulfillment" not in created
    full = conforms(await platform.get(created["id"]))  # the same checkout, to a platform with everything
    assert set(full["ucp"]["capabilities"]) == {
        "dev.ucp.shopping.checkout", "dev.ucp.shopping.fulfillment", "dev.ucp.shopping.discount"
    }  # fmt: skip
    assert full["discounts"]["codes"] == ["SAVE10"]

    before = await orders_of(services, created["id"])
    shopper = Platform(client, platform.headers["X-API-Key"], CATALOG_ONLY)
    refused = await shopper.create([("MUG-01", 1)])
    body = conforms(refused)
    assert refused.status_code == 200 and body["ucp"]["status"] == "error"
    assert [m["code"] for m in body["messages"]] == ["capabilities_incompatible"] and body["continue_url"] == BASE
    assert (await shopper.get(created["id"])).json()["messages"][0]["code"] == "capabilities_incompatible"
    assert await orders_of(services, created["id"]) == before


async def test_an_unpaid_order_that_expires_cancels_its_checkout(shop: Any) -> None:
    platform, _, services = shop
    checkout = conforms(await platform.create([("MUG-01", 1)]))
    conforms(await platform.complete(checkout["id"], str(uuid.uuid4())))
    merchant = Principal(id="merchant", kind="merchant")
    order_id = (await services.carts.get(merchant, checkout["id"])).order_id
    past = text("update orders set expires_at = :past where id = :id")
    await services.db.write(lambda conn: conn.execute(past, {"past": utc_now() - timedelta(minutes=1), "id": order_id}))
    assert await services.orders.expire_due() == 1
    expired = conforms(await platform.get(checkout["id"]))
    assert expired["status"] == "canceled" and "continue_url" not in expired
