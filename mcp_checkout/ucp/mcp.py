"""The UCP MCP binding: a stateless streamable-HTTP endpoint at ``/ucp/mcp`` (its own path, apart from the
native tools on ``/mcp``) whose tools are the checkout operations with the spec's argument envelope:
``meta`` (``ucp-agent.profile``, ``idempotency-key``), ``id`` and ``checkout``. Results carry the UCP
object in ``structuredContent`` (and as JSON text); refusals are JSON-RPC errors with the spec's codes
(-32001 discovery and version, -32000 protocol, -32602 bad input) and ``data: {code, content}``, sent
with the HTTP status REST would answer (the tool records it; :class:`Gate` sends it).

:class:`Gate` authenticates the API key and counts the call before the MCP app sees the request, so an
unknown key is HTTP 401 and a spent rate limit HTTP 429, as the spec asks of streamable HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_checkout.domain import Principal
from mcp_checkout.errors import CheckoutError, NotFound, RateLimited
from mcp_checkout.service.container import Services
from mcp_checkout.ucp import order as ucp_order
from mcp_checkout.ucp import spec
from mcp_checkout.ucp.catalog import get_product as catalog_product
from mcp_checkout.ucp.catalog import lookup as catalog_lookup
from mcp_checkout.ucp.catalog import search as catalog_search
from mcp_checkout.ucp.checkout import CheckoutAdapter
from mcp_checkout.ucp.negotiation import Incompatible, ProfileResolver, UcpProblem, check_version, checked_profile_url
from mcp_checkout.ucp.rest import error_envelope, negotiate, platform_principal

DISCOVERY_CODES = frozenset({"invalid_profile_url", "profile_unreachable", "profile_malformed", "version_unsupported"})
PRINCIPAL_KEY = "ucp_principal"
STATUS_KEY = "ucp_http_status"  # a refusal's HTTP status (and Retry-After), set by the tool, sent by the Gate


def _jsonrpc_error(status: int, code: int, message: str, data: dict[str, Any] | None = None) -> tuple[int, bytes]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return status, json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()


class Gate:
    """ASGI: the API key (X-API-Key or Bearer) or guest mode, and the rate limit, before the MCP app."""

    def __init__(self, app: ASGIApp, get_services: Callable[[], Services]) -> None:
        self.app = app
        self.get_services = get_services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
        try:
            principal = await platform_principal(self.get_services(), Request(scope))
        except RateLimited as limited:
            wait = max(1, round(limited.retry_after_seconds or 60))
            status, body = _jsonrpc_error(429, -32000, "Rate limit exceeded", {"retry_after": wait})
            headers.append((b"retry-after", str(wait).encode()))
        else:
            if principal is not None:
                state = scope.setdefault("state", {})
                state[PRINCIPAL_KEY] = principal
                await self.app(scope, receive, _with_refusal_status(state, send))
                return
            status, body = _jsonrpc_error(401, -32000, "Unauthorized")
            headers.append((b"www-authenticate", b'Bearer realm="ucp"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _with_refusal_status(state: dict[str, Any], send: Send) -> Send:
    """Over streamable HTTP the spec asks for the refusal's HTTP status beside the JSON-RPC error (overview,
    Error Handling: "the HTTP status code is the primary signal"): a tool that refused records it in the
    request's state, and the (JSON) answer goes out with it instead of 200."""

    async def sending(message: Message) -> None:
        refused = state.get(STATUS_KEY)
        if message["type"] == "http.response.start" and refused is not None and message["status"] == 200:
            status, retry_after = refused
            headers = list(message.get("headers", []))
            if retry_after is not None:
                headers.append((b"retry-after", str(retry_after).encode()))
            message = {**message, "status": status, "headers": headers}
        await send(message)

    return sending


def _refused(ctx: Context[Any], status: int, retry_after: int | None = None) -> None:
    request = ctx.request_context.request
    if request is not None:
        request.scope.setdefault("state", {})[STATUS_KEY] = (status, retry_after)


def _result(body: dict[str, Any]) -> CallToolResult:
    return CallToolResult(
        structured_content=body, content=[TextContent(type="text", text=json.dumps(body, separators=(",", ":")))]
    )


def _refusal(problem: UcpProblem) -> MCPError:
    if problem.code in DISCOVERY_CODES:
        return MCPError(-32001, "UCP discovery failed", problem.body())
    if problem.status == 400:
        return MCPError(-32602, "Invalid params", problem.body())
    return MCPError(-32000, problem.content, problem.body())


Operation = Callable[[CheckoutAdapter, Principal], Awaitable[dict[str, Any]]]
After = Callable[[Principal, str], Awaitable[None]]  # (caller, platform profile URL), after the operation


