"""The one place where errors become MCP answers: a tool result (``is_error``, for tools/call) or a
JSON-RPC error (resources, prompts, subscriptions, completions and every other request).

Both read ``[code] message`` and carry the error's facts as JSON; neither leaks a stack trace, SQL or a
secret. A client's mistake is never logged with a traceback; an unexpected exception (a bug) is logged
once, with a request id the answer also names.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from mcp_checkout.errors import CheckoutError, InternalError, InvalidInput, NotFound

RESOURCE_NOT_FOUND = -32002
"""Protocol 2025-11-25 and earlier: a resource that does not exist (2026-07-28 uses INVALID_PARAMS)."""
_RESOURCE_METHODS = ("resources/", "subscriptions/")

log = logging.getLogger("mcp_checkout.tools")


def error_result(error: CheckoutError) -> CallToolResult:
    """``[code] message`` first (what a model reads), then the facts as JSON."""
    body = error.to_dict()
    hint = "retry may help" if error.retryable else "retrying the same call will not help"
    if error.retry_after_seconds is not None:
        hint += f" (after {error.retry_after_seconds:g}s)"
    text = f"[{error.code}] {error.message}\n({hint}; fix by: {error.who_fixes})"
    # No structuredContent: clients validate it against the tool's outputSchema even on errors.
    return CallToolResult(
        is_error=True,
        content=[TextContent(type="text", text=text), TextContent(type="text", text=json.dumps({"error": body}))],
    )


def invalid_arguments(tool: str, exc: ValidationError) -> CallToolResult:
    """Pydantic's complaint without the rejected values (they are the caller's data and may be huge)."""
    problems: list[dict[str, Any]] = []
    for err in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in err["loc"]) or "arguments"
        problems.append({"field": field, "problem": err["msg"]})
    summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
    return error_result(
        InvalidInput(
            f"Invalid arguments for {tool}: {summary}. "
            "Fix these arguments (see the tool's input schema) and call again.",
            details={"tool": tool, "problems": problems[:20]},
        )
    )


def protocol_error(error: CheckoutError, method: str, protocol_version: str) -> MCPError:
    """The JSON-RPC error for a request other than tools/call: a thing that does not exist is
    resource-not-found for resources (-32002 before 2026-07-28) and invalid params otherwise; any other
    mistake of the client is invalid params (-32602); what a retry may fix is an internal error (-32603)."""
    if isinstance(error, NotFound) and method.startswith(_RESOURCE_METHODS):
        code = INVALID_PARAMS if protocol_version in MODERN_PROTOCOL_VERSIONS else RESOURCE_NOT_FOUND
    elif error.retryable:
        code = INTERNAL_ERROR
    else:
        code = INVALID_PARAMS
    return MCPError(code=code, message=f"[{error.code}] {error.message}", data=error.to_dict())


def internal_error(what: str, exc: BaseException) -> InternalError:
    """An unexpected exception (a bug, not the caller's mistake): logged once with its traceback."""
    request_id = uuid.uuid4().hex[:12]
    log.error("internal error in %s [request %s]", what, request_id, exc_info=exc)
    return InternalError(
        f"Something went wrong inside the server (request {request_id}). Nothing was lost: retry once; "
        "if it fails again, tell the merchant this request id.",
        details={"request_id": request_id},
    )


def unexpected(tool: str, exc: BaseException) -> CallToolResult:
    return error_result(internal_error(f"tool {tool}", exc))
