"""What the outbound-webhook use cases return (structured tool content and CLI --json output)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from mcp_checkout.service.views import Out

EventType = Literal[
    "order.created",
    "order.paid",
    "order.partially_fulfilled",
    "order.fulfilled",
    "order.canceled",
    "order.expired",
    "order.refunded",
]
DeliveryStatus = Literal["pending", "delivered", "failed", "abandoned"]


class WebhookEndpointOut(Out):
    endpoint_id: str = Field(description="we_…; pass to deactivate_webhook_endpoint or list_webhook_deliveries.")
    url: str
    description: str
    events: list[str] = Field(description="The event types sent to this endpoint.")
    status: Literal["active", "inactive"]
    created_at: datetime
    deactivated_at: datetime | None


class CreatedWebhookEndpoint(Out):
    endpoint: WebhookEndpointOut
    signing_secret: str = Field(
        description="whsec_…: give it to the receiving system to verify signatures. Shown only this once."
    )


class WebhookEndpointList(Out):
    endpoints: list[WebhookEndpointOut]


class WebhookDeliveryOut(Out):
    delivery_id: str = Field(description="msg_…: the webhook-id header; the same on every retry of this message.")
    event_id: str
    event_type: str
    order_id: str | None
    endpoint_id: str
    endpoint_url: str
    status: DeliveryStatus
    attempts: int = Field(description="HTTP attempts made so far.")
    next_attempt_at: datetime | None = Field(description="When the next attempt is due (pending deliveries only).")
    last_status_code: int | None = Field(description="The receiver's last HTTP status; null if it never answered.")
    last_error: str | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class WebhookMetrics(Out):
    window_minutes: int
    created: int = Field(description="Deliveries created in the window.")
    delivered: int = Field(description="Of those, delivered now.")
    failed: int = Field(description="Of those, refused by the receiver with a 4xx (not retried).")
    abandoned: int = Field(description="Of those, given up after the last retry (or endpoint deactivated).")
    pending: int = Field(description="Deliveries waiting for a (re)try now, whenever created.")
    success_rate: float | None = Field(
        description="delivered / (delivered + failed + abandoned) in the window; null when none finished."
    )
    p95_delivery_seconds: float | None = Field(
        description="95th percentile of event-to-successful-delivery time, for deliveries succeeded in the window."
    )


class WebhookDeliveryPage(Out):
    deliveries: list[WebhookDeliveryOut]
    next_cursor: str | None = Field(description="Pass back as cursor (same filters) for older deliveries.")
    metrics: WebhookMetrics


class ReplayedDelivery(Out):
    delivery: WebhookDeliveryOut
    message: str
