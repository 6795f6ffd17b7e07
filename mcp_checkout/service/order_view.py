"""The order view: one order as agents, buyers and webhooks see it, built from its rows (order, lines,
history, checkout link and session, payment, issues)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from mcp_checkout.domain import DISPLAY_LOCALE, OrderStatus
from mcp_checkout.domain.pricing import ShippingRate
from mcp_checkout.service import quotes
from mcp_checkout.service.views import (
    AppliedDiscount,
    BuyerOut,
    CheckoutState,
    FulfilledLine,
    FulfillmentOptionOut,
    FulfillmentOut,
    MoneyOut,
    OrderLineOut,
    OrderOut,
    PaymentState,
    RefundEntry,
    ShippingAddressOut,
)
from mcp_checkout.store import fulfillments as fulfillment_store
from mcp_checkout.store import order_rows
from mcp_checkout.store import orders as order_store
from mcp_checkout.store import payments as payment_store
from mcp_checkout.store import pricing as pricing_store


@dataclass(frozen=True)
class Written:
    """What a transaction just wrote for a new order, so its view need not read it back."""

    items: Sequence[Mapping[str, Any]]
    history: Sequence[Mapping[str, Any]]


def order_lines(items: Sequence[Mapping[Any, Any]], currency: str, locale: str = DISPLAY_LOCALE) -> list[OrderLineOut]:
    """An order's lines as shown to agents and buyers, from its stored lines (amounts shown for ``locale``)."""
    return [OrderLineOut.model_validate(fields) for fields in _line_fields(items, currency, locale)]


def _line_fields(
    items: Sequence[Mapping[Any, Any]], currency: str, locale: str = DISPLAY_LOCALE
) -> list[dict[str, Any]]:
    """The :class:`OrderLineOut` fields of an order's lines (validated by the caller: alone, or inside the
    OrderOut, in one pydantic call with all its parts)."""

    def money(amount: int) -> MoneyOut:
        return MoneyOut.minor(amount, currency, locale)

    return [
        {
            "sku": item["sku"],
            "title": item["title"],
            "quantity": item["quantity"],
            "unit_price": money(item["unit_price_minor"]),
            "line_total": money(item["line_total_minor"]),
            "discount": money(item.get("discount_minor") or 0),
            "tax": money(item.get("tax_minor") or 0),
            "fulfilled_quantity": item.get("fulfilled_quantity") or 0,
            "image_url": item.get("image_url") or None,
        }
        for item in items
    ]


def order_breakdown(order: Mapping[Any, Any], locale: str = DISPLAY_LOCALE) -> dict[str, Any]:
    """The order's frozen breakdown (subtotal, discount, shipping, tax, total) as :class:`Breakdown` fields."""
    currency = order["currency"]

    def money(column: str) -> MoneyOut:
        return MoneyOut.minor(order.get(column) or 0, currency, locale)

    return {
        "subtotal": money("subtotal_minor"),
        "discount_total": money("discount_total_minor"),
        "shipping_total": money("shipping_total_minor"),
        "tax_total": money("tax_total_minor"),
        "total": money("total_minor"),
        "prices_include_tax": bool(order.get("prices_include_tax")),
    }


def order_delivery(
    order: Mapping[Any, Any], rates: Callable[[], Sequence[ShippingRate]], locale: str = DISPLAY_LOCALE
) -> dict[str, Any]:
    """The order's buyer, chosen option, applied codes, and what it still lacks (``messages``, ``ready``);
    ``rates``: the store's active shipping rates in the order's currency (asked only when the notices need them)."""
    notices = quotes.order_notices_from(order, rates)
    option = order.get("fulfillment_option")
    buyer = order.get("buyer") or {}
    email = order.get("email")
    return {
        "buyer": BuyerOut(email=email, name=buyer.get("name"), phone=buyer.get("phone")) if (email or buyer) else None,
        "fulfillment_option": FulfillmentOptionOut.model_validate(option) if option else None,
        "discounts": [
            AppliedDiscount(code=entry["code"], amount=MoneyOut.minor(entry["amount"], order["currency"], locale))
            for entry in order.get("discount_codes") or ()
            if isinstance(entry, dict)
        ],
        "messages": quotes.messages_out(notices),
        "ready": not notices,
    }


_NOTHING_RELATED = order_rows.Related(link=None, session_status=None, payment=None, has_issues=False)