def build_server(
    get_services: Callable[[], Services], *, resolver: ProfileResolver | None = None, allow_http_profiles: bool = False
) -> MCPServer[Any]:
    """The UCP MCP server (serve it with ``streamable_http_app(stateless_http=True)`` behind :class:`Gate`)."""
    profiles = resolver or ProfileResolver()
    server: MCPServer[Any] = MCPServer(
        "mcp-checkout-ucp", instructions="UCP shopping service (checkout and order capabilities, protocol 2026-04-08)."
    )

    async def run(
        ctx: Context[Any],
        meta: Any,
        operation: Operation,
        *,
        needs_key: bool = False,
        after: After | None = None,
        root: str = spec.CHECKOUT,
    ) -> CallToolResult:
        try:
            request = ctx.request_context.request
            principal = request.scope.get("state", {}).get(PRINCIPAL_KEY) if request is not None else None
            if not isinstance(principal, Principal):
                _refused(ctx, 401)
                raise MCPError(-32000, "Unauthorized")
            agent = meta.get("ucp-agent") if isinstance(meta, dict) else None
            url = checked_profile_url(
                agent.get("profile") if isinstance(agent, dict) else None, allow_http=allow_http_profiles
            )
            platform = await profiles.profile(url)
            check_version(platform.version)
            negotiated = negotiate(platform, root, get_services().settings.resolved_public_base_url())
            if needs_key and not (isinstance(meta, dict) and isinstance(meta.get("idempotency-key"), str)):
                raise UcpProblem(400, "invalid_request", 'Send meta["idempotency-key"] (a UUID); reuse it on retries.')
            result = await operation(CheckoutAdapter(get_services(), negotiated), principal)
            if after is not None:
                await after(principal, url)
            return _result(result)
        except Incompatible as failed:  # a business outcome: a result with the error envelope
            envelope = error_envelope("capabilities_incompatible", failed.content, continue_url=failed.continue_url)
            return _result(envelope)
        except UcpProblem as problem:
            _refused(ctx, problem.status)
            raise _refusal(problem) from None
        except NotFound as missing:
            return _result(error_envelope("not_found", missing.message))
        except CheckoutError as error:
            data: dict[str, Any] = {"code": error.code, "content": error.message}
            wait = None if error.retry_after_seconds is None else max(1, round(error.retry_after_seconds))
            if wait is not None:
                data["retry_after"] = wait
            _refused(ctx, error.http_status, wait)
            raise MCPError(-32000, error.message, data) from None

    changes = ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
    )
    reads = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(
        name="create_checkout",
        description="UCP create_checkout: a checkout session from line_items.",
        annotations=changes,
    )
    async def create_checkout(meta: dict[str, Any], checkout: dict[str, Any], ctx: Context[Any]) -> CallToolResult:
        key = meta.get("idempotency-key") if isinstance(meta, dict) else None
        return await run(ctx, meta, lambda adapter, who: adapter.create(who, checkout, str(key) if key else None))

    @server.tool(name="get_checkout", description="UCP get_checkout: the session's current state.", annotations=reads)
    async def get_checkout(meta: dict[str, Any], id: str, ctx: Context[Any]) -> CallToolResult:
        return await run(ctx, meta, lambda adapter, who: adapter.get(who, id))

    @server.tool(
        name="update_checkout",
        description="UCP update_checkout: set line_items, buyer, fulfillment, discounts.",
        annotations=changes,
    )
    async def update_checkout(
        meta: dict[str, Any], id: str, checkout: dict[str, Any], ctx: Context[Any]
    ) -> CallToolResult:
        return await run(ctx, meta, lambda adapter, who: adapter.update(who, id, checkout))

    @server.tool(
        name="complete_checkout",
        description="UCP complete_checkout: place the order (meta.idempotency-key required).",
        annotations=changes,
    )
    async def complete_checkout(
        meta: dict[str, Any], id: str, checkout: dict[str, Any], ctx: Context[Any]
    ) -> CallToolResult:
        return await run(
            ctx,
            meta,
            lambda adapter, who: adapter.complete(who, id, checkout, str(meta["idempotency-key"])),
            needs_key=True,
            after=lambda who, url: follow(who, url, id),
        )

    async def follow(who: Principal, url: str, checkout_id: str) -> None:
        await ucp_order.follow(get_services(), who, checkout_id, await profiles.order_webhook_url(url))

    @server.tool(name="get_order", description="UCP get_order: the order's current state.", annotations=reads)
    async def get_order(meta: dict[str, Any], id: str, ctx: Context[Any]) -> CallToolResult:
        return await run(ctx, meta, lambda _adapter, who: ucp_order.get_order(get_services(), who, id), root=spec.ORDER)

    @server.tool(
        name="cancel_checkout",
        description="UCP cancel_checkout: cancel the session (meta.idempotency-key required).",
        annotations=changes,
    )
    async def cancel_checkout(meta: dict[str, Any], id: str, ctx: Context[Any]) -> CallToolResult:
        return await run(
            ctx, meta, lambda adapter, who: adapter.cancel(who, id, str(meta["idempotency-key"])), needs_key=True
        )

    @server.tool(
        name="search_catalog", description="UCP search_catalog: products for a query or filters.", annotations=reads
    )
    async def search_catalog(meta: dict[str, Any], catalog: dict[str, Any], ctx: Context[Any]) -> CallToolResult:
        return await run(
            ctx, meta, lambda _adapter, _who: catalog_search(get_services(), catalog), root=spec.CATALOG_SEARCH
        )

    @server.tool(
        name="lookup_catalog", description="UCP lookup_catalog: products for product or variant ids.", annotations=reads
    )
    async def lookup_catalog(meta: dict[str, Any], catalog: dict[str, Any], ctx: Context[Any]) -> CallToolResult:
        return await run(
            ctx, meta, lambda _adapter, _who: catalog_lookup(get_services(), catalog), root=spec.CATALOG_LOOKUP
        )

    @server.tool(
        name="get_product",
        description="UCP get_product: one product in full, by product or variant id.",
        annotations=reads,
    )
    async def get_product(meta: dict[str, Any], catalog: dict[str, Any], ctx: Context[Any]) -> CallToolResult:
        return await run(
            ctx, meta, lambda _adapter, _who: catalog_product(get_services(), catalog), root=spec.CATALOG_LOOKUP
        )

    return server
