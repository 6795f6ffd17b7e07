"""Merchant read SQL: the order listing (keyset pages) and the sales summary of a period.

Everything here is portable SQL (SQLite and PostgreSQL): plain filters, GROUP BY, scalar
subqueries and ``row_number()`` windows (SQLite >= 3.25).

Listing order is ``created_at DESC, seq DESC``; ``seq`` (the order's primary key) breaks ties
between orders created in the same microsecond, so a keyset ``(created_at, seq)`` pages without
duplicates or gaps.

Time bases of the summary: order counts are over orders *created* in the period (by their
current status); revenue and top products are over orders *paid* in the period (the time of their
``pending_payment -> paid`` history entry); refunds are over refunds *made* in the period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, RowMapping, Select, and_, func, or_, select

from mcp_checkout.store.models import checkout_links, order_events, order_items, orders, refunds


@dataclass(frozen=True, slots=True)
class OrderFilter:
    status: str | None = None
    created_from: datetime | None = None
    """Inclusive."""
    created_to: datetime | None = None
    """Exclusive."""
    merchant_reference_id: str | None = None


def _order_conditions(filters: OrderFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.status is not None:
        conditions.append(orders.c.status == filters.status)
    if filters.created_from is not None:
        conditions.append(orders.c.created_at >= filters.created_from)
    if filters.created_to is not None:
        conditions.append(orders.c.created_at < filters.created_to)
    if filters.merchant_reference_id is not None:
        reference = filters.merchant_reference_id
        linked = select(checkout_links.c.order_id).where(checkout_links.c.merchant_reference_id == reference)
        conditions.append(or_(orders.c.merchant_reference_id == reference, orders.c.id.in_(linked)))
    return conditions


_ITEM_COUNT = (
    select(func.coalesce(func.sum(order_items.c.quantity), 0))
    .where(order_items.c.order_id == orders.c.id)
    .correlate(orders)
    .scalar_subquery()
)
_LINK_REFERENCE = (
    select(checkout_links.c.merchant_reference_id)
    .where(checkout_links.c.order_id == orders.c.id, checkout_links.c.merchant_reference_id.is_not(None))
    .order_by(checkout_links.c.created_at.desc())
    .limit(1)
    .correlate(orders)
    .scalar_subquery()
)


def order_page(
    conn: Connection, filters: OrderFilter, *, after: tuple[datetime, int] | None, limit: int
) -> Sequence[RowMapping]:
    """Up to ``limit`` orders matching ``filters``, latest first, strictly after the keyset ``after``
    (``(created_at, seq)`` of the last order of the previous page). Each row carries ``item_count``
    (units over all lines) and ``reference`` (the order's own reference, else its newest link's)."""
    query: Select[Any] = select(
        orders.c.seq,
        orders.c.id,
        orders.c.number,
        orders.c.status,
        orders.c.currency,
        orders.c.total_minor,
        orders.c.created_at,
        orders.c.expires_at,
        func.coalesce(orders.c.merchant_reference_id, _LINK_REFERENCE).label("reference"),
        _ITEM_COUNT.label("item_count"),
    ).where(*_order_conditions(filters))
    if after is not None:
        created_at, seq = after
        query = query.where(
            or_(orders.c.created_at < created_at, and_(orders.c.created_at == created_at, orders.c.seq < seq))
        )
    query = query.order_by(orders.c.created_at.desc(), orders.c.seq.desc()).limit(limit)
    return conn.execute(query).mappings().all()


# ---------------------------------------------------------------- the sales summary
def status_counts(conn: Connection, start: datetime, end: datetime) -> dict[str, int]:
    """Orders created in ``[start, end)``, by their current status."""
    query = (
        select(orders.c.status, func.count())
        .where(orders.c.created_at >= start, orders.c.created_at < end)
        .group_by(orders.c.status)
    )
    return {str(status): int(count) for status, count in conn.execute(query).all()}


def _paid_in(start: datetime, end: datetime) -> Select[Any]:
    """Ids of the orders that became paid in ``[start, end)``."""
    return select(order_events.c.order_id).where(
        order_events.c.to_status == "paid", order_events.c.at >= start, order_events.c.at < end
    )


@dataclass(frozen=True, slots=True)
class CurrencyTotal:
    currency: str
    count: int
    amount_minor: int


def paid_totals(conn: Connection, start: datetime, end: datetime) -> list[CurrencyTotal]:
    """Per currency: how many orders became paid in the period and their order totals."""
    query = (
        select(orders.c.currency, func.count(), func.coalesce(func.sum(orders.c.total_minor), 0))
        .where(orders.c.id.in_(_paid_in(start, end)))
        .group_by(orders.c.currency)
        .order_by(orders.c.currency)
    )
    return [CurrencyTotal(str(cur), int(count), int(total)) for cur, count, total in conn.execute(query).all()]


def refund_totals(conn: Connection, start: datetime, end: datetime) -> list[CurrencyTotal]:
    """Per currency: refunds made in the period that went through at the gateway (not pending or failed)."""
    query = (
        select(refunds.c.currency, func.count(), func.coalesce(func.sum(refunds.c.amount_minor), 0))
        .where(refunds.c.status == "succeeded", refunds.c.created_at >= start, refunds.c.created_at < end)
        .group_by(refunds.c.currency)
        .order_by(refunds.c.currency)
    )
    return [CurrencyTotal(str(cur), int(count), int(total)) for cur, count, total in conn.execute(query).all()]


@dataclass(frozen=True, slots=True)
class ProductSales:
    currency: str
    sku: str
    title: str
    units: int
    revenue_minor: int


def top_products(conn: Connection, start: datetime, end: datetime, *, by: str, limit: int) -> list[ProductSales]:
    """Per currency, the ``limit`` SKUs that sold the most (``by`` = "units" or "revenue") in orders
    paid in the period; ties go to the SKU code in alphabetical order."""
    units = func.sum(order_items.c.quantity)
    revenue = func.sum(order_items.c.line_total_minor)
    first, second = (units, revenue) if by == "units" else (revenue, units)
    grouped = (
        select(
            orders.c.currency.label("currency"),
            order_items.c.sku.label("sku"),
            func.max(order_items.c.title).label("title"),
            units.label("units"),
            revenue.label("revenue"),
            func.row_number()
            .over(partition_by=orders.c.currency, order_by=(first.desc(), second.desc(), order_items.c.sku))
            .label("place"),
        )
        .join_from(order_items, orders, orders.c.id == order_items.c.order_id)
        .where(orders.c.id.in_(_paid_in(start, end)))
        .group_by(orders.c.currency, order_items.c.sku)
        .subquery()
    )
    query = (
        select(grouped.c.currency, grouped.c.sku, grouped.c.title, grouped.c.units, grouped.c.revenue)
        .where(grouped.c.place <= limit)
        .order_by(grouped.c.currency, grouped.c.place)
    )
    return [
        ProductSales(str(cur), str(sku), str(title), int(sold), int(amount))
        for cur, sku, title, sold, amount in conn.execute(query).all()
    ]
