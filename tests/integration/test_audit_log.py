"""The audit log: merchant actions over MCP are recorded with who, which client and before → after, in the
same transaction as the change; list_audit_events filters and pages; buyers cannot read it."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from sqlalchemy import func, select

from mcp_checkout import domain
from mcp_checkout.domain import Actor, Principal, utc_now
from mcp_checkout.errors import Forbidden, InvalidInput
from mcp_checkout.service import audit
from mcp_checkout.service.container import Services
from mcp_checkout.store.models import audit_events
from tests.support import tool_data as data


async def audit_count(services: Services) -> int:
    return int(await services.db.read(lambda c: c.execute(select(func.count()).select_from(audit_events)).scalar_one()))


async def test_merchant_actions_are_audited_with_who_and_before_after(seeded: Services, server: Any) -> None:
    async with Client(server) as client:
        data(
            await client.call_tool(
                "upsert_product", {"product_name": "Stoneware Coffee Mug", "sku": "MUG-01", "price": 2100}
            )
        )
        data(await client.call_tool("adjust_inventory", {"sku": "MUG-01", "delta": 5, "reason": "delivery"}))
        order = data(
            await client.call_tool(
                "create_order", {"idempotency_key": "a1", "items": [{"sku": "MUG-02", "quantity": 1}]}
            )
        )
        data(await client.call_tool("cancel_order", {"order_id": order["order_id"], "reason": "test"}))
        paid = data(
            await client.call_tool(
                "create_order", {"idempotency_key": "a2", "items": [{"sku": "MUG-02", "quantity": 1}]}
            )
        )
        intent, _ = await seeded.payments.ensure_intent(paid["order_id"])
        gateway: Any = seeded.payments.gateway
        await seeded.payments.apply_intent(await gateway.simulate_payment(intent.id), actor=Actor.BUYER, source="test")
        data(
            await client.call_tool(
                "refund_order", {"order_id": paid["order_id"], "idempotency_key": "r1", "amount": 100}
            )
        )
        data(
            await client.call_tool(
                "refund_order", {"order_id": paid["order_id"], "idempotency_key": "r1", "amount": 100}
            )
        )

        page = data(await client.call_tool("list_audit_events", {}))
        events = page["events"]
        assert [e["action"] for e in events] == ["order.refund", "order.cancel", "inventory.adjust", "product.upsert"]
        assert {e["actor"] for e in events} == {"merchant"}
        assert all(e["principal_id"] and e["client"] and e["client"] != "unknown" for e in events)
        upsert = events[3]
        assert upsert["target"] == "MUG-01"
        assert upsert["before"]["price_minor"] == 1800 and upsert["after"]["price_minor"] == 2100
        assert events[2]["before"] == {"stock_on_hand": 10} and events[2]["after"]["stock_on_hand"] == 15
        assert events[1]["before"] == {"status": "pending_payment"} and events[1]["after"]["status"] == "canceled"
        assert events[0]["after"]["amount_minor"] == 100 and events[0]["target"] == paid["order_id"]

        only = data(await client.call_tool("list_audit_events", {"action": "inventory.adjust"}))
        assert [e["action"] for e in only["events"]] == ["inventory.adjust"]
        seen: list[int] = []
        cursor = None
        while True:
            args: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
            one = data(await client.call_tool("list_audit_events", args))
            seen += [e["id"] for e in one["events"]]
            if not (cursor := one["next_cursor"]):
                break
        assert seen == [e["id"] for e in events]
        foreign = domain.pack_cursor({"before": 10**6, "s": "another-filter"})
        bad = await client.call_tool("list_audit_events", {"action": "order.cancel", "cursor": foreign})
        assert bad.is_error and "invalid_cursor" in bad.content[0].text


async def test_a_refused_change_leaves_no_audit_event(seeded: Services) -> None:
    merchant = Principal(id="local", kind="merchant", client="test")
    before = await audit_count(seeded)
    with pytest.raises(InvalidInput):
        await seeded.merchant.adjust_inventory(merchant, "MUG-01", set_to=-1)

    def record_then_fail(conn: Any) -> None:  # a failure after the record rolls the record back too
        audit.record(conn, merchant, "inventory.adjust", "MUG-01", after={"stock_on_hand": 1}, at=utc_now())
        raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await seeded.db.write(record_then_fail)
    assert await audit_count(seeded) == before


async def test_buyers_cannot_read_the_audit_log_and_secrets_are_redacted(seeded: Services) -> None:
    with pytest.raises(Forbidden):
        await seeded.audit.list_events(Principal(id="key:b", kind="buyer"))
    merchant = Principal(id="local", kind="merchant", client="test")

    def record(conn: Any) -> None:
        after = {"email": "x@example.com", "nested": {"signing_secret": "whsec_x"}, "status": "ok"}
        audit.record(conn, merchant, "webhook_endpoint.create", "we_1", after=after, at=utc_now())

    await seeded.db.write(record)
    (event,) = (await seeded.audit.list_events(merchant, action="webhook_endpoint.create")).events
    assert event.after == {"email": "[redacted]", "nested": {"signing_secret": "[redacted]"}, "status": "ok"}


async def test_webhook_endpoint_and_api_key_changes_are_audited(seeded: Services, server: Any) -> None:
    async with Client(server) as client:
        made = data(
            await client.call_tool(
                "create_webhook_endpoint", {"url": "http://127.0.0.1:9/h?token=abc", "events": ["order.paid"]}
            )
        )
        endpoint_id = made["endpoint"]["endpoint_id"]
        data(await client.call_tool("deactivate_webhook_endpoint", {"endpoint_id": endpoint_id}))
    key = await seeded.access.create_key("ops", "merchant")
    await seeded.access.revoke(key.info.key_id)
    events = (await seeded.audit.list_events(audit.OPERATOR)).events
    assert [(e.action, e.actor) for e in events] == [
        ("api_key.revoke", "operator"),
        ("api_key.create", "operator"),
        ("webhook_endpoint.deactivate", "merchant"),
        ("webhook_endpoint.create", "merchant"),
    ]
    assert events[3].target == endpoint_id and events[3].after == {"host": "127.0.0.1", "events": ["order.paid"]}
    assert events[2].after == {"status": "inactive"} and events[1].after == {"name": "ops", "scope": "merchant"}
    assert "token=abc" not in str(events) and made["signing_secret"] not in str(events) and key.key not in str(events)


async def test_catalog_imports_are_audited_over_mcp_and_from_the_service(seeded: Services, server: Any) -> None:
    csv_text = "product_name,sku_code,unit_price,currency,quantity_on_hand\nTea Towel,TOWEL-01,9.50,USD,4\n"
    async with Client(server) as client:
        data(await client.call_tool("import_catalog_csv", {"csv_text": csv_text}))
        data(await client.call_tool("import_catalog_csv", {"csv_text": csv_text, "dry_run": True}))  # no change
    await seeded.merchant._importer.import_text(csv_text.replace("4\n", "6\n"))  # the CLI's path: the operator
    events = (await seeded.audit.list_events(audit.OPERATOR, action="catalog.import")).events
    assert [(e.actor, e.after) for e in events] == [
        ("operator", {"created": 0, "updated": 1, "skipped": 0}),
        ("merchant", {"created": 1, "updated": 0, "skipped": 0}),
    ]
