"""readiness_check (the go-live checklist as a merchant tool) through a real MCP client, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from mcp import Client
from pydantic import SecretStr
from sqlalchemy import update

from mcp_checkout.config import Settings
from mcp_checkout.domain import Principal, utc_now
from mcp_checkout.errors import Forbidden
from mcp_checkout.server import build_server
from mcp_checkout.service.container import Services
from mcp_checkout.service.golive import go_live_report
from mcp_checkout.store.demo_catalog import DEMO_ROWS, DEMO_WEBHOOK_DESCRIPTION, seed_demo_catalog
from mcp_checkout.store.models import shipping_rates, skus
from tests.pricing_rows import add_shipping_rate

MERCHANT = Principal(id="local", kind="merchant")
LIVE_SETTINGS = {
    "MCP_CHECKOUT_STRIPE_SECRET_KEY",
    "MCP_CHECKOUT_STRIPE_PUBLISHABLE_KEY",
    "MCP_CHECKOUT_STRIPE_WEBHOOK_SECRET",
    "MCP_CHECKOUT_PUBLIC_BASE_URL",
}


def checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"]}


async def test_a_seeded_offline_store_is_ready_for_test_mode_and_lists_what_live_needs(
    server: Any, seeded: Services
) -> None:
    async with Client(server) as client:
        tool = {t.name: t for t in (await client.list_tools()).tools}["readiness_check"]
        assert tool.annotations is not None and tool.annotations.read_only_hint is True
        result = await client.call_tool("readiness_check", {})
    assert not result.is_error, result.content[0].text
    report = dict(result.structured_content or {})
    assert (report["ready"], report["mode"], report["ready_for_live"]) == (True, "offline", False)
    found = checks(report)
    assert {name: found[name]["status"] for name in ("database", "schema", "catalog", "payments")} == {
        "database": "ok",
        "schema": "ok",
        "catalog": "ok",
        "payments": "ok",
    }
    assert found["catalog"]["detail"] == "5 SKUs, 4 in stock"  # SOCK-L-GRY has none
    assert {item["setting"] for item in report["live_missing"]} == LIVE_SETTINGS


async def test_an_empty_catalog_is_not_ready(server: Any) -> None:
    async with Client(server) as client:
        report = dict((await client.call_tool("readiness_check", {})).structured_content or {})
    assert report["ready"] is False
    catalog = checks(report)["catalog"]
    assert catalog["status"] == "fail" and "import-catalog" in catalog["detail"]


async def test_buyers_neither_see_nor_call_it(settings: Settings, seeded: Services) -> None:
    buyer = build_server(settings.model_copy(update={"local_principal_kind": "buyer"}))
    async with Client(buyer) as client:
        assert "readiness_check" not in {tool.name for tool in (await client.list_tools()).tools}
        result = await client.call_tool("readiness_check", {})
    assert result.is_error
    assert json.loads(result.content[1].text)["error"]["code"] == "forbidden"
    with pytest.raises(Forbidden):  # the service refuses too, whatever the transport does
        await go_live_report(seeded, Principal(id="someone", kind="buyer"))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_mixed_stripe_keys_fail_and_no_secret_is_shown(settings: Settings, seeded: Services) -> None:
    secret, webhook = "sk_live_" + "S3cr3tPart" * 3, "whsec_" + "W3bh00kPart" * 3
    mixed = settings.model_copy(
        update={
            "stripe_secret_key": SecretStr(secret),
            "stripe_publishable_key": "pk_test_" + "Pub" * 8,
            "stripe_webhook_secret": SecretStr(webhook),
            "public_base_url": "https://shop.example",
        }
    )
    async with Client(build_server(mixed)) as client:
        result = await client.call_tool("readiness_check", {})
    report = dict(result.structured_content or {})
    assert (report["ready"], report["mode"]) == (False, "stripe_live")
    keys = checks(report)["stripe_keys"]
    assert keys["status"] == "fail" and "sk_live_…" in keys["detail"] and "pk_test_…" in keys["detail"]
    assert [item["setting"] for item in report["live_missing"]] == ["MCP_CHECKOUT_STRIPE_PUBLISHABLE_KEY"]
    text = json.dumps(report) + "".join(getattr(block, "text", "") for block in result.content)
    assert "S3cr3tPart" not in text and "W3bh00kPart" not in text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_restricted_live_key_counts_as_live(settings: Settings, seeded: Services) -> None:
    restricted = settings.model_copy(
        update={
            "stripe_secret_key": SecretStr("rk_live_" + "Restricted1" * 2),
            "stripe_publishable_key": "pk_live_" + "Pub" * 8,
            "stripe_webhook_secret": SecretStr("whsec_" + "Signing1" * 2),
            "public_base_url": "https://shop.example",
        }
    )
    report = await go_live_report(dataclasses.replace(seeded, settings=restricted), MERCHANT)
    assert (report.mode, report.ready, report.ready_for_live) == ("stripe_live", True, True)
    assert {check.name: check.status for check in report.checks}["stripe_keys"] == "ok"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_failing_webhook_deliveries_warn_without_blocking(
    seeded: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcp_checkout.service.webhook_outbox import EVENT_TYPES
    from mcp_checkout.service.webhook_views import WebhookMetrics

    def webhook_check(report: Any) -> Any:
        return next(check for check in report.checks if check.name == "webhook_endpoints")

    assert webhook_check(await go_live_report(seeded, MERCHANT)).detail.startswith("no outbound webhook endpoints")
    await seeded.webhooks.create_endpoint(MERCHANT, "https://erp.example/hooks", [EVENT_TYPES[0]])
    quiet = webhook_check(await go_live_report(seeded, MERCHANT))
    assert (quiet.status, quiet.detail) == ("ok", "1 active; no deliveries finished in the last 24 h.")

    async def poor(_principal: Principal, window_minutes: int) -> WebhookMetrics:
        return WebhookMetrics(
            window_minutes=window_minutes, created=10, delivered=6, failed=3, abandoned=1, pending=2,
            success_rate=0.6, p95_delivery_seconds=None,
        )  # fmt: skip

    monkeypatch.setattr(seeded.webhooks, "metrics", poor)
    report = await go_live_report(seeded, MERCHANT)
    check = webhook_check(report)
    assert check.status == "warn" and report.ready is True
    assert "6 of 10 deliveries" in check.detail and "2 waiting for a retry" in check.detail
    assert "replay_webhook_delivery" in check.detail


async def test_webhook_secrets_sealed_with_a_key_file_warn_when_several_hosts_may_share_postgresql(
    seeded: Services, settings: Settings
) -> None:
    await seeded.webhooks.create_endpoint(MERCHANT, "https://erp.example/hooks", ["order.paid"])
    hooks = checks((await go_live_report(seeded, MERCHANT)).model_dump())["webhook_endpoints"]
    if seeded.db.dialect == "postgresql":
        assert hooks["status"] == "warn" and "MCP_CHECKOUT_SECRET_KEY" in hooks["detail"]
        assert str(settings.resolved_secret_key_file()) in hooks["detail"]
    else:  # one SQLite file means one host: the key file beside it is enough
        assert hooks["status"] == "ok", hooks


async def test_the_secret_key_check_names_the_shared_key_and_an_unfinished_rotation(
    settings: Settings, backend: str
) -> None:
    from cryptography.fernet import Fernet

    from mcp_checkout.service.container import build_services

    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    for setting, expected in ((None, "warn" if backend == "postgresql" else "ok"), (f"{new},{old}", "ok")):
        secret_key = SecretStr(setting) if setting else None
        services = build_services(settings.model_copy(update={"secret_key": secret_key}))
        try:
            services.keyring.seal("x")  # something sealed: the key exists
            found = checks((await go_live_report(services, MERCHANT)).model_dump())["secret_key"]
        finally:
            await services.close()
        assert found["status"] == expected, found
        assert new not in found["detail"] and old not in found["detail"]
        if setting:
            assert "2 key(s)" in found["detail"] and "rotate-secret" in found["detail"]
        elif backend == "postgresql":
            assert "MCP_CHECKOUT_SECRET_KEY" in found["detail"]


async def test_demo_products_and_the_demo_endpoint_warn_in_a_live_store(settings: Settings, seeded: Services) -> None:
    def demo_check(report: Any) -> Any:
        return {check.name: check for check in report.checks}["demo_data"]

    assert demo_check(await go_live_report(seeded, MERCHANT)).detail == "no demo products or demo webhook endpoints"
    await seed_demo_catalog(seeded.db, utc_now())
    await seeded.webhooks.create_endpoint(
        MERCHANT, "https://erp.example/hooks", ["order.paid"], DEMO_WEBHOOK_DESCRIPTION
    )
    testing = demo_check(await go_live_report(seeded, MERCHANT))
    assert testing.status == "ok" and testing.detail.startswith(f"{len(DEMO_ROWS)} demo SKU(s) and 1 active")
    live = settings.model_copy(
        update={
            "stripe_secret_key": SecretStr("sk_live_" + "Live1234" * 2),
            "stripe_publishable_key": "pk_live_" + "Pub" * 8,
            "stripe_webhook_secret": SecretStr("whsec_" + "Signing1" * 2),
            "public_base_url": "https://shop.example",
        }
    )
    warned = demo_check(await go_live_report(dataclasses.replace(seeded, settings=live), MERCHANT))
    assert warned.status == "warn" and "taking live payments" in warned.detail and "reset --yes" in warned.detail
    await seeded.merchant.delete_product(MERCHANT, sku=DEMO_ROWS[0].sku)
    fewer = demo_check(await go_live_report(dataclasses.replace(seeded, settings=live), MERCHANT))
    assert fewer.detail.startswith(f"{len(DEMO_ROWS) - 1} demo SKU(s)")


async def test_skus_that_ship_without_a_shipping_rate_in_their_currency_warn(server: Any, seeded: Services) -> None:
    """Without a rate in the SKUs' currency, orders ask for no address and charge no shipping: a warning
    (ready still), until an active rate in that currency exists."""

    async def shipping() -> dict[str, Any]:
        async with Client(server) as client:
            report = dict((await client.call_tool("readiness_check", {})).structured_content or {})
        assert report["ready"] is True
        return dict(checks(report)["shipping"])

    await seeded.db.write(lambda conn: conn.execute(update(skus).where(skus.c.sku == "MUG-01").values(currency="EUR")))
    bare = await shipping()
    assert bare["status"] == "warn" and "upsert_shipping_rate" in bare["detail"]
    assert "in EUR" in bare["detail"] and "in USD" in bare["detail"]
    await seeded.db.write(lambda conn: add_shipping_rate(conn, "eu", 490, ["DE"], currency="EUR"))
    await seeded.db.write(lambda conn: add_shipping_rate(conn, "us", 590, ["US"]))
    assert (await shipping())["status"] == "ok"
    await seeded.db.write(
        lambda conn: conn.execute(update(shipping_rates).where(shipping_rates.c.id == "us").values(active=False))
    )
    inactive = await shipping()
    assert inactive["status"] == "warn" and "in USD" in inactive["detail"] and "EUR" not in inactive["detail"]
    await seeded.db.write(
        lambda conn: conn.execute(update(skus).where(skus.c.currency == "USD").values(requires_shipping=False))
    )
    assert (await shipping())["status"] == "ok"  # nothing in USD ships
