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
        """List the audit log (who changed what in the store), newest first. Merchant only.

        Covers prices, stock, products, imports, refunds, status changes, API keys, webhook endpoints,
        buyer-data erasures and key rotations. Each event has at, action (e.g. product.upsert,
        inventory.adjust, order.refund), actor (merchant over MCP, operator at the command line, system),
        principal_id, client, target and before/after.
        since is inclusive, until exclusive (ISO 8601). When next_cursor is not null, call again with the
        SAME filters plus cursor=next_cursor. Errors: `invalid_cursor` (filters changed: start again).
        """
        return await services(ctx).audit.list_events(
            principal(ctx), action=action, actor=actor, since=since, until=until, limit=limit, cursor=cursor
        )

    @server.tool(title="Erase a buyer's personal data (merchant)", annotations=OVERWRITES)
    async def erase_buyer_data(ctx: Context[Any], email: Email) -> ErasureOut:
        """Erase one buyer's personal data at their request (right to erasure). Merchant only; cannot be undone.

        Unpaid orders of that buyer are canceled first (stock released, links closed). Then the email,
        name, phone and addresses in their orders, checkout links and stored webhook bodies are replaced
        by the tombstone "[erased]"; amounts, lines and statuses stay for accounting. Calling it again
        changes nothing more. Recorded in the audit log (buyer.erase), without the email.
        """
        return await services(ctx).buyer_data.erase(principal(ctx), email)
