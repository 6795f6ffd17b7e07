"""The order capability (``dev.ucp.shopping.order``) over the native order view: ``get_order`` and the order
event webhooks. A UCP order IS the native order (its id is the order id; ``checkout_id`` the cart id = the
UCP checkout id): line quantities (original / total / fulfilled) from the order's lines, fulfilment events
from its shipments (with tracking), expectations from its destination and chosen option, adjustments from
its refunds (and a cancellation). Nothing is stored for UCP alone.

Webhooks: a platform that gives ``webhook_url`` in its profile's order capability ``config`` gets every
event of the orders it completed, each delivered by the webhook outbox and dispatcher (retries, backoff) to
an endpoint of kind ``ucp``; :class:`OrderWebhooks` turns a delivery into the UCP order (the snapshot taken
when the event happened) signed with RFC 9421 by the business's key published in the profile.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ucp_sdk.models.schemas.shopping.order import Order

from mcp_checkout.domain import Principal
from mcp_checkout.errors import InvalidInput, NotFound
from mcp_checkout.service.container import Services
from mcp_checkout.service.views import OrderOut, RefundEntry
from mcp_checkout.service.webhook_dispatch import Delivery
from mcp_checkout.service.webhook_signing import USER_AGENT
from mcp_checkout.ucp import spec
from mcp_checkout.ucp.addresses import postal_address
from mcp_checkout.ucp.checkout import _Line, _line_item, _totals

log = logging.getLogger(__name__)

WEBHOOK_KIND = "ucp"  # the webhook endpoint kind of UCP platforms (service/webhooks.follow_order's default)
CLOSED = frozenset({"canceled", "expired"})
REFUND_STATUS = {"pending": "pending", "succeeded": "completed", "failed": "failed"}


def _moment(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _ucp_meta() -> dict[str, Any]:
    return {"version": spec.VERSION, "capabilities": {spec.ORDER: [{"version": spec.VERSION}]}}


def _line_status(total: int, fulfilled: int) -> str:
    if total == 0:
        return "removed"
    if fulfilled >= total:
        return "fulfilled"
    return "partial" if fulfilled > 0 else "processing"


def _expectations(order: OrderOut) -> list[dict[str, Any]]:
    """One buyer-facing expectation: every line, going where the buyer chose (shipping or pickup)."""
    option = order.fulfillment_option
    kind = option.kind if option is not None else "shipping"
    place = option.pickup_address if option is not None and kind == "pickup" else order.shipping_address
    if place is None or order.status in CLOSED or not order.lines:
        return []
    expectation: dict[str, Any] = {
        "id": "expectation_1",
        "line_items": [{"id": line.sku, "quantity": line.quantity} for line in order.lines],
        "method_type": kind,
        "destination": postal_address(place),
        "fulfillable_on": "now",
    }
    if option is not None and (option.min_days is not None or option.max_days is not None):
        days = "-".join(str(d) for d in (option.min_days, option.max_days) if d is not None)
        expectation["description"] = f"{option.name}: {days} business days"
    elif option is not None:
        expectation["description"] = option.name
    return [expectation]


def _events(order: OrderOut) -> list[dict[str, Any]]:
    """Each shipment as a ``shipped`` fulfilment event with its units and tracking."""
    events = []
    for shipment in order.fulfillments:
        event: dict[str, Any] = {
            "id": shipment.fulfillment_id,
            "occurred_at": _moment(shipment.at),
            "type": "shipped",
            "line_items": [{"id": line.sku, "quantity": line.quantity} for line in shipment.lines],
        }
        for field in ("carrier", "tracking_number", "tracking_url"):
            if value := getattr(shipment, field):
                event[field] = value
        events.append(event)
    return events


def _adjustments(order: OrderOut, refunds: Sequence[RefundEntry]) -> list[dict[str, Any]]:
    """Refunds (money back: negative totals) and, for a canceled or expired order, its cancellation."""
    adjustments: list[dict[str, Any]] = []
    for refund in refunds:
        adjustment: dict[str, Any] = {
            "id": refund.refund_id,
            "type": "refund",
            "occurred_at": _moment(refund.at),
            "status": REFUND_STATUS[refund.status],
            "totals": [{"type": "total", "amount": -refund.amount.amount}],
        }
        if refund.reason:
            adjustment["description"] = refund.reason
        adjustments.append(adjustment)
    if order.status in CLOSED:
        closing = next((c for c in reversed(order.status_history) if c.to_status == order.status), None)
        adjustment = {
            "id": f"{order.order_id}_{order.status}",
            "type": "cancellation",
            "occurred_at": _moment(closing.at if closing is not None else order.updated_at),
            "status": "completed",
            "line_items": [{"id": line.sku, "quantity": -line.quantity} for line in order.lines],
        }
        if closing is not None and closing.reason:
            adjustment["description"] = closing.reason
        adjustments.append(adjustment)
    return adjustments


def ucp_order(order: OrderOut, refunds: Sequence[RefundEntry], permalink_url: str) -> dict[str, Any]:
    """The native order as a UCP order, validated through the ``ucp-sdk`` model."""
    closed = order.status in CLOSED
    line_items = []
    for line in order.lines:
        shaped = _line_item(_Line(line.sku, line.title, line.quantity, line.unit_price, line.line_total,
                                  line.discount, line.image_url))  # fmt: skip
        total = 0 if closed else line.quantity
        shaped["quantity"] = {"original": line.quantity, "total": total, "fulfilled": line.fulfilled_quantity}
        shaped["status"] = _line_status(total, line.fulfilled_quantity)
        line_items.append(shaped)
    body: dict[str, Any] = {
        "ucp": _ucp_meta(),
        "id": order.order_id,
        "label": order.number,
        "checkout_id": order.cart_id or order.order_id,
        "permalink_url": permalink_url,
        "line_items": line_items,
        "fulfillment": {"expectations": _expectations(order), "events": _events(order)},
        "adjustments": _adjustments(order, refunds),
        "currency": order.currency,
        "totals": _totals(order),
    }
    return Order.model_validate(body).model_dump(mode="json", by_alias=True, exclude_none=True)


def not_found(order_id: str) -> dict[str, Any]:
    """The spec's answer for an order this caller cannot have (HTTP 200 with the error envelope)."""
    return {
        "ucp": {**_ucp_meta(), "status": "error"},
        "messages": [{"type": "error", "code": "not_found", "severity": "unrecoverable",
                      "content": f"Order {order_id!r} not found."}],
    }  # fmt: skip


