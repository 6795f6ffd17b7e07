"""Outbound webhook SQL: endpoints, the event outbox, deliveries and the dispatcher's claims.

The signing secret is read by exactly one statement (the claim, for the dispatcher); every other
query selects the endpoint's columns without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    RowMapping,
    Text,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    type_coerce,
    update,
)

from mcp_checkout.store.db import insert_or_ignore
from mcp_checkout.store.models import order_webhook_targets, webhook_deliveries, webhook_endpoints, webhook_events

PENDING, DELIVERED, FAILED, ABANDONED = "pending", "delivered", "failed", "abandoned"
ACTIVE, INACTIVE = "active", "inactive"
STANDARD, UCP = "standard", "ucp"  # endpoint kinds: a merchant's (every order), a UCP platform's (its orders)

_ENDPOINT = [column for column in webhook_endpoints.c if column.name != "secret"]
_SUBSCRIBERS = select(webhook_endpoints.c.id, webhook_endpoints.c.event_types).where(
    webhook_endpoints.c.status == ACTIVE, webhook_endpoints.c.kind == STANDARD
)
_FOLLOWERS = (
    select(order_webhook_targets.c.endpoint_id)
    .join(webhook_endpoints, webhook_endpoints.c.id == order_webhook_targets.c.endpoint_id)
    .where(order_webhook_targets.c.order_id == bindparam("order_id"), webhook_endpoints.c.status == ACTIVE)
)
_DELIVERY = (
    select(
        webhook_deliveries,
        webhook_events.c.type.label("event_type"),
        webhook_events.c.order_id,
        webhook_endpoints.c.url.label("endpoint_url"),
    )
    .join_from(webhook_deliveries, webhook_events, webhook_events.c.id == webhook_deliveries.c.event_id)
    .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
)


# ---------------------------------------------------------------- endpoints
def insert_endpoint(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(webhook_endpoints).values(**values))


_ACTIVE_KINDS = select(webhook_endpoints.c.kind).where(webhook_endpoints.c.status == ACTIVE).distinct()


def active_kinds(conn: Connection) -> frozenset[str]:
    """The kinds of the active endpoints (STANDARD: the merchant's, UCP: platforms following their orders);
    empty: no event has a receiver."""
    return frozenset(conn.execute(_ACTIVE_KINDS).scalars())


def endpoints(conn: Connection, *, include_inactive: bool = True) -> Sequence[RowMapping]:
    query = select(*_ENDPOINT).order_by(webhook_endpoints.c.seq)
    if not include_inactive:
        query = query.where(webhook_endpoints.c.status == ACTIVE)
    return conn.execute(query).mappings().all()


def endpoint(conn: Connection, endpoint_id: str) -> RowMapping | None:
    query = select(*_ENDPOINT).where(webhook_endpoints.c.id == endpoint_id)
    return conn.execute(query).mappings().first()


def deactivate_endpoint(conn: Connection, endpoint_id: str, now: datetime) -> int:
    """Stop sending to an endpoint; its pending deliveries are abandoned (history stays). Returns how many."""
    conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.status == ACTIVE)
        .values(status=INACTIVE, deactivated_at=now)
    )
    result = conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.endpoint_id == endpoint_id, webhook_deliveries.c.status == PENDING)
        .values(status=ABANDONED, next_attempt_at=None, last_error="endpoint deactivated", claim_token=None)
    )
    return result.rowcount


def subscribers(conn: Connection, event_type: str, order_id: str | None = None, *, followers: bool = True) -> list[str]:
    """Ids of the active endpoints that hear ``event_type`` of ``order_id``: the merchant's subscribed to it
    (one read of a small table) and, unless ``followers`` is False (no UCP endpoint is active), the UCP
    platforms' following that order (one indexed read)."""
    ids = [row.id for row in conn.execute(_SUBSCRIBERS) if event_type in row.event_types]
    if order_id is not None and followers:
        ids += conn.execute(_FOLLOWERS, {"order_id": order_id}).scalars()
    return ids


def platform_endpoint(conn: Connection, url: str) -> str | None:
    """The active UCP platform endpoint at ``url``, if one is registered."""
    query = select(webhook_endpoints.c.id).where(
        webhook_endpoints.c.kind == UCP, webhook_endpoints.c.url == url, webhook_endpoints.c.status == ACTIVE
    )
    found: str | None = conn.execute(query.limit(1)).scalar()
    return found


def follow(conn: Connection, order_id: str, endpoint_id: str, now: datetime) -> bool:
    """Send ``order_id``'s events to ``endpoint_id`` too; False if it already did."""
    statement = insert_or_ignore(conn, order_webhook_targets, ("order_id", "endpoint_id"))
    return bool(conn.execute(statement, {"order_id": order_id, "endpoint_id": endpoint_id, "created_at": now}).rowcount)


# ---------------------------------------------------------------- the outbox
def insert_event(
    conn: Connection, event: Mapping[str, Any], endpoint_ids: Sequence[str], delivery_ids: Sequence[str]
) -> None:
    """One event and one pending delivery per endpoint, in the caller's transaction."""
    conn.execute(insert(webhook_events).values(**event))
    now = event["created_at"]
    conn.execute(
        insert(webhook_deliveries),
        [
            {
                "id": delivery_id,
                "event_id": event["id"],
                "endpoint_id": endpoint_id,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for endpoint_id, delivery_id in zip(endpoint_ids, delivery_ids, strict=True)
        ],
    )


_ANY_DUE = (
    select(webhook_deliveries.c.id)
    .where(
        webhook_deliveries.c.status == PENDING,
        webhook_deliveries.c.next_attempt_at <= bindparam("now"),
        or_(webhook_deliveries.c.claimed_until.is_(None), webhook_deliveries.c.claimed_until <= bindparam("now")),
    )
    .limit(1)
)


def any_due(conn: Connection, now: datetime) -> bool:
    """Is a delivery due (a cheap indexed read, so an idle dispatcher takes no write lock)?"""
    return conn.execute(_ANY_DUE, {"now": now}).first() is not None


def claim_due(
    conn: Connection, now: datetime, lease_until: datetime, token: str, limit: int, kinds: Sequence[str] = (STANDARD,)
) -> Sequence[RowMapping]:
    """Claim up to ``limit`` due deliveries until ``lease_until`` and count the attempt.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so concurrent dispatchers take disjoint rows. SQLite: the
    caller's write transaction is ``BEGIN IMMEDIATE``, so claims are serialised anyway. A claimer that
    dies leaves its rows to be claimed again once the lease ends.
    """
    d = webhook_deliveries
    due = (
        select(d.c.id)
        .join(webhook_endpoints, webhook_endpoints.c.id == d.c.endpoint_id)
        .where(
            d.c.status == PENDING,
            d.c.next_attempt_at <= now,
            or_(d.c.claimed_until.is_(None), d.c.claimed_until <= now),
            webhook_endpoints.c.status == ACTIVE,
            webhook_endpoints.c.kind.in_(kinds),  # only the kinds this dispatcher can format and sign
        )
        .order_by(d.c.next_attempt_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True, of=d)
    ids = list(conn.execute(due).scalars())
    if not ids:
        return []
    conn.execute(
        update(d)
        .where(d.c.id.in_(ids))
        .values(claimed_until=lease_until, claim_token=token, attempts=d.c.attempts + 1, last_attempt_at=now)
    )
    query = (
        # The body still sealed: the dispatcher opens it per delivery, so one it cannot open waits alone.
        select(d.c.id, d.c.attempts, type_coerce(webhook_events.c.body, Text).label("body"), webhook_endpoints.c.url)
        .add_columns(webhook_endpoints.c.secret, webhook_endpoints.c.kind, d.c.event_id, webhook_events.c.order_id)
        .add_columns(webhook_events.c.type.label("event_type"), webhook_events.c.created_at.label("event_at"))
        .join_from(d, webhook_events, webhook_events.c.id == d.c.event_id)
        .join(webhook_endpoints, webhook_endpoints.c.id == d.c.endpoint_id)
        .where(d.c.id.in_(ids))
    )
    return conn.execute(query).mappings().all()


def record_outcome(conn: Connection, delivery_id: str, token: str, values: Mapping[str, Any]) -> bool:
    """Write an attempt's outcome if this claim still holds the row (False: the lease ran out and
    another dispatcher took it, or the delivery was deactivated)."""
    d = webhook_deliveries
    result = conn.execute(
        update(d)
        .where(d.c.id == delivery_id, d.c.claim_token == token, d.c.status == PENDING)
        .values(claimed_until=None, claim_token=None, **values)
    )
    return result.rowcount == 1


# ---------------------------------------------------------------- reading and replay
def delivery(conn: Connection, delivery_id: str) -> RowMapping | None:
    return conn.execute(_DELIVERY.where(webhook_deliveries.c.id == delivery_id)).mappings().first()


def deliveries(
    conn: Connection,
    *,
    endpoint_id: str | None,
    status: str | None,
    order_id: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[RowMapping]:
    """Newest first; ``after`` is the (created_at, id) of the previous page's last row."""
    d = webhook_deliveries
    query = _DELIVERY.order_by(d.c.created_at.desc(), d.c.id.desc()).limit(limit)
    if endpoint_id is not None:
        query = query.where(d.c.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(d.c.status == status)
    if order_id is not None:
        query = query.where(webhook_events.c.order_id == order_id)
    if after is not None:
        moment, last_id = after
        query = query.where(or_(d.c.created_at < moment, and_(d.c.created_at == moment, d.c.id < last_id)))
    return conn.execute(query).mappings().all()


def replay(conn: Connection, delivery_id: str, now: datetime) -> bool:
    """Send a delivery again soon, as a fresh series of attempts under the same delivery id."""
    d = webhook_deliveries
    result = conn.execute(
        update(d)
        .where(d.c.id == delivery_id)
        .values(
            status=PENDING, attempts=0, next_attempt_at=now, claimed_until=None, claim_token=None, delivered_at=None
        )
    )
    return result.rowcount == 1


def event_ids_of_order(conn: Connection, order_id: str) -> Sequence[RowMapping]:
    query = select(webhook_events.c.id, webhook_events.c.type).where(webhook_events.c.order_id == order_id)
    return conn.execute(query.order_by(webhook_events.c.created_at)).mappings().all()


def purge_finished(conn: Connection, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` events older than ``before`` whose deliveries are all finished (and those
    deliveries). Returns how many events."""
    d = webhook_deliveries
    unfinished = select(d.c.id).where(d.c.event_id == webhook_events.c.id, d.c.status == PENDING).exists()
    old = select(webhook_events.c.id).where(webhook_events.c.created_at < before, ~unfinished).limit(limit)
    ids = list(conn.execute(old).scalars())
    if ids:
        conn.execute(delete(d).where(d.c.event_id.in_(ids)))
        conn.execute(delete(webhook_events).where(webhook_events.c.id.in_(ids)))
    return len(ids)


# ---------------------------------------------------------------- metrics
_STATUS_COUNTS = (
    select(webhook_deliveries.c.status, func.count())
    .where(webhook_deliveries.c.created_at >= bindparam("since"))
    .group_by(webhook_deliveries.c.status)
)
_PENDING_NOW = select(func.count()).where(webhook_deliveries.c.status == PENDING)
_LATENCIES = (
    select(webhook_deliveries.c.created_at, webhook_deliveries.c.delivered_at)
    .where(webhook_deliveries.c.status == DELIVERED, webhook_deliveries.c.delivered_at >= bindparam("since"))
    .order_by(webhook_deliveries.c.delivered_at.desc())
    .limit(bindparam("limit"))
)


def status_counts(conn: Connection, since: datetime) -> dict[str, int]:
    """Deliveries created since ``since``, by their status now."""
    return {row[0]: int(row[1]) for row in conn.execute(_STATUS_COUNTS, {"since": since})}


def pending_count(conn: Connection) -> int:
    return int(conn.execute(_PENDING_NOW).scalar_one())


def delivery_latencies(conn: Connection, since: datetime, limit: int) -> list[float]:
    """Seconds from event to successful delivery, for deliveries that succeeded since ``since``."""
    rows = conn.execute(_LATENCIES, {"since": since, "limit": limit}).all()
    return [(delivered - created).total_seconds() for created, delivered in rows]
