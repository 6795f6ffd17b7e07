"""What a tool needs from the request: the services and who is calling."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context

from mcp_checkout.domain import Principal, PrincipalKind
from mcp_checkout.errors import Forbidden
from mcp_checkout.service.container import Services


@dataclass(frozen=True)
class AppState:
    services: Services
    local_principal: Principal
    remote: bool = False  # HTTP with API keys: every call must carry a verified key


def app_state(ctx: Context[Any]) -> AppState:
    state = ctx.request_context.lifespan_context
    if not isinstance(state, AppState):
        raise RuntimeError("server lifespan did not provide AppState")
    return state


def services(ctx: Context[Any]) -> Services:
    return app_state(ctx).services


def client_name(ctx: Context[Any]) -> str:
    params = ctx.request_context.session.client_params
    info = getattr(params, "client_info", None)
    if info is None:
        return "unknown"
    return f"{info.name}/{info.version}"[:200]


def key_kind() -> PrincipalKind | None:
    """The scope of this request's verified API key; None when the request carries none (stdio)."""
    token = get_access_token()
    if token is None:
        return None
    return "merchant" if "merchant" in token.scopes else "buyer"


def caller(state: AppState, client: str = "unknown") -> Principal:
    """The verified API key's principal over HTTP; the configured local principal over stdio."""
    token = get_access_token()
    kind = key_kind()
    if token is not None and token.subject and token.scopes and kind is not None:
        return Principal(id=token.subject, kind=kind, client=client)
    if state.remote:
        raise Forbidden("This call carries no valid API key. Send `Authorization: Bearer mcpk_…`.")
    return Principal(id=state.local_principal.id, kind=state.local_principal.kind, client=client)


def principal(ctx: Context[Any]) -> Principal:
    return caller(app_state(ctx), client_name(ctx))


def raw_arguments(ctx: Context[Any]) -> dict[str, Any]:
    """The tool arguments exactly as the client sent them (for request fingerprints)."""
    params = ctx.request_context.params or {}
    arguments = params.get("arguments") if isinstance(params, Mapping) else None
    return dict(arguments) if isinstance(arguments, dict) else {}
