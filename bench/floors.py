"""Payload floors for bench/run.py: what the MCP SDK alone costs for a call of one of our tools.

A floor stands for one tool. It is served by a bare ``MCPServer`` with our server's identity (so the same
``serverInfo`` stamp rides on every result) and none of our own per-call work: no gate (rate limit, policy,
text checks), no argument check, no error mapping, no client notices. It takes the tool's arguments through
the tool's own argument model, publishes the tool's own ``outputSchema`` exactly as ``shape_tool_list``
shaped it (the client validates every result against it) and returns a precomputed result of the tool's
model and size. What is left is the SDK: the client, the in-memory transport, the server's dispatch,
argument validation, result conversion and the client's output-schema validation.

Floors used to be registered on our server after ``build_server``: they went through our gate and carried
pydantic's raw schemas, not the shaped ones the tools publish (``create_order`` publishes a one-line
"As get_order's result." schema; its floor had the full order schema with a dozen ``$ref``s, which the client
walked on every call), so a floor cost up to several times what the SDK costs for the real tool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from mcp.server import MCPServer
from mcp.server.mcpserver.tools import Tool

FLOORS: Final = {
    "bench_floor_search": "search_catalog",
    "bench_floor_product": "get_product",
    "bench_floor_order": "get_order",
    "bench_floor_create_order": "create_order",
}
"""Floor tool -> the tool whose arguments, schemas and payload it has."""


def floor_server(server: MCPServer[Any], answer: Callable[[str, dict[str, Any]], Any]) -> MCPServer[Any]:
    """A bare server whose floor tools return ``answer(floor name, validated arguments)``: a precomputed result."""

    def floor(name: str, tool: Tool) -> Tool:
        async def answered(**arguments: Any) -> Any:
            return answer(name, arguments)

        return Tool(
            fn=answered,
            name=name,
            title=tool.title,
            description=f"Benchmark only: a precomputed {tool.name} result.",
            parameters=tool.parameters,
            fn_metadata=tool.fn_metadata,  # the tool's argument model, output model and published outputSchema
            is_async=True,
            context_kwarg=tool.context_kwarg,
            annotations=tool.annotations,
        )

    tools = []
    for name, tool_name in FLOORS.items():
        tool = server._tool_manager.get_tool(tool_name)
        if tool is None:
            raise LookupError(f"{tool_name} is not served: its floor cannot copy it")
        tools.append(floor(name, tool))
    return MCPServer(server.name, title=server.title, version=server.version, log_level="WARNING", tools=tools)
