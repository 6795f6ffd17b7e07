"""Tools built once per process: the SDK's ``Tool.from_function`` generates each tool's argument model and its
input and output JSON schemas with pydantic, about 1.4 s of CPU for our 44 tools, and ``build_server`` ran it for
every server it built (each test that builds one; every ``serve`` already paid it once).

What it builds depends only on the function's definition (its code object, defaults and annotations, resolved in
its module: ``inspect.signature(eval_str=True)`` never reads a closure) and on the decorator's arguments; the
function is per server (a closure made in each ``register``). So the built tool is kept per code object, checked
against those inputs, and each server gets a copy holding its own function and its own copies of what
``shape_tool_list`` changes afterwards (``parameters``, ``fn_metadata.output_schema``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from types import CodeType
from typing import Any

from mcp.server.mcpserver.tools import Tool, ToolManager
from mcp_types import Icon, ToolAnnotations

log = logging.getLogger(__name__)

_BUILT: dict[CodeType, tuple[tuple[Any, ...], Tool]] = {}


def add_tool(
    manager: ToolManager,
    fn: Callable[..., Any],
    *,
    name: str | None,
    title: str | None,
    description: str | None,
    annotations: ToolAnnotations | None,
    icons: list[Icon] | None,
    meta: dict[str, Any] | None,
    structured_output: bool | None,
) -> Tool:
    """What ``manager.add_tool`` does (a name already registered keeps its tool), from a tool built once."""
    options: dict[str, Any] = {
        "name": name,
        "title": title,
        "description": description,
        "annotations": annotations,
        "icons": icons,
        "meta": meta,
        "structured_output": structured_output,
    }
    code = getattr(fn, "__code__", None)
    if not isinstance(code, CodeType):  # not a plain function (a callable object): nothing to key it on
        return manager.add_tool(fn, **options)
    inputs = (
        *options.values(),
        getattr(fn, "__defaults__", None),
        getattr(fn, "__kwdefaults__", None),
        getattr(fn, "__annotations__", None),
        getattr(fn, "__doc__", None),
    )
    known = _BUILT.get(code)
    if known is None or known[0] != inputs:
        built = Tool.from_function(fn, **options)
        known = _BUILT[code] = (inputs, built)
    tool = _copy_for(known[1], fn)
    existing = manager.get_tool(tool.name)
    if existing is not None:
        if manager.warn_on_duplicate_tools:
            log.warning("Tool already exists: %s", tool.name)
        return existing
    manager._tools[tool.name] = tool
    return tool


def _copy_for(built: Tool, fn: Callable[..., Any]) -> Tool:
    metadata = built.fn_metadata.model_copy(update={"output_schema": _fresh(built.fn_metadata.output_schema)})
    tool = built.model_copy(
        update={
            "fn": fn,
            "parameters": _fresh(built.parameters),
            "fn_metadata": metadata,
            "resolved_params": dict(built.resolved_params),
            "resolver_plans": dict(built.resolver_plans),
        }
    )
    tool.__dict__.pop("output_schema", None)  # a cached_property: read from this copy's fn_metadata
    return tool


def _fresh(schema: Any) -> Any:
    """A deep copy of a JSON schema (a JSON round trip: several times faster than ``copy.deepcopy``)."""
    return json.loads(json.dumps(schema))
