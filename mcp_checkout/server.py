"""build_server(settings): the only place tools, resources and prompts are registered."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.types import CallToolResult, GetPromptResult
from mcp.types import Prompt as MCPPrompt
from mcp.types import Tool as MCPTool
from mcp_types import Icon, InputRequiredResult, ToolAnnotations
from pydantic import ValidationError

from mcp_checkout import __version__
from mcp_checkout.config import Settings
from mcp_checkout.domain import Principal, PrincipalKind
from mcp_checkout.errors import CheckoutError, InvalidInput, NotFound
from mcp_checkout.prompts import checkout as checkout_prompts
from mcp_checkout.prompts import merchant as merchant_prompts
from mcp_checkout.service import policy
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.service.maintenance import upkeep_forever
from mcp_checkout.tools import audit as audit_tools
from mcp_checkout.tools import (
    carts,
    catalog,
    checkout,
    client_features,
    merchant,
    orders,
    payments,
    registry,
    resources,
    store_config,
    subscriptions,
)
from mcp_checkout.tools import webhooks as webhook_tools
from mcp_checkout.tools.context import AppState, key_kind
from mcp_checkout.tools.errors import error_result, internal_error, invalid_arguments, unexpected
from mcp_checkout.tools.gate import REFUSED, gate
from mcp_checkout.tools.toolsets import shape_tool_list

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
mcp-checkout sells from this merchant's catalog. Typical flow: search_catalog → get_product →
create_cart → add_to_cart → get_cart → create_order (with an idempotency_key you keep and reuse
on retries) → get_order. Prices are integer minor units. Errors start with [code] and say what
to do next; errors marked retryable can be retried with the same arguments."""


class CheckoutMCPServer(MCPServer[AppState]):
    """MCPServer whose tool errors always read ``[code] message`` and never leak internals, and
    whose merchant tools are invisible and refused to buyer callers."""

    local_kind: PrincipalKind = "merchant"

    def _caller_kind(self) -> PrincipalKind:
        return key_kind() or self.local_kind

    def add_tool(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: ToolAnnotations | None = None,
        icons: list[Icon] | None = None,
        meta: dict[str, Any] | None = None,
        structured_output: bool | None = None,
    ) -> None:
        """As the SDK's, from a tool built once per process (tools/registry.py: 1.4 s per server otherwise)."""
        registry.add_tool(
            self._tool_manager,
            fn,
            name=name,
            title=title,
            description=description,
            annotations=annotations,
            icons=icons,
            meta=meta,
            structured_output=structured_output,
        )

    async def list_tools(self) -> list[MCPTool]:
        kind = self._caller_kind()
        return [tool for tool in await super().list_tools() if policy.may_use(kind, tool.name)]

    async def list_prompts(self) -> list[MCPPrompt]:
        kind = self._caller_kind()
        return [prompt for prompt in await super().list_prompts() if policy.may_use(kind, prompt.name)]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        if (refused := REFUSED.get()) is not None:  # the gate refused it (rate limit, scope, text)
            return error_result(refused)
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

    async def read_resource(
        self, uri: Any, context: Context[Any] | None = None
    ) -> Iterable[ReadResourceContents] | InputRequiredResult:
        """Errors leave as ``CheckoutError``s, which the gate maps (a missing order is resource-not-found)."""
        try:
            return await super().read_resource(uri, context)
        except ResourceNotFoundError:
            raise NotFound(
                f"No resource {str(uri)[:200]!r}. Resources here: catalog://products/{{sku}} and "
                "orders://{order_id} (see resources/templates/list).",
                details={"uri": str(uri)[:200]},
            ) from None
        except ResourceError as exc:
            raise _checkout_cause(exc) or internal_error(f"resource {str(uri)[:200]}", exc.__cause__ or exc) from None

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Any] | None = None
    ) -> GetPromptResult | InputRequiredResult:
        """Errors leave as ``CheckoutError``s, which the gate maps (an unknown prompt is invalid params)."""
        if self._prompt_manager.get_prompt(name) is None:
            raise InvalidInput(
                f"No prompt {name[:100]!r}. Call prompts/list to see the available prompts.",
                details={"prompt": name[:100]},
            )
        try:
            return await super().get_prompt(name, arguments, context)
        except ValueError as exc:
            if (cause := _checkout_cause(exc)) is not None:
                raise cause from None
            if exc.__cause__ is None or isinstance(exc.__cause__, ValidationError):  # the arguments, not a bug
                raise InvalidInput(
                    f"Arguments for prompt {name} are not valid ({str(exc)[:200]}). See prompts/list for them.",
                    details={"prompt": name},
                ) from None
            raise internal_error(f"prompt {name}", exc.__cause__) from None

    def _refuse_arguments(self, name: str, arguments: dict[str, Any]) -> InvalidInput | None:
        """Arguments the schema does not declare (usually a typo that would silently drop data) are
        refused before any tool runs."""
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
        return None


def _checkout_cause(exc: BaseException) -> CheckoutError | None:
    """The ``CheckoutError`` the SDK wrapped (resource and prompt handlers raise ours; it wraps them)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, CheckoutError):
            return seen
        seen = seen.__cause__
    return None


def build_server(
    settings: Settings,
    *,
    services: Services | None = None,
    services_factory: Callable[[Settings], Services] | None = None,
    token_verifier: TokenVerifier | None = None,
) -> CheckoutMCPServer:
    """Build a server for ``settings``. Nothing touches the database until a session starts.

    With ``services`` the caller owns them (migrated, swept and closed by the caller, e.g. a process
    that also serves the checkout page); otherwise each server lifespan builds, migrates, sweeps and
    closes its own, from ``services_factory`` (tests inject clocks and gateways there).
    """
    local = Principal(id=settings.local_principal_id, kind=settings.local_principal_kind)
    remote = token_verifier is not None

    @asynccontextmanager
    async def lifespan(_server: MCPServer[AppState]) -> AsyncIterator[AppState]:
        if services is not None:
            async with anyio.create_task_group() as watching:
                # Order-change notifications need a loop running in every process that serves MCP; when
                # several lifespans share these services, one runs and the others stand by.
                watching.start_soon(services.order_watch.run)
                try:
                    yield AppState(services=services, local_principal=local, remote=remote)
                finally:
                    watching.cancel_scope.cancel()
            return
        built = (services_factory or build_services)(settings)
        await built.prepare_database()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(upkeep_forever, built, settings.sweep_interval_seconds)
            tasks.start_soon(built.order_watch.run)
            try:
                yield AppState(services=built, local_principal=local, remote=remote)
            finally:
                tasks.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await built.close()

    base = settings.resolved_public_base_url()
    auth = (
        AuthSettings(issuer_url=base, resource_server_url=f"{base}/mcp", validate_token_resource=False)
        if remote
        else None
    )
    server = CheckoutMCPServer(
        "mcp-checkout",
        title="Checkout",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level,
        token_verifier=token_verifier,
        auth=auth,
    )
    server.local_kind = settings.local_principal_kind
    server.middleware.insert(0, gate)  # outermost: every request, once, before anything else of ours
    catalog.register(server)
    carts.register(server)
    orders.register(server)
    checkout.register(server)
    payments.register(server)
    merchant.register(server)
    store_config.register(server)
    webhook_tools.register(server)
    audit_tools.register(server)
    resources.register(server)
    client_features.register(server)
    # Stateless HTTP ends a session with each request: a legacy subscription there would never fire.
    subscriptions.register(server, legacy=not (remote and settings.http_stateless))
    checkout_prompts.register(server)
    merchant_prompts.register(server)
    shape_tool_list(server, settings)
    return server
