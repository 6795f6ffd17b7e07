"""Which tools a server exposes: every one by default, or the operator's toolsets (``--toolsets``,
``MCP_CHECKOUT_TOOLSETS``) and only the read-only ones (``--read-only``). Fewer tools cost every connected
model fewer tokens on every turn. Descriptions are dedented and input schemas compacted here too, for the
same reason (``bench/tool_list_size.py`` measures it; ``tests/integration/test_tool_list_budget.py`` holds it).

Buyer-facing tools are listed by toolset below; every merchant-only tool (service/policy.py) is in
``merchant`` unless listed in ``webhooks``, so a new merchant tool needs no line here.
"""

from __future__ import annotations

import inspect
from typing import Any, Final

from mcp.server import MCPServer

from mcp_checkout.config import Settings, Toolset
from mcp_checkout.service import policy

BUYER_TOOLSETS: Final[dict[Toolset, frozenset[str]]] = {
    "catalog": frozenset({"search_catalog", "get_product", "get_store_profile"}),
    "cart": frozenset(
        {"create_cart", "add_to_cart", "update_cart_item", "remove_from_cart", "update_cart", "get_cart"}
    ),
    "orders": frozenset({"create_order", "get_order", "lookup_orders", "cancel_order", "wait_for_order"}),
    "checkout": frozenset(
        {
            "create_checkout_link",
            "regenerate_checkout_link",
            "get_checkout_link",
            "create_payment_intent",
            "sync_payment",
        }
    ),
}
WEBHOOK_TOOLS: Final = frozenset(
    {
        "create_webhook_endpoint",
        "list_webhook_endpoints",
        "deactivate_webhook_endpoint",
        "list_webhook_deliveries",
        "replay_webhook_delivery",
    }
)


def toolset_of(tool: str) -> Toolset | None:
    """The toolset a tool belongs to; None for a buyer-facing tool nobody has placed yet (a bug)."""
    if tool in WEBHOOK_TOOLS:
        return "webhooks"
    if policy.merchant_only(tool):
        return "merchant"
    return next((name for name, tools in BUYER_TOOLSETS.items() if tool in tools), None)


def compact_schema(node: Any) -> Any:
    """An input schema as a model needs it: pydantic's generated ``title`` keywords dropped (the property
    name says it) and an optional ``X | None = None`` argument shown as plain ``X`` (leaving it out is how
    a model says "none"). Every bound, pattern, enum, default and description stays; arguments are
    still validated by the tool's own pydantic model, which also accepts an explicit null."""
    if not isinstance(node, dict):
        return node
    out = {key: value for key, value in node.items() if not (key == "title" and isinstance(value, str))}
    options = out.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and NULL in options and out.get("default", ...) is None:
        del out["anyOf"], out["default"]
        out = {**next(option for option in options if option != NULL), **out}
    for key in ("properties", "$defs"):
        if isinstance(out.get(key), dict):
            out[key] = {name: compact_schema(sub) for name, sub in out[key].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = compact_schema(out[key])
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(out.get(key), list):
            out[key] = [compact_schema(sub) for sub in out[key]]
    return out


NULL: Final = {"type": "null"}


def shape_tool_list(server: MCPServer[Any], settings: Settings) -> None:
    """Drop the tools the operator did not ask for, dedent what remains and compact its input schema."""
    wanted = set(settings.toolsets) if settings.toolsets else None
    for tool in list(server._tool_manager.list_tools()):
        read_only = bool(tool.annotations and tool.annotations.read_only_hint)
        if (wanted is not None and toolset_of(tool.name) not in wanted) or (settings.read_only and not read_only):
            server.remove_tool(tool.name)
            continue
        tool.description = inspect.cleandoc(tool.description or "")
        tool.parameters = compact_schema(tool.parameters)
