"""The UCP order capability (in process, both backends): get_order over REST shows the native order
(fulfilled quantities, shipments with tracking, refunds as adjustments), and the platform that gave a
webhook URL in its profile receives the order's events, RFC 9421 signed with the key the business profile
publishes — verified by the npm ``http-message-signatures`` library (an independent implementation) and
refused once tampered with. Every answer and webhook body is checked against the spec's pinned schemas and
the ucp-sdk models."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from ucp_sdk.models.schemas.shopping.order import Order
from ucp_sdk.models.schemas.shopping.types.error_response import ErrorResponse

from mcp_checkout.config import Settings
from mcp_checkout.domain import Principal
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.service.fulfillment import FulfillOrder
from mcp_checkout.service.refunds import RefundOrder
from mcp_checkout.ucp import order as ucp_order
from mcp_checkout.ucp import rest as ucp_rest
from mcp_checkout.ucp.negotiation import ProfileResolver
from tests.fakes.webhook_receiver import Received, Receiver, verify_ucp_node
from tests.pricing_rows import add_shipping_rate
from tests.ucp_client import (
    PLATFORM_PROFILE,
    Platform,
    conforms,
    platform_capabilities,
    platform_profile,
    profile_transport,
)
from tests.ucp_schemas import BUSINESS_PROFILE, ERROR_RESPONSE, validate

BASE = "http://shop.test"
ORDER_SCHEMA = "https://ucp.dev/schemas/shopping/order.json"
MERCHANT = Principal(id="local", kind="merchant", client="test")
DESTINATION = {
    "id": "home", "first_name": "Ada", "last_name": "Lovelace", "street_address": "1 Main St",
    "address_locality": "San Francisco", "address_region": "CA", "postal_code": "94105", "address_country": "US",
}  # fmt: skip


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"webhook_backoff_base_seconds": 0.05, "webhook_backoff_cap_seconds": 0.2, "public_base_url": BASE}
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def order_platform_profile(webhook_url: str) -> dict[str, Any]:
    return platform_profile(capabilities=platform_capabilities(order={"webhook_url": webhook_url}))


@pytest.fixture
async def shop(
    settings: Settings, seeded: Services, receiver: Receiver
) -> AsyncIterator[tuple[Platform, httpx.AsyncClient, Services]]:
    services = build_services(settings, db=seeded.db)
    ucp_order.register(services)
    resolver = ProfileResolver(transport=profile_transport({PLATFORM_PROFILE: order_platform_profile(receiver.url)}))
    app = Starlette(routes=ucp_rest.routes(lambda: services, resolver=resolver))
    key = (await services.access.create_key("platform", "buyer")).key
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield Platform(client, key), client, services


def order_conforms(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    if body["ucp"].get("status") == "error":
        validate(body, ERROR_RESPONSE)
        ErrorResponse.model_validate(body)
    else:
        validate(body, ORDER_SCHEMA)
        Order.model_validate(body)
    return body


async def deliver(services: Services, receiver: Receiver, count: int) -> list[Received]:
    with anyio.fail_after(15):
        while len(receiver.delivered()) < count:
            await services.webhooks.dispatch_once()
            await anyio.sleep(0.02)
    return receiver.delivered()


def case(received: Received, url: str, keys: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    return {"method": "POST", "url": url, "headers": received.headers, "body": received.body,
            "signing_keys": keys, **changes}  # fmt: skip


async def test_a_ucp_order_is_the_native_order_and_its_signed_events_verify_independently(
    shop: Any, receiver: Receiver
) -> None:
    platform, client, services = shop
    await services.db.write(lambda conn: add_shipping_rate(conn, "ground", 599, ["US"], carrier="USPS",
                                                           min_days=3, max_days=5))  # fmt: skip
    profile = (await client.get("/.well-known/ucp")).json()
    validate(profile, BUSINESS_PROFILE)
    assert profile["ucp"]["capabilities"]["dev.ucp.shopping.order"] == [
        {"version": "2026-04-08", "spec": "https://ucp.dev/2026-04-08/specification/order",
         "schema": "https://ucp.dev/2026-04-08/schemas/shopping/order.json"}
    ]  # fmt: skip
    [key] = profile["signing_keys"]
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
    assert "d" not in key  # never the private half

    # complete over UCP (buyer, destination, option), paid with the offline test token
    fulfillment = {"methods": [{"type": "shipping", "destinations": [DESTINATION], "selected_destination_id": "home",
                                "groups": [{"id": "shipping_group", "selected_option_id": "ground"}]}]}  # fmt: skip
    checkout = conforms(
        await platform.create([("MUG-01", 2)], buyer={"email": "ada@example.com"}, fulfillment=fulfillment)
    )
    assert checkout["status"] == "ready_for_complete", checkout.get("messages")
    completed = conforms(await platform.complete(checkout["id"], str(uuid.uuid4()), token="success_token"))
    assert completed["status"] == "completed"
    order_id = completed["order"]["id"]

    placed = order_conforms(await client.get(f"/ucp/v1/orders/{order_id}", headers=platform.headers))
    assert (placed["id"], placed["checkout_id"], placed["currency"]) == (order_id, checkout["id"], "USD")
    [line] = placed["line_items"]
    assert (line["id"], line["quantity"], line["status"]) == (
        "MUG-01", {"original": 2, "total": 2, "fulfilled": 0}, "processing"
    )  # fmt: skip
    [expectation] = placed["fulfillment"]["expectations"]
    assert expectation["method_type"] == "shipping" and expectation["destination"]["postal_code"] == "94105"
    assert placed["fulfillment"]["events"] == [] and placed["adjustments"] == []

    # the merchant ships one mug natively; the platform sees it over UCP
    await services.fulfillment.fulfill(
        MERCHANT,
        FulfillOrder(order_id, "ship-1", [("MUG-01", 1)], "UPS", "1Z999", "https://ups.example/track/1Z999"),
    )
    shipped = order_conforms(await client.get(f"/ucp/v1/orders/{order_id}", headers=platform.headers))
    [line] = shipped["line_items"]
    assert (line["quantity"], line["status"]) == ({"original": 2, "total": 2, "fulfilled": 1}, "partial")
    [event] = shipped["fulfillment"]["events"]
    assert event["type"] == "shipped" and event["line_items"] == [{"id": "MUG-01", "quantity": 1}]
    assert (event["carrier"], event["tracking_number"], event["tracking_url"]) == (
        "UPS", "1Z999", "https://ups.example/track/1Z999"
    )  # fmt: skip

    # a refund is an adjustment
    await services.refunds.refund(MERCHANT, RefundOrder(order_id, "refund-1", 500, "scratched"))
    refunded = order_conforms(await client.get(f"/ucp/v1/orders/{order_id}", headers=platform.headers))
    [adjustment] = refunded["adjustments"]
    assert (adjustment["type"], adjustment["status"], adjustment["totals"], adjustment["description"]) == (
        "refund", "completed", [{"type": "total", "amount": -500}], "scratched"
    )  # fmt: skip

    # the platform received the order when placed, paid, shipped and refunded: each a full, signed UCP order
    received = sorted(await deliver(services, receiver, 3), key=lambda r: json.loads(r.body)["created_time"])
    bodies = [json.loads(r.body) for r in received]
    for body in bodies:
        validate(body, ORDER_SCHEMA)
        Order.model_validate(body)
        assert body["id"] == order_id
    assert [b["line_items"][0]["quantity"]["fulfilled"] for b in bodies] == [0, 1, 1]
    assert [len(b["fulfillment"]["events"]) for b in bodies] == [0, 1, 1]
    assert [len(b["adjustments"]) for b in bodies] == [0, 0, 1]
    assert len({b["event_id"] for b in bodies}) == 3
    for delivery in received:
        headers = {k.lower(): v for k, v in delivery.headers.items()}
        assert headers["ucp-agent"] == f'profile="{BASE}/.well-known/ucp"'
        assert uuid.UUID(headers["webhook-id"]) and headers["webhook-timestamp"].isdigit()
        assert 'keyid="' + key["kid"] + '"' in headers["signature-input"]
        assert headers["content-digest"].startswith("sha-256=:")

    # an independent RFC 9421 implementation verifies them; tampering is refused
    url = receiver.url
    first = received[-1]
    tampered_body = first.body.replace('"USD"', '"EUR"')
    signature = {k.lower(): v for k, v in first.headers.items()}["signature"]
    forged = signature[:12] + ("A" if signature[12] != "A" else "B") + signature[13:]
    results = verify_ucp_node(
        [case(r, url, profile["signing_keys"]) for r in received]
        + [
            case(first, url, profile["signing_keys"], body=tampered_body),
            case(first, url, profile["signing_keys"], headers={**first.headers, "Signature": forged}),
            case(first, url.replace("/hooks", "/other"), profile["signing_keys"]),
        ]
    )
    assert results[: len(received)] == [{"ok": True, "keyid": key["kid"]}] * len(received)
    assert [r["ok"] for r in results[len(received) :]] == [False, False, False]
    assert results[len(received)]["error"] == "digest_mismatch"


async def test_orders_of_others_or_unknown_are_the_not_found_envelope(shop: Any) -> None:
    platform, client, services = shop
    missing = order_conforms(await client.get("/ucp/v1/orders/ord_nope", headers=platform.headers))
    assert missing["messages"][0]["code"] == "not_found"
    other = Principal(id="key:someoneelse", kind="buyer", client="t")
    cart = await services.carts.create(other, "USD")
    await services.carts.set_quantity(other, cart.cart_id, "MUG-01", 1)
    from mcp_checkout.service.orders import CreateOrder

    placed = await services.orders.create(other, CreateOrder(idempotency_key="o", cart_id=cart.cart_id))
    hidden = order_conforms(await client.get(f"/ucp/v1/orders/{placed.order_id}", headers=platform.headers))
    assert hidden["ucp"]["status"] == "error" and hidden["messages"][0]["code"] == "not_found"
    unauthenticated = await client.get(f"/ucp/v1/orders/{placed.order_id}", headers={"UCP-Agent": "x"})
    assert unauthenticated.status_code == 401


async def test_signing_keys_rotate_and_the_old_one_stays_published_until_retired(shop: Any) -> None:
    _, client, services = shop
    [first] = (await client.get("/.well-known/ucp")).json()["signing_keys"]
    second = await services.signing_keys.rotate(MERCHANT)
    published = [k["kid"] for k in (await client.get("/.well-known/ucp")).json()["signing_keys"]]
    assert published == [second, first["kid"]]  # the newest signs; the old one still verifies
    await services.signing_keys.retire(MERCHANT, first["kid"])
    assert [k["kid"] for k in (await client.get("/.well-known/ucp")).json()["signing_keys"]] == [second]
    from mcp_checkout.errors import InvalidState

    with pytest.raises(InvalidState):
        await services.signing_keys.retire(MERCHANT, second)
    stored = await services.db.read(
        lambda conn: conn.exec_driver_sql("select private_key from signing_keys").scalars().all()
    )
    assert stored and all(value.startswith("fernet:") for value in stored)  # sealed at rest


async def test_concurrent_first_uses_generate_one_key(settings: Settings, seeded: Services) -> None:
    """Several processes start at once (each its own services): the first writer of generation 1 wins and
    every one publishes its key."""
    many = [build_services(settings, db=seeded.db) for _ in range(4)]
    published: list[list[dict[str, Any]]] = []

    async def first_use(services: Services) -> None:
        published.append(await services.signing_keys.published())

    async with anyio.create_task_group() as tasks:
        for services in many:
            tasks.start_soon(first_use, services)
    assert [[key["kid"] for key in keys] for keys in published] == [[published[0][0]["kid"]]] * len(many)
    assert len(await seeded.signing_keys.listing()) == 1


async def test_platform_deliveries_wait_for_a_process_that_can_sign_them_and_are_retried(
    shop: Any, receiver: Receiver, settings: Settings
) -> None:
    platform, _, services = shop
    checkout = conforms(await platform.create([("MUG-01", 1)]))
    conforms(await platform.complete(checkout["id"], str(uuid.uuid4()), token="success_token"))
    plain = build_services(settings, db=services.db)  # e.g. a stdio process: no UCP format registered
    for _ in range(3):
        await plain.webhooks.dispatch_once()
    assert receiver.all() == []  # left for a process that can sign them
    receiver.script = [503]
    [received] = await deliver(services, receiver, 1)
    [refused, accepted] = receiver.all()
    assert refused.status == 503 and accepted is received
    ids = [{k.lower(): v for k, v in r.headers.items()}["webhook-id"] for r in (refused, accepted)]
    assert ids[0] == ids[1]  # one message, retried


async def test_a_webhook_url_the_rules_refuse_leaves_the_checkout_complete_and_registers_nothing(
    settings: Settings, seeded: Services
) -> None:
    services = build_services(settings, db=seeded.db)
    profiles = {PLATFORM_PROFILE: order_platform_profile("ftp://platform.test/hooks")}
    app = Starlette(
        routes=ucp_rest.routes(lambda: services, resolver=ProfileResolver(transport=profile_transport(profiles)))
    )
    key = (await services.access.create_key("platform", "buyer")).key
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        platform = Platform(client, key)
        checkout = conforms(await platform.create([("MUG-01", 1)]))
        done = conforms(await platform.complete(checkout["id"], str(uuid.uuid4()), token="success_token"))
    assert done["status"] == "completed"
    assert (await services.webhooks.list_endpoints(MERCHANT)).endpoints == []


async def test_a_delivery_its_format_cannot_make_is_retried_then_abandoned_and_nothing_is_sent(
    shop: Any, receiver: Receiver
) -> None:
    platform, _, services = shop

    class Broken:
        async def prepare(self, delivery: Any) -> tuple[bytes, dict[str, str]]:
            raise ValueError("a body of an older shape")

    services.webhooks.register_format("ucp", Broken())
    checkout = conforms(await platform.create([("MUG-01", 1)]))
    conforms(await platform.complete(checkout["id"], str(uuid.uuid4()), token="success_token"))
    with anyio.fail_after(15):
        while True:
            await services.webhooks.dispatch_once()
            [delivery] = (await services.webhooks.list_deliveries(MERCHANT)).deliveries
            if delivery.status != "pending":
                break
            await anyio.sleep(0.05)
    assert delivery.status == "abandoned" and delivery.last_error == "not sent: the ucp format failed (ValueError)"
    assert receiver.all() == []
