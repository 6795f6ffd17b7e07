"""Toolsets and --read-only: an operator exposes fewer tools, and every tool belongs to a toolset."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver.tools import Tool
from pydantic import ValidationError

from mcp_checkout.config import Settings
from mcp_checkout.server import build_server
from mcp_checkout.tools.toolsets import BUYER_TOOLSETS, toolset_of

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the tool list needs no database
CLI = Path(sys.executable).with_name("mcp-checkout")


async def tool_names(settings: Settings) -> set[str]:
    async with Client(build_server(settings)) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


@SQLITE_ONLY
async def test_every_tool_belongs_to_a_toolset_and_reads_without_indentation(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        tools = (await client.list_tools()).tools
    assert {tool.name: toolset_of(tool.name) for tool in tools if toolset_of(tool.name) is None} == {}
    indented = [tool.name for tool in tools if tool.description != inspect.cleandoc(tool.description or "")]
    assert indented == []


def _schema_nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every sub-schema of an input schema (property names are not schemas)."""
    if isinstance(node, dict):
        yield node
        for key in ("properties", "$defs"):
            for sub in node.get(key, {}).values():
                yield from _schema_nodes(sub)
        for key in ("items", "additionalProperties"):
            yield from _schema_nodes(node.get(key))
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key, []):
                yield from _schema_nodes(sub)


@SQLITE_ONLY
async def test_input_schemas_carry_no_generated_titles_or_null_options_and_null_still_means_omitted(
    settings: Settings,
) -> None:
    async with Client(build_server(settings)) as client:
        tools = (await client.list_tools()).tools
        nodes = [(tool.name, node) for tool in tools for node in _schema_nodes(tool.input_schema)]
        assert len(nodes) > 100
        assert [name for name, node in nodes if "title" in node] == []
        assert [name for name, node in nodes if {"type": "null"} in node.get("anyOf", [])] == []
        # the optional currency is listed as a plain string, yet an explicit null is what leaving it out is
        currency = next(tool for tool in tools if tool.name == "create_cart").input_schema["properties"]["currency"]
        assert currency["type"] == "string" and "default" not in currency
        result = await client.call_tool("create_cart", {"currency": None})
    assert not result.is_error, result.content[0].text


@SQLITE_ONLY
async def test_only_the_chosen_toolsets_are_listed_and_callable(settings: Settings) -> None:
    chosen = settings.model_copy(update={"toolsets": ["catalog", "orders"]})
    names = await tool_names(chosen)
    assert names == BUYER_TOOLSETS["catalog"] | BUYER_TOOLSETS["orders"]
    async with Client(build_server(chosen)) as client:
        result = await client.call_tool("create_cart", {})
    assert result.is_error and "[invalid_input]" in result.content[0].text


@SQLITE_ONLY
async def test_read_only_lists_only_tools_that_change_nothing(settings: Settings) -> None:
    async with Client(build_server(settings.model_copy(update={"read_only": True}))) as client:
        tools = (await client.list_tools()).tools
    names = {tool.name for tool in tools}
    assert {"search_catalog", "get_order", "list_orders"} <= names
    assert not names & {"create_order", "add_to_cart", "refund_order", "create_checkout_link"}
    assert all(tool.annotations and tool.annotations.read_only_hint for tool in tools)


def test_toolsets_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MCP_CHECKOUT_TOOLSETS", " Catalog, cart ")
    assert Settings(data_dir=tmp_path).toolsets == ["catalog", "cart"]
    monkeypatch.setenv("MCP_CHECKOUT_TOOLSETS", '["orders"]')
    assert Settings(data_dir=tmp_path).toolsets == ["orders"]
    monkeypatch.setenv("MCP_CHECKOUT_TOOLSETS", "carts")
    with pytest.raises(ValidationError, match="catalog"):
        Settings(data_dir=tmp_path)


def test_an_unknown_toolset_on_the_command_line_is_a_one_line_configuration_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(CLI), "serve", "--data-dir", str(tmp_path), "--toolsets", "catalog,carts"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "toolsets" in done.stderr.lower()


