"""Merchant tools for outbound webhooks: signed order events sent to the merchant's own systems."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_checkout.service.webhook_views import (
    CreatedWebhookEndpoint,
    DeliveryStatus,
    EventType,
    ReplayedDelivery,
    WebhookDeliveryPage,
    WebhookEndpointList,
    WebhookEndpointOut,
)
from mcp_checkout.service.webhooks import MAX_DESCRIPTION, MAX_WINDOW_MINUTES
from mcp_checkout.tools.annotations import CREATES, READ_ONLY
from mcp_checkout.tools.context import principal, services
from mcp_checkout.tools.types import Cursor, HttpUrl, OrderId, PageSize, issued_id

EndpointId = Annotated[str, issued_id("we", "create_webhook_endpoint")]
DeliveryId = Annotated[str, issued_id("msg", "list_webhook_deliveries")]
EventTypes = Annotated[list[EventType], Field(min_length=1, max_length=7)]
WindowMinutes = Annotated[int, Field(strict=True, ge=1, le=MAX_WINDOW_MINUTES)]
# Stops sending to an endpoint; calling it again changes nothing more.
DEACTIVATES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)
# Sends a message to the merchant's receiver again.
REPLAYS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)


def register(server: MCPServer[Any]) -> None:
    @server.tool(title="Register a webhook endpoint (merchant)", annotations=CREATES)
    async def create_webhook_endpoint(
        ctx: Context[Any],
        url: HttpUrl,
        events: EventTypes,
        description: Annotated[str, Field(max_length=MAX_DESCRIPTION)] = "",
    ) -> CreatedWebhookEndpoint:
        """Send order events to the merchant's system as signed POSTs (Standard Webhooks).

        Returns endpoint_id and signing_secret, shown ONLY here: give it to the merchant now (to rotate:
        new endpoint, deactivate the old). Live mode needs https.
        """
        return await services(ctx).webhooks.create_endpoint(principal(ctx), url, events, description)

    @server.tool(title="List webhook endpoints (merchant)", annotations=READ_ONLY)
    async def list_webhook_endpoints(ctx: Context[Any]) -> WebhookEndpointList:
        """The registered webhook endpoints, active and inactive, oldest first; secrets are never shown."""
        return await services(ctx).webhooks.list_endpoints(principal(ctx))

    @server.tool(title="Deactivate a webhook endpoint (merchant)", annotations=DEACTIVATES)
    async def deactivate_webhook_endpoint(ctx: Context[Any], endpoint_id: EndpointId) -> WebhookEndpointOut:
        """Stop sending to an endpoint for good; its waiting deliveries are abandoned. Safe to repeat."""
        return await services(ctx).webhooks.deactivate_endpoint(principal(ctx), endpoint_id)

    @server.tool(title="List webhook deliveries and their metrics (merchant)", annotations=READ_ONLY)
    async def list_webhook_deliveries(
        ctx: Context[Any],
        endpoint_id: EndpointId | None = None,
        status: DeliveryStatus | None = None,
        order_id: OrderId | None = None,
        window_minutes: WindowMinutes = 1440,
        limit: PageSize = 20,
        cursor: Cursor | None = None,
    ) -> WebhookDeliveryPage:
        """Webhook deliveries, newest first, with metrics over window_minutes. failed (4xx) and abandoned
        (retries used up): fix the receiver, then replay_webhook_delivery. Next page: cursor=next_cursor.
        """
        return await services(ctx).webhooks.list_deliveries(
            principal(ctx),
            endpoint_id=endpoint_id, status=status, order_id=order_id, limit=limit, cursor=cursor,
            window_minutes=window_minutes,
        )  # fmt: skip

    @server.tool(title="Send a webhook delivery again (merchant)", annotations=REPLAYS)
    async def replay_webhook_delivery(ctx: Context[Any], delivery_id: DeliveryId) -> ReplayedDelivery:
        """Send a delivery again now (same webhook-id, fresh retries). `invalid_state`: endpoint deactivated."""
        return await services(ctx).webhooks.replay(principal(ctx), delivery_id)
