"""Order state: which order a caller may act on, and ``transition()``, the one way an order changes
status, with its effects: stock released or committed, links and sessions settled, history written
and the event queued for webhooks (the outbox), all in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, RowMapping

from mcp_checkout import domain
from mcp_checkout.domain import Actor, OrderStatus, Principal, StockState
from mcp_checkout.errors import IdempotencyInFlight, OrderNotFound
from mcp_checkout.service import policy, webhook_outbox
from mcp_checkout.service.order_view import current_view
from mcp_checkout.store import catalog as catalog_store
from mcp_checkout.store import checkout as checkout_store
from mcp_checkout.store import order_rows
from mcp_checkout.store import orders as order_store
from mcp_checkout.store import pricing as pricing_store


def order_not_found(order_id: str) -> OrderNotFound:
    return OrderNotFound(
        f"No order {order_id!r}. Order ids look like ord_…; find orders by your reference with lookup_orders.",
        details={"order_id": order_id},
        next_actions=["lookup_orders"],
    )


def visible_order(conn: Connection, principal: Principal, order_id: str, *, lock: bool = False) -> RowMapping:
    """The order, if this caller may see it (buyers see their own; merchants see all)."""
    order = order_store.get(conn, order_id, for_update=lock)
    if order is None or not policy.may_access(principal, order["principal_id"]):
        raise order_not_found(order_id)
    return order


def visible_rows(rows: order_rows.OrderRows | None, principal: Principal, order_id: str) -> order_rows.OrderRows:
    """The order ``order_id`` and all its view shows (read with order_rows.VIEW_ROWS: ONE statement), if
    there is one and this caller may see it (as :func:`visible_order`)."""
    if rows is None or not policy.may_access(principal, rows.order["principal_id"]):
        raise order_not_found(order_id)
    return rows


def transition(
    conn: Connection,
    order: RowMapping,
    target: OrderStatus,
    *,
    actor: Actor,
    principal_id: str | None,
    reason: str | None,
    now: datetime,
) -> None:
    """Apply one legal status change, its stock effect and its history entry."""
    current = OrderStatus(order["status"])
    domain.check_transition(order["id"], current, target)
    stock_state = StockState(order["stock_state"])
    effect = domain.STOCK_EFFECT.get(target)
    if effect is not None and stock_state is StockState.RESERVED:
        quantities = _quantities(order_store.items(conn, order["id"]))
        if effect is StockState.RELEASED:
            catalog_store.release_stock(conn, quantities, now)
        else:
            catalog_store.commit_stock(conn, quantities, now)
        stock_state = effect
    elif effect is StockState.RELEASED and stock_state is StockState.COMMITTED:  # sold, not shipped: restock
        catalog_store.restock(conn, _quantities(order_store.items(conn, order["id"])), now)
        stock_state = effect
    if not order_store.set_status(conn, order["id"], current.value, target.value, stock_state.value, now):
        raise IdempotencyInFlight(
            f"Order {order['id']} changed while this call ran. Call get_order and try again.",
            retry_after_seconds=1,
        )
    order_store.add_event(conn, order["id"], current.value, target.value, actor.value, principal_id, reason, now)
    _settle_checkout(conn, order["id"], target, now)
    if current is OrderStatus.PENDING_PAYMENT and target in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
        # closed unpaid: its discount uses come back (a paid order that is canceled keeps its use)
        pricing_store.release(conn, order["id"], now)
    webhook_outbox.record_order_event(conn, target, order["id"], now, lambda: current_view(conn, order["id"]))


def restate(
    conn: Connection, order: RowMapping, *, actor: Actor, principal_id: str | None, reason: str, now: datetime
) -> None:
    """A change that keeps the order's status (another partial shipment): a history entry from the status
    to itself (so wait_for_order and subscribers hear of it, in this process and by the others' poll) and
    the status's webhook event again."""
    status = OrderStatus(order["status"])
    if not order_store.set_status(conn, order["id"], status.value, status.value, order["stock_state"], now):
        raise IdempotencyInFlight(
            f"Order {order['id']} changed while this call ran. Call get_order and try again.",
            retry_after_seconds=1,
        )
    order_store.add_event(conn, order["id"], status.value, status.value, actor.value, principal_id, reason, now)
    webhook_outbox.record_order_event(conn, status, order["id"], now, lambda: current_view(conn, order["id"]))


def _settle_checkout(conn: Connection, order_id: str, target: OrderStatus, now: datetime) -> None:
    """Links and sessions follow their order: paid consumes them, cancel/expiry closes them."""
    live_links = [state.value for state in domain.LIVE_LINK_STATES]
    open_sessions = [domain.SessionStatus.OPEN.value, domain.SessionStatus.PAYMENT_PENDING.value]
    if target is OrderStatus.PAID:
        checkout_store.set_links_of_order(conn, order_id, live_links, domain.LinkStatus.CONSUMED.value, now)
        checkout_store.set_sessions_of_order(conn, order_id, open_sessions, domain.SessionStatus.COMPLETED.value, now)
    elif target in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
        checkout_store.set_links_of_order(conn, order_id, live_links, domain.LinkStatus.EXPIRED.value, now)
        checkout_store.set_sessions_of_order(conn, order_id, open_sessions, domain.SessionStatus.CANCELED.value, now)


def _quantities(items: Sequence[RowMapping]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for item in items:
        totals[item["sku"]] = totals.get(item["sku"], 0) + item["quantity"]
    return dict(sorted(totals.items()))
