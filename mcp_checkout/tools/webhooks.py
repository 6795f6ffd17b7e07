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
from mcp_checkout.tools.types import Cursor, HttpUrl, OrderId, PageSize

EndpointId = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^we_[A-Za-z0-9]+$", description="From create_webhook_endpoint."),
]
DeliveryId = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^msg_[A-Za-z0-9]+$", description="From list_webhook_deliveries."),
]
EventTypes = Annotated[
    list[EventType], Field(min_length=1, max_length=7, description="Which order events to send, e.g. ['order.paid'].")
]
WindowMinutes = Annotated[
    int, Field(strict=True, ge=1, le=MAX_WINDOW_MINUTES, description="Metrics window in minutes (default 1440).")
]
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
        """Send order events to the merchant's own system (ERP, shop backend) as signed JSON POSTs. Merchant only.

        events: any of order.created, order.paid, order.partially_fulfilled, order.fulfilled,
        order.canceled, order.expired, order.refunded. Each POST carries the full order and Standard
        Webhooks headers (webhook-id, webhook-timestamp, webhook-signature) that the receiver verifies
        with signing_secret.
        Returns the endpoint (endpoint_id we_…) and signing_secret (whsec_…), which is shown ONLY in
        this answer: hand it to the merchant for their receiver now; it cannot be read again (to
        rotate, create a new endpoint and deactivate the old one). Each call creates a new endpoint.
        Errors: `invalid_input` for a URL that is not http(s) (in live mode only https is accepted).
        """
        return await services(ctx).webhooks.create_endpoint(principal(ctx), url, events, description)

    @server.tool(title="List webhook endpoints (merchant)", annotations=READ_ONLY)
    async def list_webhook_endpoints(ctx: Context[Any]) -> WebhookEndpointList:
        """List the registered webhook endpoints, active and deactivated, oldest first. Merchant only.

        Each has endpoint_id, url, description, events and status. Signing secrets are never shown
        here. For delivery outcomes call list_webhook_deliveries.
        """
        return await services(ctx).webhooks.list_endpoints(principal(ctx))

    @server.tool(title="Deactivate a webhook endpoint (merchant)", annotations=DEACTIVATES)
    async def deactivate_webhook_endpoint(ctx: Context[Any], endpoint_id: EndpointId) -> WebhookEndpointOut:
        """Stop sending events to an endpoint, at once and for good. Merchant only.

        Deliveries still waiting to be sent to it become `abandoned`; its delivery history stays
        visible in list_webhook_deliveries. Safe to call again. Returns the endpoint (status inactive).
        Errors: `webhook_endpoint_not_found` (call list_webhook_endpoints for the ids).
        """
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
        """Show webhook deliveries, newest first, and delivery metrics. Merchant only.

        Filter by endpoint_id, status (pending = waiting for a try or retry; delivered; failed = the
        receiver answered 4xx, not retried; abandoned = gave up after the last retry) or order_id.
        Each delivery has delivery_id (msg_…, the webhook-id the receiver sees), event_type, status,
        attempts, next_attempt_at, last_status_code and last_error. metrics covers the last
        window_minutes: success_rate, pending, abandoned, p95_delivery_seconds. For a failed or
        abandoned delivery, fix the receiver, then call replay_webhook_delivery. When next_cursor is
        not null, call again with the SAME filters plus cursor for older deliveries.
        Errors: `webhook_endpoint_not_found`, `invalid_cursor` (start again without cursor).
        """
        return await services(ctx).webhooks.list_deliveries(
            principal(ctx),
            endpoint_id=endpoint_id, status=status, order_id=order_id, limit=limit, cursor=cursor,
            window_minutes=window_minutes,
        )  # fmt: skip

    @server.tool(title="Send a webhook delivery again (merchant)", annotations=REPLAYS)
    async def replay_webhook_delivery(ctx: Context[Any], delivery_id: DeliveryId) -> ReplayedDelivery:
        """Queue one delivery to be sent again now (e.g. after the receiver was fixed). Merchant only.

        The same message goes out with the same webhook-id (receivers that deduplicate by it will
        ignore it if they already processed it) and a fresh set of retries. Returns the delivery,
        status pending; check the outcome a few seconds later with list_webhook_deliveries.
        Errors: `webhook_delivery_not_found`; `invalid_state` when its endpoint was deactivated.
        """
        return await services(ctx).webhooks.replay(principal(ctx), delivery_id)