@SQLITE_ONLY
async def test_an_argument_defined_by_another_listed_tool_is_shown_by_name_yet_validated_in_full(
    settings: Settings, seeded: Any
) -> None:
    address = {"name": "Ada", "line1": "1 Main St", "city": "Portland", "postal_code": "97201", "country": "US"}
    async with Client(build_server(settings)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        shown = tools["create_order"].input_schema["properties"]["shipping_address"]
        assert shown == {"type": "object", "description": "As update_cart's."}
        assert "postal_code" in tools["update_cart"].input_schema["properties"]["shipping_address"]["properties"]
        refused = await client.call_tool(
            "create_order",
            {
                "idempotency_key": "shared-1",
                "items": [{"sku": "MUG-01", "quantity": 1}],
                "shipping_address": {**address, "planet": "Mars"},
            },
        )
        placed = await client.call_tool(
            "create_order",
            {"idempotency_key": "shared-2", "items": [{"sku": "MUG-01", "quantity": 1}], "shipping_address": address},
        )
    assert refused.is_error and "[invalid_input]" in refused.content[0].text and "planet" in refused.content[0].text
    assert not placed.is_error, placed.content[0].text
    assert placed.structured_content["shipping_address"]["postal_code"] == "97201"
    # without the cart toolset nobody else defines it: create_order shows it in full
    async with Client(build_server(settings.model_copy(update={"toolsets": ["catalog", "orders"]}))) as client:
        alone = {tool.name: tool for tool in (await client.list_tools()).tools}["create_order"].input_schema
    assert alone["properties"]["shipping_address"]["additionalProperties"] is False
    assert "postal_code" in alone["properties"]["shipping_address"]["properties"]


@SQLITE_ONLY
async def test_the_order_model_is_listed_in_full_once_and_every_result_still_carries_it(
    settings: Settings, seeded: Any
) -> None:
    async with Client(build_server(settings)) as client:
        tools = (await client.list_tools()).tools
        full = [tool.name for tool in tools if "status_history" in json.dumps(tool.output_schema)]
        named = {tool.name for tool in tools if "get_order" in json.dumps(tool.output_schema)}  # names where it is
        created = await client.call_tool(
            "create_order", {"idempotency_key": "once-1", "items": [{"sku": "MUG-01", "quantity": 1}]}
        )
        order_id = created.structured_content["order_id"]
        waited = await client.call_tool("wait_for_order", {"order_id": order_id, "timeout_seconds": 1})
        canceled = await client.call_tool("cancel_order", {"order_id": order_id})
    assert full == ["get_order"]
    assert {"create_order", "cancel_order", "wait_for_order", "lookup_orders", "fulfill_order"} <= named
    for result in (created, waited, canceled):
        assert not result.is_error, result.content[0].text
    assert "status_history" in waited.structured_content["order"]
    assert canceled.structured_content["status"] == "canceled" and canceled.structured_content["status_history"]


@SQLITE_ONLY
async def test_tools_are_built_once_per_process_and_each_server_shapes_its_own_copy(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """build_server builds each tool's argument model and schemas once per process (tools/registry.py); a server
    shaped for other toolsets or read-only, built in between, changes nothing in what another one lists."""

    async def listed(chosen: Settings) -> dict[str, dict[str, Any]]:
        async with Client(build_server(chosen)) as client:
            return {tool.name: tool.model_dump() for tool in (await client.list_tools()).tools}

    full = await listed(settings)
    built: list[Any] = []
    from_function = Tool.from_function
    monkeypatch.setattr(
        Tool, "from_function", lambda *args, **kwargs: built.append(args) or from_function(*args, **kwargs)
    )
    orders_only = await listed(settings.model_copy(update={"toolsets": ["orders"]}))
    read_only = await listed(settings.model_copy(update={"read_only": True}))
    again = await listed(settings)
    assert built == []
    assert again == full
    assert full["create_order"]["input_schema"]["properties"]["buyer"]["description"] == "As update_cart's."
    assert "email" in orders_only["create_order"]["input_schema"]["properties"]["buyer"]["properties"]
    assert read_only["get_order"] == full["get_order"] and "create_order" not in read_only
