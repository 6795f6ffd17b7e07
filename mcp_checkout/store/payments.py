"""Payment, refund, gateway-event and order-issue SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, func, insert, select, update

from mcp_checkout.store.db import dialect_insert, insert_or_ignore
from mcp_checkout.store.models import gateway_events, order_issues, payments, refunds

CLOSED_PAYMENT_STATES = ("canceled", "failed_final")


_LATEST_PAYMENT = (
    select(payments).where(payments.c.order_id == bindparam("order_id")).order_by(payments.c.attempt.desc()).limit(1)
)
_LATEST_PAYMENT_FOR_UPDATE = _LATEST_PAYMENT.with_for_update()
_ISSUES = select(order_issues).where(order_issues.c.order_id == bindparam("order_id")).order_by(order_issues.c.id)
_BY_INTENT = select(payments).where(payments.c.intent_id == bindparam("intent_id"))
_BY_INTENT_FOR_UPDATE = _BY_INTENT.with_for_update()
_BY_ATTEMPT = select(payments).where(
    payments.c.order_id == bindparam("order_id"), payments.c.attempt == bindparam("attempt")
)
_UPDATE_PAYMENT = update(payments).where(payments.c.id == bindparam("b_id"))  # sets the columns it is given
_EVENT_SEEN = select(gateway_events.c.event_id).where(gateway_events.c.event_id == bindparam("event_id"))


def latest_payment(conn: Connection, order_id: str, *, for_update: bool = False) -> RowMapping | None:
    query = _LATEST_PAYMENT_FOR_UPDATE if for_update else _LATEST_PAYMENT
    return conn.execute(query, {"order_id": order_id}).mappings().first()


def payment_by_intent(conn: Connection, intent_id: str, *, for_update: bool = False) -> RowMapping | None:
    query = _BY_INTENT_FOR_UPDATE if for_update else _BY_INTENT
    return conn.execute(query, {"intent_id": intent_id}).mappings().first()


def payment_by_attempt(conn: Connection, order_id: str, attempt: int) -> RowMapping | None:
    return conn.execute(_BY_ATTEMPT, {"order_id": order_id, "attempt": attempt}).mappings().first()


def try_insert_payment(conn: Connection, values: Mapping[str, Any]) -> bool:
    """Insert attempt N for an order; False if another caller inserted it first."""
    statement = insert_or_ignore(conn, payments, ("order_id", "attempt"))
    return conn.execute(statement, dict(values)).rowcount == 1


_INSERTS_RETURNING: dict[str, Any] = {}


def insert_payment(conn: Connection, values: Mapping[str, Any]) -> RowMapping | None:
    """Insert attempt N for an order and return its row as stored; None if another caller inserted it first."""
    statement = _INSERTS_RETURNING.get(conn.dialect.name)
    if statement is None:  # built once per backend
        statement = dialect_insert(conn, payments).on_conflict_do_nothing(index_elements=["order_id", "attempt"])
        statement = _INSERTS_RETURNING[conn.dialect.name] = statement.returning(*payments.c)
    return conn.execute(statement, dict(values)).mappings().first()


def update_payment(conn: Connection, payment_id: int, now: datetime, **values: Any) -> None:
    conn.execute(_UPDATE_PAYMENT, {**values, "updated_at": now, "b_id": payment_id})


def add_refund(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(refunds).values(**values))


def refunds_of_order(conn: Connection, order_id: str) -> Sequence[RowMapping]:
    query = select(refunds).where(refunds.c.order_id == order_id).order_by(refunds.c.created_at)
    return conn.execute(query).mappings().all()


def refund_by_id(conn: Connection, refund_id: str) -> RowMapping | None:
    return conn.execute(select(refunds).where(refunds.c.id == refund_id)).mappings().first()


def refunded_total(conn: Connection, payment_id: int) -> int:
    query = select(func.coalesce(func.sum(refunds.c.amount_minor), 0)).where(
        refunds.c.payment_id == payment_id, refunds.c.status != "failed"
    )
    return int(conn.execute(query).scalar_one())


def record_event_once(
    conn: Connection, event_id: str, kind: str, intent_id: str | None, outcome: str, now: datetime
) -> bool:
    """Remember a gateway event id; False if it was already processed (a redelivery)."""
    values = {"event_id": event_id, "type": kind, "intent_id": intent_id, "outcome": outcome[:200], "received_at": now}
    return conn.execute(insert_or_ignore(conn, gateway_events, ("event_id",)), values).rowcount == 1


def add_issue(conn: Connection, order_id: str, code: str, message: str, now: datetime) -> None:
    conn.execute(insert(order_issues).values(order_id=order_id, code=code, message=message[:500], at=now))


def issues_of_order(conn: Connection, order_id: str) -> Sequence[RowMapping]:
    return conn.execute(_ISSUES, {"order_id": order_id}).mappings().all()


def set_refund_status(conn: Connection, refund_id: str, status: str, gateway_refund_id: str | None) -> None:
    values: dict[str, Any] = {"status": status}
    if gateway_refund_id is not None:
        values["gateway_refund_id"] = gateway_refund_id
    conn.execute(update(refunds).where(refunds.c.id == refund_id).values(**values))


def event_seen(conn: Connection, event_id: str) -> bool:
    return conn.execute(_EVENT_SEEN, {"event_id": event_id}).first() is not None
