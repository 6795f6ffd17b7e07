"""Signed outbound webhooks with a transactional outbox, against a real local HTTP receiver, on SQLite
and PostgreSQL: signatures the standardwebhooks libraries accept, retries, failures, abandonment,
rollback, deactivation, listing, metrics and replay."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import anyio
import pytest
from conftest import FakeClock, seed_catalog
from fakes.webhook_receiver import Receiver, verify_node, verify_python
from mcp import Client
from pydantic import SecretStr
from sqlalchemy import func, select
from standardwebhooks import WebhookVerificationError

from mcp_checkout.config import Settings
from mcp_checkout.domain import Actor, OrderStatus, Principal, utc_now
from mcp_checkout.errors import (
    InsufficientStock,
    InvalidInput,
    InvalidState,
    WebhookDeliveryNotFound,
    WebhookEndpointNotFound,
)
from mcp_checkout.service import orders as order_service
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.service.refunds import RefundOrder
from mcp_checkout.store import orders as order_store
from mcp_checkout.store.models import webhook_deliveries, webhook_events

MERCHANT = Principal(id="local", kind="merchant", client="test")
ALL_EVENTS = ["order.created", "order.paid", "order.canceled", "order.expired", "order.refunded"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings with quick retries (``seeded`` and ``server`` pick them up)."""
    return settings.model_copy(
        update={
            "webhook_backoff_base_seconds": 0.05,
            "webhook_backoff_cap_seconds": 0.2,
            "webhook_poll_interval_seconds": 0.1,
            "webhook_timeout_seconds": 2.0,
            "webhook_max_attempts": 4,
        }
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


async def settle(services: Services, done: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Run the dispatcher until ``done()``."""
    with anyio.fail_after(timeout):
        while not await done():
            await services.webhooks.dispatch_once()
            await anyio.sleep(0.02)


async def place(services: Services, key: str, sku: str = "MUG-01", quantity: int = 1) -> str:
    cmd = CreateOrder(idempotency_key=key, items=[(sku, quantity)])
    return (await services.orders.create(MERCHANT, cmd)).order_id


async def pay(services: Services, order_id: str) -> None:
    intent, _ = await services.payments.ensure_intent(order_id)
    gateway: Any = services.payments.gateway
    paid = await gateway.simulate_payment(intent.id)
    await services.payments.apply_intent(paid, actor=Actor.BUYER, source="test")


async def deliveries(services: Services, **filters: Any) -> list[dict[str, Any]]:
    page = await services.webhooks.list_deliveries(MERCHANT, limit=100, **filters)
    return [d.model_dump() for d in page.deliveries]


async def count(services: Services, table: Any) -> int:
    return int(await services.db.read(lambda conn: conn.execute(select(func.count()).select_from(table)).scalar_one()))


# ---------------------------------------------------------------- signed, verifiable, full order
async def test_events_arrive_signed_with_the_full_order_and_both_libraries_verify_them(
    seeded: Services, receiver: Receiver
) -> None:
    created = await seeded.webhooks.create_endpoint(MERCHANT, receiver.url, ALL_EVENTS, "ERP")
    secret = created.signing_secret
    assert secret.startswith("whsec_")
    paid_id = await place(seeded, "a")
    await pay(seeded, paid_id)
    await seeded.refunds.refund(MERCHANT, RefundOrder(paid_id, "refund-1", None, "returned"))
    canceled_id = await place(seeded, "b")
    await seeded.orders.cancel(MERCHANT, canceled_id, "changed mind")
    await settle(seeded, lambda: anyio.to_thread.run_sync(lambda: len(receiver.delivered()) >= 5))

    # Sent concurrently, so not necessarily in order (receivers order by the payload's timestamp).
    got = sorted(receiver.delivered(), key=lambda r: (r.payload["timestamp"], ALL_EVENTS.index(r.payload["type"])))
    assert sorted((r.payload["type"], r.payload["data"]["order_id"]) for r in got) == sorted(
        [
            ("order.created", paid_id),
            ("order.paid", paid_id),
            ("order.refunded", paid_id),
            ("order.created", canceled_id),
            ("order.canceled", canceled_id),
        ]
    )
    by_type = {(r.payload["type"], r.payload["data"]["order_id"]): r for r in got}
    for r in got:
        verified = verify_python(secret, r)
        assert verified == r.payload
        assert r.headers["webhook-id"].startswith("msg_") and r.headers["content-type"] == "application/json"
    paid = by_type["order.paid", paid_id].payload["data"]
    assert paid["status"] == "paid" and paid["total"]["amount"] == 1800
    assert paid["lines"][0]["sku"] == "MUG-01" and paid["payment"]["status"] == "succeeded"
    assert [h["to_status"] for h in paid["status_history"]] == ["pending_payment", "paid"]
    assert by_type["order.refunded", paid_id].payload["data"]["status"] == "refunded"
    assert len({r.message_id for r in got}) == 5
    with pytest.raises(WebhookVerificationError):
        verify_python("whsec_" + "A" * 43 + "=", got[0])  # another endpoint's secret
    tampered = type(got[0])({**got[0].headers}, got[0].body.replace("1800", "1"), 200)
    with pytest.raises(WebhookVerificationError):
        verify_python(secret, tampered)
    results = verify_node(secret, got)
    assert [r["ok"] for r in results] == [True] * 5, results
    assert [r["type"] for r in results] == [r.payload["type"] for r in got]
    assert [r["order_id"] for r in results] == [r.payload["data"]["order_id"] for r in got]
    assert verify_node(secret, [tampered])[0]["ok"] is False


async def test_a_delivery_signed_ten_minutes_ago_is_refused_as_a_replay(settings: Settings, receiver: Receiver) -> None:
    """A real delivery made by a dispatcher whose clock says ten minutes ago: exactly what a captured
    request replayed ten minutes later looks like. Both libraries refuse its timestamp."""
    past = FakeClock(utc_now() - timedelta(minutes=10))
    services = build_services(settings, clock=past)
    try:
        await seed_catalog(services)
        secret = (await services.webhooks.create_endpoint(MERCHANT, receiver.url, ["order.created"])).signing_secret
        await place(services, "old")
        await settle(services, lambda: anyio.to_thread.run_sync(lambda: len(receiver.delivered()) == 1))
    finally:
        await services.close()
    old = receiver.delivered()[0]
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_python(secret, old)
    [result] = verify_node(secret, [old])
    assert result["ok"] is False and "too old" in result["error"]


# ---------------------------------------------------------------- retries and outcomes
async def test_500_twice_then_200_is_delivered_on_attempt_3(seeded: Services, receiver: Receiver) -> None:
    await seeded.webhooks.create_endpoint(MERCHANT, receiver.url, ["order.created"])
    receiver.script = [500, 503]
    order_id = await place(seeded, "retry")

    async def delivered() -> bool:
        return (await deliveries(seeded))[0]["status"] == "delivered"

    await settle(seeded, delivered)
    [row] = await deliveries(seeded)
    assert row["attempts"] == 3 and row["last_status_code"] == 200 and row["order_id"] == order_id
    assert [r.status for r in receiver.all()] == [500, 503, 200]
    assert len({r.message_id for r in receiver.all()}) == 1  # one stable id across retries
    assert row["delivery_id"] == receiver.all()[0].message_id


async def test_receiver_down_stays_pending_then_delivers_when_it_comes_back(seeded: Services) -> None:
    receiver = Receiver()
    receiver.up()
    receiver.down()  # the port is closed now: connection refused
    await seeded.webhooks.create_endpoint(MERCHANT, receiver.url, ["order.created"])
    await place(seeded, "down")

    async def tried_twice() -> bool:
        return (await deliveries(seeded))[0]["attempts"] >= 2

    await settle(seeded, tried_twice)
    [row] = await deliveries(seeded)
    assert row["status"] == "pending" and row["last_status_code"] is None
    assert "Connect" in row["last_error"] and row["next_attempt_at"] is not None
    receiver.up()
    try:

        async def delivered() -> bool:
            return (await deliveries(seeded))[0]["status"] == "delivered"

        await settle(seeded, delivered)
        assert len(receiver.delivered()) == 1
    finally:
        receiver.down()


@pytest.mark.parametrize("code", [410, 400])
async def test_a_4xx_answer_fails_without_retry(seeded: Services, receiver: Receiver, code: int) -> None:
    await seeded.webhooks.create_endpoint(MERCHANT, receiver.url, ["order.created"])
    receiver.script = [code]
    await place(seeded, "gone")

    async def finished() -> bool:
        return (await deliveries(seeded))[0]["status"] != "pending"

    await settle(seeded, finished)
    for _ in range(5):  # give a wrongly scheduled retry every chance to happen
        await seeded.webhooks.dispatch_once()
        await anyio.sleep(0.06)
    [row] = await deliveries(seeded)
    assert row["status"] == "failed" and row["attempts"] == 1 and row["last_status_code"] == code
    assert len(receiver.all()) == 1


async def test_retries_exhausted_is_abandoned(seeded: Services, receiver: Receiver) -> None:
    await seeded.webhooks.create_endpoint(MERCHANT, receiver.url, ["order.created"])
    receiver.script = [500] * 10

    await place(seeded, "down-for-good")

    async def finished() -> bool:
        return (await deliveries(seeded))[0]["status"] != "pending"

    await settle(seeded, finished)
    [row] = await deliveries(seeded)
    assert row["status"] == "abandoned" and row["attempts"] == 4 and row["last_status_code"] == 500
    assert len(receiver.all()) == 4
    metrics = (await seeded.webhooks.list_deliveries(MERCHANT)).metrics
    assert metrics.abandoned == 1 and metrics.pending == 0 and metrics.success_rate == 0.0


async def test_429_retry_after_is_honoured_within_the_cap(seeded: Services, receiver: Receiver) -> None:
    await seeded.webhooks.create_endpoint(MERCHANT, receiver.url, ["order.created"])
    receiver.script = [429]
    receiver.retry_after = "120"  # beyond the 0.2 s cap: the cap wins
    await place(seeded, "slow-down")

    async def delivered() -> bool:
        return (await deliveries(seeded))[0]["status"] == "delivered"

    await settle(seeded, delivered, timeout=5)
    first, second = receiver.all()
    assert first.status == 429 and second.status == 200
    assert 0.15 <= second.at - first.at < 3


# ---------------------------------------------------------------- the outbox is transactional
async def test_a_rolled_back_change_sends_no_event(seeded: Services, receiver: Receiver) -> None:
    await seeded.webhooks.create_endpoint(MERCHANT, receiver.url, ["order.canceled"])
    order_id = await place(seeded, "rollback")
    now = utc_now()

    class Boom(Exception):
        pass

    def cancel_then_fail(conn: Any) -> None:
        order = order_store.get(conn, order_id, for_update=True)
        assert order is not None
        order_service.transition(
            conn, order, OrderStatus.CANCELED, actor=Actor.MERCHANT, principal_id="local", reason="x", now=now
        )
        assert conn.execute(select(func.count()).select_from(webhook_events)).scalar_one() == 1  # written...
        raise Boom

    with pytest.raises(Boom):
        await seeded.db.write(cancel_then_fail)
    assert await count(seeded, webhook_events) == 0  # ...and rolled back with the change
    assert (await seeded.orders.get(MERCHANT, order_id)).status == "pending_payment"
    await seeded.webhooks.dispatch_once()
    assert receiver.all() == []


async def test_a_failed_create_order_sends_nothing(seeded: Services, receiver: Receiver) -> None:
    await seeded.webhooks.create_endpoint(MERCHANT, receiver.url, ["order.created"])
    with pytest.raises(InsufficientStock):
        await place(seeded, "too-many", sku="MUG-02", quantity=5)
    assert await count(seeded, webhook_events) == 0


async def test_without_subscribed_endpoints_nothing_is_written(seeded: Services, receiver: Receiver) -> None:
    await place(seeded, "none-yet")
    await seeded.webhooks.create_endpoint(MERCHANT, receiver.url, ["order.paid"])  # not order.created
    await place(seeded, "not-subscribed")
    assert await count(seeded, webhook_events) == 0 and await count(seeded, webhook_deliveries) == 0


async def test_each_subscribed_endpoint_gets_its_own_delivery_of_one_event(seeded: Services) -> None:
    with Receiver() as one, Receiver() as two:
        await seeded.webhooks.create_endpoint(MERCHANT, one.url, ["order.created"])
        await seeded.webhooks.create_endpoint(MERCHANT, two.url, ["order.created", "order.paid"])
        await place(seeded, "fan-out")
        await settle(seeded, lambda: anyio.to_thread.run_sync(lambda: len(one.delivered()) + len(two.delivered()) == 2))
        assert await count(seeded, webhook_events) == 1
        assert one.delivered()[0].body == two.delivered()[0].body
        assert one.delivered()[0].message_id != two.delivered()[0].message_id


# ---------------------------------------------------------------- endpoints, listing, metrics, replay
async def test_deactivation_stops_sending_and_keeps_the_history(seeded: Services, receiver: Receiver) -> None:
    endpoint = (await seeded.webhooks.create_endpoint(MERCHANT, receiver.url, ["order.created"])).endpoint
    await place(seeded, "first")
    await settle(seeded, lambda: anyio.to_thread.run_sync(lambda: len(receiver.delivered()) == 1))
    receiver.down()
    await place(seeded, "second")  # queued while the receiver is down
    done = await seeded.webhooks.deactivate_endpoint(MERCHANT, endpoint.endpoint_id)
    assert done.status == "inactive" and done.deactivated_at is not None
    assert (
        await seeded.webhooks.deactivate_endpoint(MERCHANT, endpoint.endpoint_id)
    ).status == "inactive"  # idempotent
    await place(seeded, "third")  # after deactivation: not queued at all
    history = await deliveries(seeded, endpoint_id=endpoint.endpoint_id)
    assert [d["status"] for d in history] == ["abandoned", "delivered"]
    assert history[0]["last_error"] == "endpoint deactivated"
    with pytest.raises(InvalidState):
        await seeded.webhooks.replay(MERCHANT, history[1]["delivery_id"])
    with pytest.raises(WebhookEndpointNotFound):
        await seeded.webhooks.deactivate_endpoint(MERCHANT, "we_nope")


async def test_listing_filters_pages_and_replays(seeded: Services, receiver: Receiver) -> None:
    endpoint = (
        await seeded.webhooks.create_endpoint(MERCHANT, receiver.url, ["order.created", "order.canceled"])
    ).endpoint
    receiver.script = [410]
    ids = [await place(seeded, f"o{i}") for i in range(3)]
    await seeded.orders.cancel(MERCHANT, ids[0], None)

    async def finished() -> bool:
        return all(d["status"] != "pending" for d in await deliveries(seeded))

    await settle(seeded, finished)
    everything = await deliveries(seeded)
    assert len(everything) == 4
    failed = await deliveries(seeded, status="failed")
    assert len(failed) == 1 and failed[0]["last_status_code"] == 410
    assert {d["event_type"] for d in await deliveries(seeded, order_id=ids[0])} == {"order.created", "order.canceled"}

    first = await seeded.webhooks.list_deliveries(MERCHANT, limit=3)
    assert first.next_cursor is not None
    rest = await seeded.webhooks.list_deliveries(MERCHANT, limit=3, cursor=first.next_cursor)
    assert rest.next_cursor is None
    paged = [d.delivery_id for d in first.deliveries + rest.deliveries]
    assert paged == [d["delivery_id"] for d in everything] and len(set(paged)) == 4
    with pytest.raises(Exception, match="cursor"):
        await seeded.webhooks.list_deliveries(MERCHANT, status="delivered", cursor=first.next_cursor)

    metrics = first.metrics
    assert metrics.created == 4 and metrics.delivered == 3 and metrics.failed == 1 and metrics.pending == 0
    assert metrics.success_rate == 0.75 and metrics.p95_delivery_seconds is not None

    replayed = await seeded.webhooks.replay(MERCHANT, failed[0]["delivery_id"])
    assert replayed.delivery.status == "pending" and replayed.delivery.attempts == 0

    async def redelivered() -> bool:
        return (await deliveries(seeded, status="delivered")).__len__() == 4

    await settle(seeded, redelivered)
    again = [r for r in receiver.all() if r.message_id == failed[0]["delivery_id"]]
    assert [r.status for r in again] == [410, 200]
    assert again[0].body == again[1].body
    with pytest.raises(WebhookDeliveryNotFound):
        await seeded.webhooks.replay(MERCHANT, "msg_nope")
    assert endpoint.endpoint_id in {e.endpoint_id for e in (await seeded.webhooks.list_endpoints(MERCHANT)).endpoints}


async def test_expiry_sends_order_expired(settings: Settings, receiver: Receiver, fake_clock: FakeClock) -> None:
    services = build_services(settings, clock=fake_clock)
    try:
        await seed_catalog(services)
        await services.webhooks.create_endpoint(MERCHANT, receiver.url, ["order.expired"])
        order_id = await place(services, "late")
        fake_clock.advance(minutes=settings.order_ttl_minutes + 1)
        assert await services.orders.expire_due() == 1
        await settle(services, lambda: anyio.to_thread.run_sync(lambda: len(receiver.delivered()) == 1))
    finally:
        await services.close()
    [got] = receiver.delivered()
    assert got.payload["type"] == "order.expired" and got.payload["data"]["order_id"] == order_id
    assert got.payload["data"]["status"] == "expired"


async def test_urls_are_validated_and_live_mode_requires_public_https(seeded: Services, settings: Settings) -> None:
    for bad in ["ftp://erp.example/hooks", "erp.example/hooks", "https://user:pw@erp.example/x", "https:///x"]:
        with pytest.raises(InvalidInput):
            await seeded.webhooks.create_endpoint(MERCHANT, bad, ["order.paid"])
    with pytest.raises(InvalidInput, match=r"order\.shipped"):
        await seeded.webhooks.create_endpoint(MERCHANT, "https://erp.example/hooks", ["order.shipped"])
    live = settings.model_copy(update={"stripe_secret_key": SecretStr("sk_live_x")})
    live_services = build_services(live)
    try:
        with pytest.raises(InvalidInput, match="https"):
            await live_services.webhooks.create_endpoint(MERCHANT, "http://erp.example/hooks", ["order.paid"])
        for internal in ["https://localhost/h", "https://127.0.0.1:8443/h", "https://10.1.2.3/h",
                         "https://169.254.169.254/latest", "https://[::1]/h", "https://192.168.0.9/h"]:  # fmt: skip
            with pytest.raises(InvalidInput, match="public host"):
                await live_services.webhooks.create_endpoint(MERCHANT, internal, ["order.paid"])
        # test mode keeps local receivers usable (every test here posts to 127.0.0.1)
        assert (await seeded.webhooks.create_endpoint(MERCHANT, "http://127.0.0.1:9/h", ["order.paid"])).endpoint.url
        made = await live_services.webhooks.create_endpoint(MERCHANT, "https://erp.example/hooks", ["order.paid"])
        assert made.endpoint.url == "https://erp.example/hooks"
    finally:
        await live_services.close()


async def test_the_secret_is_shown_once_and_never_listed_or_logged(
    seeded: Services, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    made = await seeded.webhooks.create_endpoint(MERCHANT, receiver.url, ["order.created"])
    receiver.script = [500]
    await place(seeded, "quiet")
    await settle(seeded, lambda: anyio.to_thread.run_sync(lambda: len(receiver.delivered()) == 1))
    secret = made.signing_secret
    listed = (await seeded.webhooks.list_endpoints(MERCHANT)).model_dump_json()
    page = (await seeded.webhooks.list_deliveries(MERCHANT)).model_dump_json()
    assert secret not in listed and secret not in page and "whsec_" not in listed
    assert secret not in caplog.text and secret.removeprefix("whsec_") not in caplog.text


# ---------------------------------------------------------------- the MCP tools, with the server's own dispatcher
async def test_tools_register_list_deliver_and_replay(server: Any, seeded: Services, receiver: Receiver) -> None:
    async with Client(server) as client:

        async def call(name: str, **args: Any) -> dict[str, Any]:
            result = await client.call_tool(name, args)
            assert not result.is_error, result.content[0].text
            return dict(result.structured_content or {})

        made = await call("create_webhook_endpoint", url=receiver.url, events=["order.created", "order.canceled"])
        endpoint_id = made["endpoint"]["endpoint_id"]
        assert made["signing_secret"].startswith("whsec_")
        listed = await call("list_webhook_endpoints")
        assert [e["endpoint_id"] for e in listed["endpoints"]] == [endpoint_id]
        assert "signing_secret" not in str(listed) and made["signing_secret"] not in str(listed)
        order = await call("create_order", idempotency_key="k1", items=[{"sku": "MUG-01", "quantity": 1}])
        await call("cancel_order", order_id=order["order_id"])
        # The server's own dispatcher delivers (no dispatch_once from the test).
        with anyio.fail_after(30):
            while len(receiver.delivered()) < 2:
                await anyio.sleep(0.02)
            # the dispatcher records a delivery once its answer is in: the receiver can be a moment ahead
            # (delivered 1 of 2 here at load 13 before)
            while (page := await call("list_webhook_deliveries", endpoint_id=endpoint_id, window_minutes=60))[
                "metrics"
            ]["delivered"] < 2:
                await anyio.sleep(0.05)
        assert [d["event_type"] for d in page["deliveries"]] == ["order.canceled", "order.created"]
        assert page["metrics"]["delivered"] == 2 and page["metrics"]["success_rate"] == 1.0
        replayed = await call("replay_webhook_delivery", delivery_id=page["deliveries"][0]["delivery_id"])
        assert replayed["delivery"]["status"] == "pending"
        with anyio.fail_after(10):
            while len(receiver.delivered()) < 3:
                await anyio.sleep(0.02)
        bad = await client.call_tool("replay_webhook_delivery", {"delivery_id": "msg_missing"})
        assert bad.is_error and "[webhook_delivery_not_found]" in bad.content[0].text
        bad = await client.call_tool("create_webhook_endpoint", {"url": "ftp://x.example/h", "events": ["order.paid"]})
        assert bad.is_error
        done = await call("deactivate_webhook_endpoint", endpoint_id=endpoint_id)
        assert done["status"] == "inactive"


async def test_old_finished_history_is_purged_and_pending_deliveries_are_kept(
    settings: Settings, receiver: Receiver, fake_clock: FakeClock
) -> None:
    services = build_services(settings, clock=fake_clock)
    try:
        await seed_catalog(services)
        await services.webhooks.create_endpoint(MERCHANT, receiver.url, ["order.created"])
        await place(services, "old-and-done")
        await settle(services, lambda: anyio.to_thread.run_sync(lambda: len(receiver.delivered()) == 1))
        receiver.down()
        await place(services, "old-and-waiting")
        await services.webhooks.dispatch_once()  # fails: stays pending
        fake_clock.advance(days=settings.webhook_retention_days + 1)
        assert await services.webhooks.purge() == 1
        assert [d["status"] for d in await deliveries(services)] == ["pending"]
        assert await count(services, webhook_events) == 1
    finally:
        await services.close()


async def test_a_commit_wakes_the_dispatcher_without_waiting_for_its_poll(
    settings: Settings, seeded: Services, receiver: Receiver
) -> None:
    from mcp_checkout.server import build_server

    slow_poll = settings.model_copy(update={"webhook_poll_interval_seconds": 60.0})
    async with Client(build_server(slow_poll)) as client:
        await seeded.webhooks.create_endpoint(MERCHANT, receiver.url, ["order.created"])
        await anyio.sleep(0.3)  # the dispatcher's first look found nothing; now it sleeps for 60 s
        result = await client.call_tool(
            "create_order", {"idempotency_key": "wake", "items": [{"sku": "MUG-01", "quantity": 1}]}
        )
        assert not result.is_error, result.content[0].text
        with anyio.fail_after(3):
            while not receiver.delivered():
                await anyio.sleep(0.02)


# ---------------------------------------------------------------- signing secrets at rest
async def test_signing_secrets_are_stored_encrypted_and_still_sign(
    seeded: Services, settings: Settings, receiver: Receiver
) -> None:
    from mcp_checkout.store.models import webhook_endpoints

    key_file = settings.resolved_secret_key_file()
    assert not key_file.exists()  # building services creates nothing
    created = await seeded.webhooks.create_endpoint(MERCHANT, receiver.url, ["order.created"])
    stored = await seeded.db.read(lambda conn: conn.execute(select(webhook_endpoints.c.secret)).scalar_one())
    secret = created.signing_secret
    assert stored.startswith("fernet:") and secret not in stored and secret.removeprefix("whsec_") not in stored
    assert key_file.stat().st_mode & 0o777 == 0o600
    await place(seeded, "sealed")
    await settle(seeded, lambda: anyio.to_thread.run_sync(lambda: len(receiver.delivered()) == 1))
    assert verify_python(secret, receiver.delivered()[0])["type"] == "order.created"


async def test_a_process_without_the_right_key_sends_nothing_unsigned(
    seeded: Services, settings: Settings, receiver: Receiver
) -> None:
    from cryptography.fernet import Fernet

    created = await seeded.webhooks.create_endpoint(MERCHANT, receiver.url, ["order.created"])
    other = build_services(settings.model_copy(update={"secret_key": SecretStr(Fernet.generate_key().decode())}))
    try:
        await place(seeded, "wrong-key")
        assert await other.webhooks.dispatch_once() == 1
    finally:
        await other.close()
    assert receiver.delivered() == []
    (waiting,) = await deliveries(seeded)
    assert waiting["status"] == "pending" and "MCP_CHECKOUT_SECRET_KEY" in (waiting["last_error"] or "")
    # The process with the key the endpoint was made with sends it on its next try.
    await seeded.webhooks.replay(MERCHANT, waiting["delivery_id"])
    await settle(seeded, lambda: anyio.to_thread.run_sync(lambda: len(receiver.delivered()) == 1))
    assert verify_python(created.signing_secret, receiver.delivered()[0])["data"]["status"] == "pending_payment"


def test_a_malformed_secret_key_is_refused_with_how_to_make_one(settings: Settings) -> None:
    with pytest.raises(ValueError, match="url-safe base64"):
        Settings(data_dir=settings.data_dir, secret_key="too-short")  # type: ignore[arg-type]


async def test_each_refund_sends_order_refunded_partial_ones_while_the_order_stays_paid(
    seeded: Services, receiver: Receiver
) -> None:
    created = await seeded.webhooks.create_endpoint(MERCHANT, receiver.url, ["order.refunded"])
    order_id = await place(seeded, "refund-twice")
    await pay(seeded, order_id)
    await seeded.refunds.refund(MERCHANT, RefundOrder(order_id, "refund-part", 500, "one mug chipped"))
    await seeded.refunds.refund(
        MERCHANT, RefundOrder(order_id, "refund-part", 500, "one mug chipped")
    )  # a replay: no new event
    await seeded.refunds.refund(MERCHANT, RefundOrder(order_id, "refund-rest", None, "returned the rest"))
    await settle(seeded, lambda: anyio.to_thread.run_sync(lambda: len(receiver.delivered()) >= 2))
    await anyio.sleep(0.3)
    await seeded.webhooks.dispatch_once()
    got = sorted(
        (verify_python(created.signing_secret, r)["data"] for r in receiver.delivered()),
        key=lambda order: order["payment"]["refunded"]["amount"],
    )
    assert [(o["status"], o["payment"]["refunded"]["amount"]) for o in got] == [("paid", 500), ("refunded", 1800)]
