"""Completions and client-visible logging: what MCP clients offer beside tools.

Completions suggest SKU codes, categories, report dates and order ids; a buyer is only ever offered its
own order ids. ``logging/setLevel`` (2025-11-25) sets the threshold for the ``notifications/message``
the server sends about a session's tool calls.
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp import types as mcp_types

from mcp_checkout.config import Settings
from mcp_checkout.server import build_server
from mcp_checkout.service.container import Services

MODES = ["auto", "legacy"]
# logging/setLevel is what 2025-11-25 clients send; the SDK's client warns it is gone in 2026-07-28.
pytestmark = pytest.mark.filterwarnings("ignore:The logging capability is deprecated")
SKU_TEMPLATE = mcp_types.ResourceTemplateReference(type="ref/resource", uri="catalog://products/{sku}")
ORDER_TEMPLATE = mcp_types.ResourceTemplateReference(type="ref/resource", uri="orders://{order_id}")


def as_principal(settings: Settings, services: Services, kind: str, principal_id: str) -> Any:
    local = settings.model_copy(update={"local_principal_kind": kind, "local_principal_id": principal_id})
    return build_server(local, services=services)


async def place_order(server: Any, key: str) -> str:
    async with Client(server) as client:
        result = await client.call_tool(
            "create_order", {"idempotency_key": key, "items": [{"sku": "MUG-01", "quantity": 1}]}
        )
        assert not result.is_error, result.content[0].text
        return str(result.structured_content["order_id"])


@pytest.mark.parametrize("mode", MODES)
async def test_sku_codes_complete_by_prefix(settings: Settings, seeded: Services, mode: str) -> None:
    async with Client(build_server(settings, services=seeded), mode=mode) as client:
        mugs = await client.complete(SKU_TEMPLATE, {"name": "sku", "value": "MUG"})
        socks = await client.complete(SKU_TEMPLATE, {"name": "sku", "value": "SOCK-L"})
        wild = await client.complete(SKU_TEMPLATE, {"name": "sku", "value": "%"})
    assert mugs.completion.values == ["MUG-01", "MUG-02"] and mugs.completion.has_more is False
    assert socks.completion.values == ["SOCK-L-GRY"]
    assert wild.completion.values == []  # LIKE wildcards in the prefix are taken literally


async def test_categories_and_report_dates_complete(settings: Settings, seeded: Services) -> None:
    async with Client(build_server(settings, services=seeded)) as client:
        categories = await client.complete(
            mcp_types.PromptReference(type="ref/prompt", name="guided_checkout"), {"name": "request", "value": "ki"}
        )
        dates = await client.complete(
            mcp_types.PromptReference(type="ref/prompt", name="merchant_daily_report"), {"name": "date", "value": "2"}
        )
    assert categories.completion.values == ["Kitchen"]
    assert len(dates.completion.values) == 7 and all(len(day) == 10 for day in dates.completion.values)


async def test_buyers_are_offered_only_their_own_order_ids(settings: Settings, seeded: Services) -> None:
    alice = as_principal(settings, seeded, "buyer", "buyer-a")
    bob = as_principal(settings, seeded, "buyer", "buyer-b")
    mine = {await place_order(alice, f"a-{n}") for n in range(3)}
    theirs = {await place_order(bob, f"b-{n}") for n in range(2)}
    followup = mcp_types.PromptReference(type="ref/prompt", name="order_followup")
    async with Client(alice) as client:
        offered = await client.complete(ORDER_TEMPLATE, {"name": "order_id", "value": "ord_"})
        via_prompt = await client.complete(followup, {"name": "order_id", "value": ""})
    assert set(offered.completion.values) == mine
    assert set(via_prompt.completion.values) == mine
    async with Client(as_principal(settings, seeded, "merchant", "local")) as client:
        everything = await client.complete(ORDER_TEMPLATE, {"name": "order_id", "value": ""})
    assert set(everything.completion.values) == mine | theirs


async def test_unknown_references_complete_to_nothing(settings: Settings, seeded: Services) -> None:
    async with Client(build_server(settings, services=seeded)) as client:
        nothing = await client.complete(
            mcp_types.PromptReference(type="ref/prompt", name="no_such_prompt"), {"name": "x", "value": "a"}
        )
        too_long = await client.complete(SKU_TEMPLATE, {"name": "sku", "value": "M" * 500})
    assert nothing.completion.values == [] and too_long.completion.values == []


async def test_set_level_filters_the_messages_about_tool_calls(settings: Settings, seeded: Services) -> None:
    received: list[mcp_types.LoggingMessageNotificationParams] = []

    async def on_log(params: mcp_types.LoggingMessageNotificationParams) -> None:
        received.append(params)

    out_of_stock = {"idempotency_key": "too-many", "items": [{"sku": "SOCK-L-GRY", "quantity": 1}]}
    server = build_server(settings, services=seeded)
    async with Client(server, mode="legacy", logging_callback=on_log) as client:
        await client.set_logging_level("warning")
        refused = await client.call_tool("create_order", out_of_stock)
        assert refused.is_error
        await client.set_logging_level("error")
        await client.call_tool("create_order", out_of_stock)
    assert [(entry.level, entry.data["code"]) for entry in received] == [("warning", "insufficient_stock")]
    assert received[0].logger == "mcp-checkout" and "create_order" in received[0].data["message"]
