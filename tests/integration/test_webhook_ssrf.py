"""Live mode never sends a webhook to an internal address (issue 10 #5), on SQLite and PostgreSQL.

A real receiver on 127.0.0.1 counts every TCP connection it accepts, so "nothing sent" means not even a
TLS hello arrived. Names are resolved by a hosts table the test injects (the resolver the dispatcher
uses), which is how a DNS name that points at 127.0.0.1 — or starts to, after the endpoint was saved —
is simulated without touching the internet.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from typing import Any

import anyio
import pytest
from conftest import seed_catalog
from fakes.webhook_receiver import Receiver
from mcp import Client
from pydantic import SecretStr

from mcp_checkout.config import Settings
from mcp_checkout.domain import Principal
from mcp_checkout.errors import InvalidInput
from mcp_checkout.server import build_server
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.service.orders import CreateOrder

MERCHANT = Principal(id="local", kind="merchant", client="test")
LIVE = {
    "stripe_secret_key": SecretStr("sk_live_" + "L1veSecret" * 3),
    "stripe_publishable_key": "pk_live_" + "Pub1" * 6,
    "stripe_webhook_secret": SecretStr("whsec_" + "Signing1" * 3),
    "public_base_url": "https://shop.example",
}
# Every spelling of 127.0.0.1 (or of "this host") the system resolver accepts, as the issue found them.
LOOPBACK_SPELLINGS = ["2130706433", "0x7f000001", "127.1", "0x7f.1", "0", "0177.0.0.1", "[::ffff:127.0.0.1]"]
INTERNAL_SPELLINGS = [
    *LOOPBACK_SPELLINGS,
    "localhost.",
    "LocalHost",
    "api.localhost",
    "[::ffff:7f00:1]",
    "[::127.0.0.1]",
    "[::1]",
    "[::]",
    "10.1",
    "0xa9fea9fe",  # 169.254.169.254, the cloud metadata service
    "100.64.0.1",
    "224.0.0.1",
    "240.0.0.1",
    "[fe80::1]",
    "[fc00::1]",
    "[ff02::1]",
    "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
    "[2002:a9fe:a9fe::]",
    "[64:ff9b::7f00:1]",  # NAT64 of 127.0.0.1
    "[64:ff9b::a00:1]",
    "[64:ff9b:1::1]",
]
PUBLIC_SPELLINGS = ["8.8.8.8", "134744072", "[2606:4700::1111]", "[64:ff9b::808:808]", "[2002:808:808::]"]


class Hosts:
    """A hosts-file resolver: names from ``table``, everything else (IP literals) from the system."""

    def __init__(self, **table: list[str]) -> None:
        self.table = {name.replace("_", "."): addresses for name, addresses in table.items()}
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        if host in self.table:
            return self.table[host]
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        return [str(info[4][0]) for info in infos]  # an IP literal; any other name raises gaierror


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def live(settings: Settings) -> Settings:
    return settings.model_copy(update=LIVE)


async def place(services: Services, key: str) -> str:
    cmd = CreateOrder(idempotency_key=key, items=[("MUG-01", 1)], email="buyer@example.com")
    return (await services.orders.create(MERCHANT, cmd)).order_id


async def dispatch_all(services: Services) -> list[dict[str, Any]]:
    """Run the dispatcher until nothing is due; the deliveries as listed."""
    with anyio.fail_after(20):
        while await services.webhooks.dispatch_once():
            pass
    return [d.model_dump() for d in (await services.webhooks.list_deliveries(MERCHANT, limit=100)).deliveries]


async def test_live_mode_refuses_every_internal_spelling_over_mcp(live: Settings, receiver: Receiver) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    async with Client(build_server(live)) as client:
        for host in INTERNAL_SPELLINGS:
            result = await client.call_tool(
                "create_webhook_endpoint", {"url": f"https://{host}:{port}/hooks", "events": ["order.created"]}
            )
            assert result.is_error, host
            text = result.content[0].text
            assert "[invalid_input]" in text and "public host" in text, (host, text)
        result = await client.call_tool(
            "create_webhook_endpoint", {"url": f"http://8.8.8.8:{port}/hooks", "events": ["order.created"]}
        )
        assert result.is_error and "https" in result.content[0].text
        for host in PUBLIC_SPELLINGS:
            made = await client.call_tool(
                "create_webhook_endpoint", {"url": f"https://{host}/hooks", "events": ["order.created"]}
            )
            assert not made.is_error, (host, made.content[0].text)
        listed = await client.call_tool("list_webhook_endpoints", {})
    assert len((listed.structured_content or {})["endpoints"]) == len(PUBLIC_SPELLINGS)
    assert receiver.connections == 0


async def test_endpoints_saved_in_test_mode_get_nothing_once_the_server_runs_live(
    settings: Settings, live: Settings, receiver: Receiver
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    test_mode = build_services(settings)
    try:
        await seed_catalog(test_mode)
        urls = [receiver.url] + [f"https://{host}:{port}/hooks" for host in LOOPBACK_SPELLINGS]
        for url in urls:
            await test_mode.webhooks.create_endpoint(MERCHANT, url, ["order.created", "order.canceled"])
    finally:
        await test_mode.close()

    live_services = build_services(live)  # the operator switched to sk_live_ keys; Stripe itself is not called
    try:
        order_id = await place(live_services, "live-1")
        await live_services.orders.cancel(MERCHANT, order_id, "changed mind")
        rows = await dispatch_all(live_services)
    finally:
        await live_services.close()
    assert receiver.connections == 0 and receiver.all() == []  # not one byte of buyer data left
    assert len(rows) == 2 * len(urls)
    assert {row["status"] for row in rows} == {"failed"}
    for row in rows:
        assert row["attempts"] == 1 and row["last_status_code"] is None
        assert "refused in live mode, nothing sent" in row["last_error"]
        assert "deactivate_webhook_endpoint" in row["last_error"]
    plain = next(row for row in rows if row["endpoint_url"] == receiver.url)
    assert "https only" in plain["last_error"]
    dotted = next(row for row in rows if row["endpoint_url"].startswith("https://0x7f.1:"))
    assert "0x7f.1 means 127.0.0.1, a loopback address" in dotted["last_error"]

    # doctor / readiness_check: not ready while such an endpoint is active
    async with Client(build_server(live)) as client:
        result = await client.call_tool("readiness_check", {})
    report = dict(result.structured_content or {})
    check = {c["name"]: c for c in report["checks"]}["webhook_endpoints"]
    assert (report["ready"], report["ready_for_live"], check["status"]) == (False, False, "fail")
    assert f"{len(urls)} of {len(urls)} active endpoints" in check["detail"]
    assert "deactivate_webhook_endpoint" in check["detail"] and "127.0.0.1" in check["detail"]
    assert receiver.connections == 0


async def test_a_name_resolving_to_loopback_is_refused_when_saved_and_when_it_changes_later(
    live: Settings, receiver: Receiver
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    hosts = Hosts(erp_example=["93.184.215.14"], internal_example=["127.0.0.1"], mixed_example=["93.184.215.14", "::1"])
    services = build_services(live, resolver=hosts)
    try:
        await seed_catalog(services)
        for name, address in (("internal.example", "127.0.0.1"), ("mixed.example", "::1")):
            with pytest.raises(InvalidInput, match=f"{name} resolves to {address}, a loopback address"):
                await services.webhooks.create_endpoint(MERCHANT, f"https://{name}:{port}/hooks", ["order.created"])
        # Public when saved; the name then starts answering 127.0.0.1 (DNS rebinding): checked at delivery.
        await services.webhooks.create_endpoint(MERCHANT, f"https://erp.example:{port}/hooks", ["order.created"])
        hosts.table["erp.example"] = ["127.0.0.1"]
        await place(services, "rebind")
        [row] = await dispatch_all(services)
    finally:
        await services.close()
    assert receiver.connections == 0 and receiver.all() == []
    assert row["status"] == "failed" and "erp.example resolves to 127.0.0.1, a loopback address" in row["last_error"]
    assert hosts.asked.count("erp.example") == 2  # once when saved, once when the delivery connected


async def test_the_connection_goes_to_the_address_the_resolver_gave_with_the_host_header_kept(
    settings: Settings, receiver: Receiver
) -> None:
    """Test mode allows local receivers; it shows the dispatcher connects to the resolved address it
    was given (pinned), not to whatever a second lookup would say, and keeps the name in Host."""
    port = receiver.url.split(":")[2].split("/")[0]
    hosts = Hosts(erp_example=["127.0.0.1"])
    services = build_services(settings, resolver=hosts)
    try:
        await seed_catalog(services)
        await services.webhooks.create_endpoint(MERCHANT, f"http://erp.example:{port}/hooks", ["order.created"])
        await place(services, "pinned")
        [row] = await dispatch_all(services)
    finally:
        await services.close()
    assert row["status"] == "delivered"
    [got] = receiver.delivered()
    assert got.headers["host"] == f"erp.example:{port}"
    assert hosts.asked == ["erp.example"]
