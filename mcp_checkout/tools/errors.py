"""The one place where errors become MCP tool results."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from mcp.types import CallToolResult, TextContent
from pydantic import ValidationError

from mcp_checkout.errors import CheckoutError, InternalError, InvalidInput

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


def unexpected(tool: str, exc: BaseException) -> CallToolResult:
    request_id = uuid.uuid4().hex[:12]
    log.error("internal error in tool %s [request %s]", tool, request_id, exc_info=exc)
    return error_result(
        InternalError(
            f"Something went wrong inside the server (request {request_id}). Nothing was lost: retry once; "
            "if it fails again, tell the merchant this request id.",
            details={"request_id": request_id},
        )
    )
