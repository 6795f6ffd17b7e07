"""Dates near the calendar's ends are a clear invalid_input naming the field, never internal_error
(issue 10 #12), through a real MCP client on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client

from mcp_checkout import domain
from mcp_checkout.errors import InvalidCursor
from mcp_checkout.service.container import Services

FAR_PAST = "0001-01-01T00:00:00+01:00"  # year 0 in UTC
FAR_FUTURE = "9999-12-31T23:00:00-05:00"  # year 10000 in UTC
REFUSED = [
    ("list_orders", "created_from", FAR_PAST),
    ("list_orders", "created_to", FAR_FUTURE),
    ("list_orders", "created_from", "1969-12-31T23:59:59Z"),
    ("sales_summary", "period_end", FAR_FUTURE),
    ("sales_summary", "period_start", FAR_PAST),
    ("sales_summary", "period_end", "0001-01-02T00:00:00Z"),  # the default start would be 30 days earlier
    ("list_audit_events", "since", FAR_PAST),
    ("list_audit_events", "until", "9999-12-31T23:59:59-12:00"),
]


def text(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


@pytest.mark.parametrize(("tool", "field", "value"), REFUSED)
async def test_moments_past_the_calendar_limits_are_invalid_input_naming_the_field(
    server: Any, seeded: Services, tool: str, field: str, value: str
) -> None:
    async with Client(server) as client:
        result = await client.call_tool(tool, {field: value})
    assert result.is_error, text(result)
    said = text(result)
    assert "[invalid_input]" in said and field in said and "1970-01-01" in said, said
    assert "internal_error" not in said
    assert json.loads(result.content[1].text)["error"]["details"]["field"] == field


async def test_the_limits_themselves_are_accepted(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        listed = await client.call_tool(
            "list_orders", {"created_from": "1970-01-01T00:00:00Z", "created_to": "9999-01-01T00:00:00Z"}
        )
        summary = await client.call_tool(
            "sales_summary", {"period_start": "9998-01-01T00:00:00Z", "period_end": "9998-12-31T19:00:00-05:00"}
        )
        audit = await client.call_tool("list_audit_events", {"since": "1970-01-01T01:00:00+01:00"})
    for result in (listed, summary, audit):
        assert not result.is_error, text(result)
    assert (listed.structured_content or {})["orders"] == []


async def test_a_cursor_carrying_a_moment_past_the_limits_is_invalid_cursor(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        for key in ("a", "b"):
            made = await client.call_tool(
                "create_order", {"idempotency_key": key, "items": [{"sku": "MUG-01", "quantity": 1}]}
            )
            assert not made.is_error, text(made)
        page = await client.call_tool("list_orders", {"limit": 1})
        cursor = (page.structured_content or {})["next_cursor"]
        data = domain.unpack_cursor(cursor, InvalidCursor("not a cursor"))
        forged = domain.pack_cursor({**data, "t": FAR_PAST})
        result = await client.call_tool("list_orders", {"limit": 1, "cursor": forged})
    assert result.is_error and "[invalid_cursor]" in text(result), text(result)