async def _permalink(services: Services, order: OrderOut) -> str:
    """Where the buyer sees the order on this store: its checkout link (the order's page), else the store."""
    owner = Principal(id=order.created_by.principal_id, kind="buyer", client="ucp")
    link = await services.links.current_link(owner, order.order_id)
    return link.url if link is not None and link.url else services.settings.resolved_public_base_url()


async def get_order(services: Services, principal: Principal, order_id: str) -> dict[str, Any]:
    """``get_order``: the order as it is now, if this caller may see it (the API key that placed it, or the
    merchant's); otherwise the ``not_found`` envelope."""
    try:
        order = await services.orders.get(principal, order_id)
    except NotFound:
        return not_found(order_id)
    return ucp_order(order, await services.orders.refunds(order_id), await _permalink(services, order))


async def follow(services: Services, principal: Principal, checkout_id: str, webhook_url: str | None) -> None:
    """After ``complete_checkout``: the platform that gave a webhook URL hears the order's events from now
    on, starting with the order as it is (once per platform URL and order). A URL the webhook rules refuse
    (e.g. not https in live mode) is logged and skipped: the checkout itself stands."""
    if webhook_url is None:
        return
    cart = await services.carts.get(principal, checkout_id)
    if cart.order_id is None:
        return
    try:
        await services.webhooks.follow_order(cart.order_id, webhook_url)
    except InvalidInput as refused:
        log.warning("UCP order webhook URL refused for order %s: %s", cart.order_id, refused.message)


def business_profile_url(services: Services) -> str:
    return services.settings.resolved_public_base_url().rstrip("/") + spec.PROFILE_PATH


class OrderWebhooks:
    """The ``ucp`` delivery format: the order event as the UCP order (when the event happened), with the
    spec's headers (``UCP-Agent``, ``Webhook-Id``, ``Webhook-Timestamp``) and an RFC 9421 signature over
    method, authority, path, ``content-digest`` and ``content-type`` by the business's newest key."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def prepare(self, delivery: Delivery) -> tuple[bytes, dict[str, str]]:
        snapshot = OrderOut.model_validate(json.loads(delivery.body)["data"])
        refunds = [r for r in await self._services.orders.refunds(snapshot.order_id) if r.at <= delivery.event_at]
        body = ucp_order(snapshot, refunds, await _permalink(self._services, snapshot))
        body["event_id"] = delivery.event_id
        body["created_time"] = _moment(delivery.event_at)
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            "User-Agent": USER_AGENT,
            "UCP-Agent": f'profile="{business_profile_url(self._services)}"',
            "Webhook-Id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mcp-checkout:{delivery.delivery_id}")),
            "Webhook-Timestamp": str(int(delivery.event_at.timestamp())),
        }
        return content, await self._services.signing_keys.sign_post(delivery.url, content, headers)


def register(services: Services) -> None:
    """Let this process's webhook dispatcher send UCP platforms' order events (endpoints of kind ``ucp``)."""
    services.webhooks.register_format(WEBHOOK_KIND, OrderWebhooks(services))
