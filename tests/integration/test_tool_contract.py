"""The tool list is a public API: names, titles, schemas and hints change only on purpose.

The snapshot (tests/integration/snapshots/tools.json) is compared in both protocol modes. After a
deliberate change regenerate it with ``UPDATE_SNAPSHOTS=1 pytest tests/integration/test_tool_contract.py``
and review the diff in git.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mcp_checkout.service.container import Services

SNAPSHOT = Path(__file__).with_name("snapshots") / "tools.json"
MODES = ["auto", "legacy"]
HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")
READ_ONLY_PREFIXES = ("get_", "search_", "lookup_", "list_", "wait_for_")
READ_ONLY_REPORTS = frozenset({"sales_summary", "readiness_check"})
# The tool list does not depend on the database: one backend is enough for the schema checks.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""


def _tool_record(tool: Any) -> dict[str, Any]:
    dumped = tool.model_dump(mode="json", by_alias=True, exclude_none=True)
    annotations = dumped.get("annotations") or {}
    return {
        "name": dumped["name"],
        "title": dumped.get("title"),
        "description_first_line": _first_line(dumped.get("description")),
        "inputSchema": dumped["inputSchema"],
        "outputSchema": dumped.get("outputSchema"),
        "annotations": {hint: annotations.get(hint) for hint in HINTS},
    }


async def _tools(server: Any, mode: str) -> list[Any]:
    async with Client(server, mode=mode) as client:
        return list((await client.list_tools()).tools)


def _render(records: list[dict[str, Any]]) -> str:
    return json.dumps(sorted(records, key=lambda r: r["name"]), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@SQLITE_ONLY
@pytest.mark.parametrize("mode", MODES)
async def test_tool_list_matches_the_committed_snapshot(server: Any, mode: str) -> None:
    current = _render([_tool_record(tool) for tool in await _tools(server, mode)])
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(current, encoding="utf-8")
    assert SNAPSHOT.exists(), f"no snapshot yet: run with UPDATE_SNAPSHOTS=1 to create {SNAPSHOT}"
    committed = SNAPSHOT.read_text(encoding="utf-8")
    if current != committed:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                current.splitlines(keepends=True),
                fromfile="snapshots/tools.json (committed)",
                tofile=f"tools/list ({mode} mode)",
            )
        )
        pytest.fail(
            "The tool list (a public API) changed. If that is deliberate, regenerate with UPDATE_SNAPSHOTS=1 "
            f"and commit the snapshot.\n{diff}",
            pytrace=False,
        )


# ---------------------------------------------------------------- key properties, asserted directly
@pytest.fixture(params=MODES)
async def tools(request: pytest.FixtureRequest, settings: Any) -> dict[str, Any]:
    from mcp_checkout.server import build_server

    return {tool.name: tool for tool in await _tools(build_server(settings), request.param)}


@SQLITE_ONLY
def test_the_buyer_agent_tools_are_all_there(tools: dict[str, Any]) -> None:
    expected = {
        "search_catalog",
        "get_product",
        "create_cart",
        "add_to_cart",
        "update_cart_item",
        "remove_from_cart",
        "update_cart",
        "get_cart",
        "create_order",
        "get_order",
        "lookup_orders",
        "cancel_order",
        "wait_for_order",
    }
    assert expected <= set(tools)


@SQLITE_ONLY
def test_create_order_requires_a_bounded_idempotency_key(tools: dict[str, Any]) -> None:
    schema = tools["create_order"].input_schema
    assert "idempotency_key" in schema["required"]
    key = schema["properties"]["idempotency_key"]
    assert key["type"] == "string"
    assert key["maxLength"] == 255  # and at least one character: the pattern's ``+``
    pattern = re.compile(key["pattern"])
    assert pattern.search("order-1.2_3:x")
    for bad in ("has space", "a/b", "ключ", ""):
        assert not pattern.search(bad), bad


@SQLITE_ONLY
def test_create_order_tells_the_model_to_reuse_the_key_on_retry(tools: dict[str, Any]) -> None:
    text = (tools["create_order"].description or "").lower()
    assert "same key" in text
    assert "retry" in text
    assert "replayed" in text
    key_help = tools["create_order"].input_schema["properties"]["idempotency_key"].get("description", "").lower()
    assert "reuse the same key" in key_help


@SQLITE_ONLY
def test_wait_for_order_is_bounded_and_says_what_to_do_when_not_reached(tools: dict[str, Any]) -> None:
    tool = tools["wait_for_order"]
    schema = tool.input_schema
    assert schema["required"] == ["order_id"]
    timeout = schema["properties"]["timeout_seconds"]
    assert (timeout["minimum"], timeout["maximum"], timeout["default"]) == (1, 60, 30)
    statuses = schema["properties"]["statuses"]  # optional: shown as the array itself (omit it for the default)
    assert statuses["type"] == "array" and "statuses" not in schema["required"]
    assert (statuses["minItems"], statuses["maxItems"]) == (1, 7)
    items = statuses["items"]
    enum = items["enum"] if "enum" in items else schema["$defs"][items["$ref"].rsplit("/", 1)[-1]]["enum"]
    assert set(enum) == {
        "pending_payment",
        "paid",
        "partially_fulfilled",
        "fulfilled",
        "canceled",
        "expired",
        "refunded",
    }
    text = tool.description or ""
    assert "checkout link" in text and "`reached`" in text and "call wait_for_order again" in text
    assert set(tool.output_schema["required"]) >= {"reached", "waited_seconds", "order", "message"}


@SQLITE_ONLY
def test_every_tool_sets_all_four_hints(tools: dict[str, Any]) -> None:
    for name, tool in tools.items():
        assert tool.annotations is not None, name
        hints = tool.annotations.model_dump(by_alias=True)
        for hint in HINTS:
            assert isinstance(hints.get(hint), bool), f"{name}: {hint} is {hints.get(hint)!r}"


@SQLITE_ONLY
def test_read_only_tools_are_exactly_the_get_search_lookup_ones(tools: dict[str, Any]) -> None:
    read_only = {name for name, tool in tools.items() if tool.annotations.read_only_hint}
    named_read_only = {name for name in tools if name.startswith(READ_ONLY_PREFIXES) or name in READ_ONLY_REPORTS}
    assert read_only == named_read_only
    for name in read_only:
        assert tools[name].annotations.destructive_hint is False, name
        assert tools[name].annotations.idempotent_hint is True, name


@SQLITE_ONLY
def test_order_tools_carry_the_documented_hints(tools: dict[str, Any]) -> None:
    create = tools["create_order"].annotations
    assert (create.read_only_hint, create.destructive_hint, create.idempotent_hint) == (False, False, True)
    cancel = tools["cancel_order"].annotations
    assert (cancel.read_only_hint, cancel.destructive_hint, cancel.idempotent_hint) == (False, True, True)
    add = tools["add_to_cart"].annotations
    assert add.idempotent_hint is False, "add_to_cart adds on top: retrying it twice adds twice"
    assert tools["update_cart_item"].annotations.idempotent_hint is True


@SQLITE_ONLY
def test_every_tool_returns_structured_output(tools: dict[str, Any]) -> None:
    for name, tool in tools.items():
        assert tool.output_schema is not None, name
        assert tool.output_schema.get("type") == "object", name
        assert tool.title, name
        assert len(tool.description or "") > 40, name


def _leaves(schema: dict[str, Any], defs: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every sub-schema of an input schema with its dotted path, $refs resolved."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    yield path, schema
    for option in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        yield from _leaves(option, defs, path)
    for name, sub in schema.get("properties", {}).items():
        yield from _leaves(sub, defs, f"{path}.{name}" if path else name)
    if isinstance(schema.get("items"), dict):
        yield from _leaves(schema["items"], defs, f"{path}[]")


def _typed(tools: dict[str, Any], type_name: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, tool in tools.items():
        schema = tool.input_schema
        for path, sub in _leaves(schema, schema.get("$defs", {})):
            if sub.get("type") == type_name:
                found.append((f"{name}:{path}", sub))
    return found


def _bounded_string(schema: dict[str, Any]) -> bool:
    """maxLength, an enum, or an anchored pattern without open-ended repetition (e.g. ``^[A-Z]{3}$``)."""
    if "maxLength" in schema or "enum" in schema or "const" in schema:
        return True
    pattern = schema.get("pattern", "")
    return pattern.startswith("^") and pattern.endswith("$") and not re.search(r"[+*]|\{\d*,\}", pattern)


@SQLITE_ONLY
def test_every_string_argument_is_bounded(tools: dict[str, Any]) -> None:
    strings = _typed(tools, "string")
    assert len(strings) > 10
    unbounded = [path for path, sub in strings if not _bounded_string(sub)]
    assert unbounded == []


@SQLITE_ONLY
def test_every_integer_argument_is_bounded(tools: dict[str, Any]) -> None:
    integers = _typed(tools, "integer")
    assert {path.split(":")[1] for path, _ in integers} >= {"quantity", "limit", "min_price", "items[].quantity"}
    unbounded = [path for path, sub in integers if "minimum" not in sub or "maximum" not in sub]
    assert unbounded == []
    for path, sub in integers:
        if path.endswith("quantity"):
            assert (sub["minimum"], sub["maximum"]) == (1, 999), path
        if path.endswith("limit"):
            assert (sub["minimum"], sub["maximum"] <= 100) == (1, True), path


@SQLITE_ONLY
def test_every_array_argument_is_bounded(tools: dict[str, Any]) -> None:
    arrays = _typed(tools, "array")
    assert arrays, "create_order.items is an array"
    unbounded = [path for path, sub in arrays if "maxItems" not in sub]
    assert unbounded == []


@SQLITE_ONLY
def test_line_items_and_addresses_reject_unknown_fields(tools: dict[str, Any]) -> None:
    # create_order's buyer and address are defined once, in update_cart (tools/schemas.py SHARED_ARGUMENTS)
    found = []
    for tool, wanted in (("create_order", {"items[]"}), ("update_cart", {"shipping_address", "buyer"})):
        schema = tools[tool].input_schema
        objects = [(path, sub) for path, sub in _leaves(schema, schema.get("$defs", {})) if path in wanted]
        found += [(f"{tool}:{path}", sub) for path, sub in objects if sub.get("type") == "object"]
    assert {path for path, _ in found} == {"create_order:items[]", "update_cart:shipping_address", "update_cart:buyer"}
    for path, sub in found:
        assert sub.get("additionalProperties") is False, path


# ---------------------------------------------------------------- resources and prompts
@pytest.mark.parametrize("mode", MODES)
async def test_resource_templates_are_listed_and_readable(server: Any, seeded: Services, mode: str) -> None:
    async with Client(server, mode=mode) as client:
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert {"catalog://products/{sku}", "orders://{order_id}"} <= templates

        product = json.loads((await client.read_resource("catalog://products/SOCK-L-GRY")).contents[0].text)
        assert product["name"] == "Merino Wool Socks"
        assert {v["sku"] for v in product["variants"]} == {"SOCK-M-GRY", "SOCK-L-GRY"}

        created = await client.call_tool(
            "create_order", {"idempotency_key": f"res-{mode}", "items": [{"sku": "MUG-01", "quantity": 2}]}
        )
        assert not created.is_error, created.content[0].text
        order_id = created.structured_content["order_id"]
        order = json.loads((await client.read_resource(f"orders://{order_id}")).contents[0].text)
        assert order["order_id"] == order_id
        assert order["total"]["amount"] == 3600
        assert order["status"] == "pending_payment"


@SQLITE_ONLY
@pytest.mark.parametrize("mode", MODES)
async def test_prompts_are_listed_and_render(server: Any, mode: str) -> None:
    async with Client(server, mode=mode) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert {"guided_checkout", "order_followup"} <= set(prompts)

        guided = await client.get_prompt("guided_checkout", {"request": "a warm pair of socks"})
        text = "\n".join(m.content.text for m in guided.messages)
        assert "a warm pair of socks" in text
        for tool in ("search_catalog", "create_cart", "add_to_cart", "create_order"):
            assert tool in text
        assert "SAME key" in text

        followup = await client.get_prompt("order_followup", {"order_id": "ord_abc123"})
        text = "\n".join(m.content.text for m in followup.messages)
        assert "get_order" in text
        assert "ord_abc123" in text


@SQLITE_ONLY
def test_webhook_tools_carry_their_hints_and_keep_the_secret_out_of_listings(tools: dict[str, Any]) -> None:
    def hints(name: str) -> tuple[bool, bool, bool, bool]:
        a = tools[name].annotations
        return (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint)

    assert hints("create_webhook_endpoint") == (False, False, False, False)
    assert hints("deactivate_webhook_endpoint") == (False, True, True, False)
    assert hints("replay_webhook_delivery") == (False, False, False, True), "replay sends to the merchant's system"
    assert hints("list_webhook_endpoints")[0] and hints("list_webhook_deliveries")[0]
    assert "shown ONLY" in (tools["create_webhook_endpoint"].description or "")
    assert "signing_secret" in tools["create_webhook_endpoint"].output_schema["required"]
    assert "signing_secret" not in json.dumps(tools["list_webhook_endpoints"].output_schema)
    events = tools["create_webhook_endpoint"].input_schema["properties"]["events"]
    assert (events["minItems"], events["maxItems"]) == (1, 7)
    deliveries = tools["list_webhook_deliveries"].input_schema["properties"]
    assert {"endpoint_id", "status", "order_id", "window_minutes", "limit", "cursor"} <= set(deliveries)