def order_view(conn: Connection, order: Mapping[Any, Any], written: Written | None = None) -> OrderOut:
    """The order as tools show it, with what it refers to read in ``conn``'s transaction. ``written``: the
    order was created in this very transaction, with these lines and this history, and nothing else refers
    to it yet (no link, payment or issue)."""
    order_id = order["id"]
    shipped = OrderStatus(order["status"]) in SHIPPED_STATES
    items: Sequence[Mapping[Any, Any]]
    history: Sequence[Mapping[Any, Any]]
    issues: Sequence[Mapping[Any, Any]]
    if written:
        related = _NOTHING_RELATED
        items, history, issues = written.items, written.history, ()
    else:
        related = order_rows.related(conn, order_id)
        items, history = order_store.items(conn, order_id), order_store.events(conn, order_id)
        issues = payment_store.issues_of_order(conn, order_id) if related.has_issues else ()
    rows = order_rows.OrderRows(
        order, related, items, history, issues, fulfillment_store.of_order(conn, order_id) if shipped else ()
    )
    return view_of(rows, lambda: pricing_store.active_shipping_rates(conn))


def view_of(rows: order_rows.OrderRows, rates: Callable[[], Sequence[ShippingRate]]) -> OrderOut:
    """The order as tools show it, from its rows (order_rows.read reads them in one statement). ``rates``: the
    store's active shipping rates, asked for only when ``quotes.notices_need_rates``."""
    order = rows.order
    currency = order["currency"]
    status = OrderStatus(order["status"])
    address = order["shipping_address"]
    related = rows.related
    # One pydantic call for the whole view: its parts go in as field dicts (cheaper than a model each).
    return OrderOut.model_validate(
        {
            "order_id": order["id"],
            "number": order["number"],
            "status": status.value,
            "currency": currency,
            "lines": _line_fields(rows.items, currency),
            **order_breakdown(order),
            **order_delivery(order, rates),
            "email": order["email"],
            "merchant_reference_id": order["merchant_reference_id"],
            "shipping_address": ShippingAddressOut.model_validate(address) if address else None,
            "cart_id": order["cart_id"],
            "stock": order["stock_state"],
            "created_at": order["created_at"],
            "updated_at": order["updated_at"],
            "expires_at": order["expires_at"] if status is OrderStatus.PENDING_PAYMENT else None,
            "created_by": {"principal_id": order["principal_id"], "client": order["client_name"]},
            "fulfillments": _shipments(rows.fulfillments) if status in SHIPPED_STATES else [],
            "checkout": _checkout_state(related),
            "payment": _payment_state(related.payment) if related.payment else None,
            "issues": [
                {"code": issue["code"], "message": issue["message"], "at": issue["at"]} for issue in rows.issues
            ],
            "status_history": [
                {
                    "from_status": event["from_status"],
                    "to_status": event["to_status"],
                    "at": event["at"],
                    "actor": event["actor"],
                    "reason": event["reason"],
                }
                for event in rows.events
            ],
        }
    )


# Only orders that shipped something (and may have been refunded since) have fulfilments to read.
SHIPPED_STATES = frozenset({OrderStatus.PARTIALLY_FULFILLED, OrderStatus.FULFILLED, OrderStatus.REFUNDED})


def _shipments(rows: Sequence[Mapping[str, Any]]) -> list[FulfillmentOut]:
    """The order's shipments (rows oldest first), each with its units per SKU and its tracking."""
    shipments = []
    for row in rows:
        units: dict[str, int] = {}
        for line in row["lines"]:
            units[line["sku"]] = units.get(line["sku"], 0) + int(line["quantity"])
        shipments.append(
            FulfillmentOut(
                fulfillment_id=row["id"],
                lines=[FulfilledLine(sku=sku, quantity=quantity) for sku, quantity in units.items()],
                carrier=row["carrier"],
                tracking_number=row["tracking_number"],
                tracking_url=row["tracking_url"],
                at=row["created_at"],
            )
        )
    return shipments


def refunds_of(conn: Connection, order_id: str) -> list[RefundEntry]:
    """The order's refunds, oldest first."""
    return [
        RefundEntry(
            refund_id=row["id"],
            status=row["status"],
            amount=MoneyOut.minor(row["amount_minor"], row["currency"]),
            reason=row["reason"],
            at=row["created_at"],
        )
        for row in payment_store.refunds_of_order(conn, order_id)
    ]


def _checkout_state(related: order_rows.Related) -> CheckoutState | None:
    """The order's newest checkout link and its session, if it has a link."""
    link = related.link
    if link is None:
        return None
    return CheckoutState(
        link_id=link["id"],
        link_status=link["status"],
        session_status=related.session_status,
        merchant_reference_id=link["merchant_reference_id"],
        expires_at=link["expires_at"],
    )


def _payment_state(payment: Mapping[str, Any]) -> PaymentState:
    currency = payment["currency"]
    return PaymentState(
        gateway=payment["gateway"],
        intent_id=payment["intent_id"],
        status=payment["status"],
        attempt=payment["attempt"],
        amount_received=MoneyOut.minor(payment["amount_received_minor"], currency),
        refunded=MoneyOut.minor(payment["refunded_minor"], currency),
        last_error=payment["last_error"],
    )


def current_view(conn: Connection, order_id: str) -> OrderOut:
    """The order as it is now, in ``conn``'s transaction."""
    order = order_store.get(conn, order_id)
    assert order is not None
    return order_view(conn, order)
