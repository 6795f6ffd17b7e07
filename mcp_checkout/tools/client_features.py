"""MCP features clients expect beside tools: argument completion and client-visible logging.

* ``completion/complete``: SKU codes for ``catalog://products/{sku}``, order ids (only the caller's own,
  for a buyer) for ``orders://{order_id}`` and the prompts that take one, categories, and report dates.
* ``logging/setLevel`` (protocol 2025-11-25): the session's threshold for ``notifications/message``.
  On 2026-07-28 a client opts in per request and the SDK filters; :func:`tell_client` serves both.
"""

from __future__ import annotations

import json
import warnings
from datetime import timedelta
from typing import Any, Final, get_args

from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import (
    CompleteRequestParams,
    CompleteResult,
    Completion,
    EmptyResult,
    LoggingLevel,
    PromptReference,
    SetLevelRequestParams,
)

from mcp_checkout.domain import utc_now
from mcp_checkout.service.completions import Suggestions
from mcp_checkout.tools.context import AppState, caller

LEVELS: Final[tuple[LoggingLevel, ...]] = get_args(LoggingLevel)
DEFAULT_LEVEL: Final[LoggingLevel] = "info"
_LEVEL_KEY = "mcp_checkout.log_level"
LOGGER_NAME = "mcp-checkout"

# (reference, argument name) → what to suggest. References: prompt names and resource templates.
_ORDER_ARGUMENTS = {("orders://{order_id}", "order_id"), ("order_followup", "order_id")}
_SKU_ARGUMENTS = {("catalog://products/{sku}", "sku")}
_CATEGORY_ARGUMENTS = {("guided_checkout", "request")}
_DATE_ARGUMENTS = {("merchant_daily_report", "date")}


def _reference(params: CompleteRequestParams) -> str:
    ref = params.ref
    return ref.name if isinstance(ref, PromptReference) else str(ref.uri)


def _recent_days(prefix: str) -> Suggestions:
    today = utc_now().date()
    days = [(today - timedelta(days=back)).isoformat() for back in range(7)]
    return Suggestions([day for day in days if day.startswith(prefix)], False)


def register(server: MCPServer[Any]) -> None:
    # The SDK has no public way to add these handlers to an MCPServer; its low-level server has.
    lowlevel = server._lowlevel_server

    async def complete(ctx: ServerRequestContext[Any, Any], params: CompleteRequestParams) -> CompleteResult:
        state = ctx.lifespan_context
        asked = (_reference(params), params.argument.name)
        prefix = params.argument.value
        found = Suggestions([], False)
        if isinstance(state, AppState):
            completions = state.services.completions
            if asked in _SKU_ARGUMENTS:
                found = await completions.skus(prefix)
            elif asked in _ORDER_ARGUMENTS:
                found = await completions.order_ids(caller(state), prefix)
            elif asked in _CATEGORY_ARGUMENTS:
                found = await completions.categories(prefix)
            elif asked in _DATE_ARGUMENTS:
                found = _recent_days(prefix)
        return CompleteResult(completion=Completion(values=found.values, has_more=found.has_more))

    async def set_level(ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> EmptyResult:
        ctx.session._connection.state[_LEVEL_KEY] = params.level  # per session: its state outlives this request
        return EmptyResult()

    lowlevel.add_request_handler("completion/complete", CompleteRequestParams, complete)
    lowlevel.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)
    lowlevel.middleware.append(_tell_about_tool_calls)


async def _tell_about_tool_calls(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """A refused or failed tool call is worth a client's attention: a ``warning`` with its error code."""
    result = await call_next(ctx)
    if ctx.method == "tools/call" and isinstance(result, dict) and result.get("isError"):
        code = _error_code(result.get("content"))
        tool = str((ctx.params or {}).get("name", ""))[:80]
        await tell_client(ctx.session, "warning", f"{tool} failed: {code}", code=code, tool=tool)
    return result


def _error_code(content: Any) -> str:
    """The ``error.code`` of our error results (tools/errors.py: the second block is the JSON)."""
    try:
        return str(json.loads(content[1]["text"])["error"]["code"])
    except (ValueError, KeyError, TypeError, IndexError):
        return "error"


async def tell_client(session: ServerSession, level: LoggingLevel, message: str, **data: Any) -> None:
    """Send ``notifications/message`` if the session asked for ``level`` (never secrets or buyer data)."""
    threshold: LoggingLevel = session._connection.state.get(_LEVEL_KEY, DEFAULT_LEVEL)
    if LEVELS.index(level) < LEVELS.index(threshold):
        return
    with warnings.catch_warnings():  # the SDK flags the logging feature as deprecated in 2026-07-28 at every call
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        await session.send_log_message(level, {"message": message, **data}, logger=LOGGER_NAME)
