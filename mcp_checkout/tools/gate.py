"""The gate every MCP request passes once, before any handler runs (a low-level server middleware).

In this order, for every request but the handshake and pings (tools/call whatever the tool or its
arguments, resources, prompts, subscriptions, completions, list calls, logging):

1. a remote caller's API key spends one call of its per-minute budget, refused or not;
2. the policy (service/policy.py) refuses a buyer the merchant-only tools and prompts (also when a
   completion asks about one);
3. text no database can store (NUL, lone surrogates: ``domain.check_text``) is refused, naming the field.

A refusal of a tools/call is answered as a tool error result (models read those), everything else as a
JSON-RPC error; ``CheckoutError``s raised by resource, prompt and subscription handlers are mapped here
too. Both shapes come from tools/errors.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Final

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from mcp_checkout.domain import check_text
from mcp_checkout.errors import CheckoutError
from mcp_checkout.service import policy
from mcp_checkout.tools.context import AppState, caller
from mcp_checkout.tools.errors import internal_error, protocol_error

UNCOUNTED: Final = frozenset({"initialize", "server/discover", "ping"})
"""Protocol housekeeping: free, so a client over its budget can still connect and be told why."""

REFUSED: ContextVar[CheckoutError | None] = ContextVar("mcp_checkout_refused_tool_call", default=None)
"""A tools/call the gate refused; the server's call_tool answers it as a tool error without running it."""


async def gate(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    if ctx.request_id is None or ctx.method in UNCOUNTED:  # notifications and housekeeping
        return await call_next(ctx)
    try:
        await _admit(ctx)
    except CheckoutError as refused:
        if ctx.method != "tools/call":
            raise protocol_error(refused, ctx.method, ctx.protocol_version) from None
        token = REFUSED.set(refused)
        try:
            return await call_next(ctx)
        finally:
            REFUSED.reset(token)
    try:
        return await call_next(ctx)
    except (MCPError, ValidationError):
        raise  # the protocol's own answers (unknown method, malformed params)
    except CheckoutError as exc:
        raise protocol_error(exc, ctx.method, ctx.protocol_version) from None
    except Exception as exc:
        raise protocol_error(internal_error(ctx.method, exc), ctx.method, ctx.protocol_version) from None


async def _admit(ctx: ServerRequestContext[Any, Any]) -> None:
    state = ctx.lifespan_context
    if not isinstance(state, AppState):
        return
    who = caller(state)
    if state.remote:
        await state.services.access.count_call(who)
    params: Mapping[str, Any] = ctx.params if isinstance(ctx.params, Mapping) else {}
    operation = _operation(ctx.method, params)
    if operation is not None:
        policy.require(who, operation)
    if ctx.method in ("tools/call", "prompts/get"):
        check_text(params.get("name"), "name")
        check_text(params.get("arguments"))  # fields named as the tool's or prompt's arguments
    else:
        check_text({key: value for key, value in params.items() if key != "_meta"})


def _operation(method: str, params: Mapping[str, Any]) -> str | None:
    """The tool or prompt a request uses, for the policy."""
    if method in ("tools/call", "prompts/get"):
        name = params.get("name")
        return name if isinstance(name, str) else None
    if method == "completion/complete":
        ref = params.get("ref")
        if isinstance(ref, Mapping) and ref.get("type") == "ref/prompt" and isinstance(ref.get("name"), str):
            return str(ref["name"])
    return None
