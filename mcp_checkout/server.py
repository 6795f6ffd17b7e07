"""build_server(settings): the only place tools, resources and prompts are registered."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from mcp_types import InputRequiredResult
from pydantic import ValidationError

from mcp_checkout import __version__
from mcp_checkout.config import Settings
from mcp_checkout.domain import Principal
from mcp_checkout.errors import CheckoutError, InvalidInput
from mcp_checkout.prompts import checkout as checkout_prompts
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.service.maintenance import sweep_forever
from mcp_checkout.store import migrate
from mcp_checkout.tools import carts, catalog, checkout, orders, payments, resources
from mcp_checkout.tools.context import AppState
from mcp_checkout.tools.errors import error_result, invalid_arguments, unexpected

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
mcp-checkout sells from this merchant's catalog. Typical flow: search_catalog → get_product →
create_cart → add_to_cart → get_cart → create_order (with an idempotency_key you keep and reuse
on retries) → get_order. Prices are integer minor units. Errors start with [code] and say what
to do next; errors marked retryable can be retried with the same arguments."""


class CheckoutMCPServer(MCPServer[AppState]):
    """MCPServer whose tool errors always read ``[code] message`` and never leak internals."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        if (refused := self._refuse_arguments(name, arguments)) is not None:
            return error_result(refused)
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, CheckoutError):
                return error_result(cause)
            if isinstance(cause, ValidationError):
                return invalid_arguments(name, cause)
            if cause is None and type(exc) is ToolError:  # unknown tool and the like: the SDK's own words
                return error_result(InvalidInput(f"{exc}. Call tools/list to see the available tools."))
            return unexpected(name, cause or exc)

    def _refuse_arguments(self, name: str, arguments: dict[str, Any]) -> InvalidInput | None:
        """Arguments the schema does not declare (usually a typo that would silently drop data) and
        text that is not valid Unicode are refused before any tool runs."""
        tool = self._tool_manager.get_tool(name)
        if tool is None:
            return None
        unknown = sorted(set(arguments) - set(tool.parameters.get("properties", {})))
        if unknown:
            shown = ", ".join(repr(key[:40]) for key in unknown[:5])
            return InvalidInput(
                f"{name} has no argument {shown}. Check the spelling against the tool's input schema and call again.",
                details={"tool": name, "unknown_arguments": [key[:40] for key in unknown[:20]]},
            )
        if _has_lone_surrogate(arguments):
            return InvalidInput(f"Arguments for {name} contain text that is not valid Unicode; send UTF-8 text.")
        return None


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def build_server(
    settings: Settings,
    *,
    services: Services | None = None,
    services_factory: Callable[[Settings], Services] | None = None,
) -> CheckoutMCPServer:
    """Build a server for ``settings``. Nothing touches the database until a session starts.

    With ``services`` the caller owns them (migrated, swept and closed by the caller, e.g. a process
    that also serves the checkout page); otherwise each server lifespan builds, migrates, sweeps and
    closes its own, from ``services_factory`` (tests inject clocks and gateways there).
    """
    local = Principal(id=settings.local_principal_id, kind=settings.local_principal_kind)

    @asynccontextmanager
    async def lifespan(_server: MCPServer[AppState]) -> AsyncIterator[AppState]:
        if services is not None:
            yield AppState(services=services, local_principal=local)
            return
        built = (services_factory or build_services)(settings)
        await migrate.upgrade(built.db)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(sweep_forever, built, settings.sweep_interval_seconds)
            try:
                yield AppState(services=built, local_principal=local)
            finally:
                tasks.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await built.close()

    server = CheckoutMCPServer(
        "mcp-checkout",
        title="Checkout",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level,
    )
    catalog.register(server)
    carts.register(server)
    orders.register(server)
    checkout.register(server)
    payments.register(server)
    resources.register(server)
    checkout_prompts.register(server)
    return server
