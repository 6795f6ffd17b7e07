"""Merchant tools for the audit log and buyer-data erasure."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import Field

from mcp_checkout.service.audit import AuditEventPage
from mcp_checkout.service.buyer_data import ErasureOut
from mcp_checkout.tools.annotations import OVERWRITES, READ_ONLY
from mcp_checkout.tools.context import principal, services
from mcp_checkout.tools.merchant import Timestamp
from mcp_checkout.tools.types import Cursor, Email

AuditAction = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[a-z_]+\.[a-z_]+$", description="e.g. inventory.adjust"),
]


def register(server: MCPServer[Any]) -> None:
    @server.tool(title="List audit events (merchant)", annotations=READ_ONLY)
    async def list_audit_events(
        ctx: Context[Any],
        action: AuditAction | None = None,
        actor: Literal["merchant", "operator", "system"] | None = None,
        since: Timestamp | None = None,
        until: Timestamp | None = None,
        limit: Annotated[int, Field(strict=True, ge=1, le=100)] = 50,
        cursor: Cursor | None = None,
    ) -> AuditEventPage:
        """Who changed what in the store (prices, stock, imports, refunds, keys, webhooks, erasures), newest
        first; until exclusive. Next page: same filters, cursor=next_cursor.
        """
        return await services(ctx).audit.list_events(
            principal(ctx), action=action, actor=actor, since=since, until=until, limit=limit, cursor=cursor
        )

    @server.tool(title="Erase a buyer's personal data (merchant)", annotations=OVERWRITES)
    async def erase_buyer_data(ctx: Context[Any], email: Email) -> ErasureOut:
        """Erase one buyer's personal data at their request; cannot be undone. Safe to repeat.

        Cancels their unpaid orders; email, name, phone and addresses become "[erased]", amounts stay.
        """
        return await services(ctx).buyer_data.erase(principal(ctx), email)
