"""Which tools a server exposes: every one by default, or the operator's toolsets (``--toolsets``,
``MCP_CHECKOUT_TOOLSETS``) and only the read-only ones (``--read-only``). Fewer tools cost every connected
model fewer tokens on every turn. Descriptions are dedented and schemas compacted here too (tools/schemas.py), for the
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
from mcp_checkout.tools.schemas import compact_schema, shape_results, share_arguments

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


def shape_tool_list(server: MCPServer[Any], settings: Settings) -> None:
    """Drop the tools the operator did not ask for, dedent what remains and compact its schemas (tools/schemas.py);
    an argument another listed tool defines in full is shown by name."""
    wanted = set(settings.toolsets) if settings.toolsets else None
    for tool in list(server._tool_manager.list_tools()):
        read_only = bool(tool.annotations and tool.annotations.read_only_hint)
        if (wanted is not None and toolset_of(tool.name) not in wanted) or (settings.read_only and not read_only):
            server.remove_tool(tool.name)
            continue
        tool.description = inspect.cleandoc(tool.description or "")
        tool.parameters = compact_schema(tool.parameters)
    listed = server._tool_manager.list_tools()
    arguments = share_arguments({tool.name: tool.parameters for tool in listed})
    results = shape_results({tool.name: tool.fn_metadata.output_schema for tool in listed})
    for tool in listed:
        tool.parameters = arguments[tool.name]
        tool.fn_metadata.output_schema = results[tool.name]
        tool.__dict__.pop("output_schema", None)  # a cached_property: read it again from fn_metadata
