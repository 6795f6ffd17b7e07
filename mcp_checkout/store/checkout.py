"""Checkout link and session SQL. Tokens are never stored: only their SHA-256."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, Table, bindparam, insert, select, update

from mcp_checkout.store.models import checkout_links, checkout_sessions, orders, payments
from mcp_checkout.store.order_rows import LATEST_PAYMENT_ID
from mcp_checkout.store.sealing import email_hash
from mcp_checkout.store.store_profile import CONFIG_STAMP


def insert_link(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(checkout_links).values({**values, "email_hash": email_hash(conn, values.get("email_lock"))}))


# The statements of the page and webhook paths are built once: building a Core statement (and its cache
# key) on every call costs more than running it. Values come as parameters; an UPDATE without .values()
# sets the columns named in its parameters.
_LINK_BY_HASH = select(checkout_links).where(checkout_links.c.token_hash == bindparam("token_hash"))
_LINK_BY_HASH_FOR_UPDATE = _LINK_BY_HASH.with_for_update()
_LINK_BY_ID = select(checkout_links).where(checkout_links.c.id == bindparam("link_id"))
_LINK_BY_ID_FOR_UPDATE = _LINK_BY_ID.with_for_update()
_SET_LINK_STATUS = update(checkout_links).where(
    checkout_links.c.id == bindparam("b_id"), checkout_links.c.status.in_(bindparam("b_expected", expanding=True))
)
_SET_LINK_STATUS_FROM_ONE = update(checkout_links).where(  # one expected status: no expanding IN to render per call
    checkout_links.c.id == bindparam("b_id"), checkout_links.c.status == bindparam("b_expected")
)
_SET_LINKS_OF_ORDER = update(checkout_links).where(
    checkout_links.c.order_id == bindparam("b_order_id"),
    checkout_links.c.status.in_(bindparam("b_expected", expanding=True)),
)
_INSERT_SESSION = insert(checkout_sessions).returning(*checkout_sessions.c)
_SET_SESSIONS_OF_ORDER = update(checkout_sessions).where(
    checkout_sessions.c.order_id == bindparam("b_order_id"),
    checkout_sessions.c.status.in_(bindparam("b_expected", expanding=True)),
)


def link_by_hash(conn: Connection, token_hash: str, *, for_update: bool = False) -> RowMapping | None:
    query = _LINK_BY_HASH_FOR_UPDATE if for_update else _LINK_BY_HASH
    return conn.execute(query, {"token_hash": token_hash}).mappings().first()


def link_by_id(conn: Connection, link_id: str, *, for_update: bool = False) -> RowMapping | None:
    query = _LINK_BY_ID_FOR_UPDATE if for_update else _LINK_BY_ID
    return conn.execute(query, {"link_id": link_id}).mappings().first()


_LINKS_OF_ORDER = (
    select(checkout_links)
    .where(checkout_links.c.order_id == bindparam("order_id"))
    .order_by(checkout_links.c.created_at.desc(), checkout_links.c.id)
)
_SESSION_OF_LINK = select(checkout_sessions).where(checkout_sessions.c.link_id == bindparam("link_id"))


def links_of_order(conn: Connection, order_id: str) -> Sequence[RowMapping]:
    return conn.execute(_LINKS_OF_ORDER, {"order_id": order_id}).mappings().all()


_LIVE = ("active", "in_session")  # the partial unique index allows one such link per order


def live_link_of_order(conn: Connection, order_id: str) -> RowMapping | None:
    """The order's one link in a live state, if any (it may be past its expiry time)."""
    query = select(checkout_links).where(checkout_links.c.order_id == order_id, checkout_links.c.status.in_(_LIVE))
    return conn.execute(query).mappings().first()


def email_lock_of_order(conn: Connection, order_id: str) -> str | None:
    """The email lock of the order's newest link that had one: it carries over to the order's next links."""
    query = (
        select(checkout_links.c.email_lock)
        .where(checkout_links.c.order_id == order_id, checkout_links.c.email_lock.is_not(None))
        .order_by(checkout_links.c.created_at.desc(), checkout_links.c.id.desc())
        .limit(1)
    )
    return conn.execute(query).scalar_one_or_none()


def set_link_status(
    conn: Connection, link_id: str, expected: Sequence[str], target: str, now: datetime, **extra: Any
) -> bool:
    """Conditional status change: only one caller can move a link out of ``expected``."""
    if len(expected) == 1:
        values = {**extra, "status": target, "updated_at": now, "b_id": link_id, "b_expected": expected[0]}
        return conn.execute(_SET_LINK_STATUS_FROM_ONE, values).rowcount == 1
    values = {**extra, "status": target, "updated_at": now, "b_id": link_id, "b_expected": list(expected)}
    return conn.execute(_SET_LINK_STATUS, values).rowcount == 1


def set_links_of_order(conn: Connection, order_id: str, expected: Sequence[str], target: str, now: datetime) -> None:
    values = {"status": target, "updated_at": now, "b_order_id": order_id, "b_expected": list(expected)}
    conn.execute(_SET_LINKS_OF_ORDER, values)


def insert_session(conn: Connection, session_id: str, link_id: str, order_id: str, now: datetime) -> RowMapping:
    """Insert a link's session; returns its row as stored (read back by the INSERT itself)."""
    values = {"id": session_id, "link_id": link_id, "order_id": order_id, "status": "open"}
    return conn.execute(_INSERT_SESSION, {**values, "created_at": now, "updated_at": now}).mappings().one()


def session_of_link(conn: Connection, link_id: str) -> RowMapping | None:
    return conn.execute(_SESSION_OF_LINK, {"link_id": link_id}).mappings().first()


def session_by_id(conn: Connection, session_id: str) -> RowMapping | None:
    query = select(checkout_sessions).where(checkout_sessions.c.id == session_id)
    return conn.execute(query).mappings().first()


def move_session(conn: Connection, from_link: str, to_link: str, now: datetime) -> None:
    conn.execute(
        update(checkout_sessions)
        .where(checkout_sessions.c.link_id == from_link)
        .values(link_id=to_link, updated_at=now)
    )


def set_sessions_of_order(conn: Connection, order_id: str, expected: Sequence[str], target: str, now: datetime) -> None:
    values = {"status": target, "updated_at": now, "b_order_id": order_id, "b_expected": list(expected)}
    conn.execute(_SET_SESSIONS_OF_ORDER, values)


def mark_email_verified(conn: Connection, session_id: str, now: datetime) -> None:
    conn.execute(
        update(checkout_sessions)
        .where(checkout_sessions.c.id == session_id)
        .values(email_verified_at=now, updated_at=now)
    )


@dataclass(frozen=True, slots=True)
class LockedVisit:
    """What :func:`visit_for_update` read: a link, its order (both locked), the store configuration's stamp
    (store_profile.CONFIG_STAMP) and, when ``current``, the link's session and the order's latest payment
    attempt as they are now. ``current`` is False on PostgreSQL: there the statement's snapshot may predate
    the row locks it waited for, so those two must be read again (after the locks) by the caller."""

    link: Mapping[Any, Any]
    order: Mapping[Any, Any]
    config_stamp: int | None
    current: bool
    session: Mapping[Any, Any] | None = None
    payment: Mapping[Any, Any] | None = None


_LINK_AND_ORDER = checkout_links.join(orders, orders.c.id == checkout_links.c.order_id)
_VISIT_TABLES: tuple[Table, ...] = (checkout_links, orders, checkout_sessions, payments)
# SQLite: the link, its order, the link's session, the order's latest payment attempt and the stamp.
_VISIT = (
    select(*(column for table in _VISIT_TABLES for column in table.c), CONFIG_STAMP)
    .select_from(
        _LINK_AND_ORDER.outerjoin(checkout_sessions, checkout_sessions.c.link_id == checkout_links.c.id).outerjoin(
            payments, payments.c.id == LATEST_PAYMENT_ID
        )
    )
    .where(checkout_links.c.token_hash == bindparam("token_hash"))
)
# PostgreSQL: the link and its order, row-locked, and the stamp.
_VISIT_LOCKED = (
    select(*checkout_links.c, *orders.c, CONFIG_STAMP)
    .select_from(_LINK_AND_ORDER)
    .where(checkout_links.c.token_hash == bindparam("token_hash"))
    .with_for_update(of=[checkout_links, orders])
)
# Where each table's columns sit in a row, and their names.
_VISIT_SLICES: list[tuple[slice, tuple[str, ...]]] = []
_start = 0
for _table in _VISIT_TABLES:
    _VISIT_SLICES.append((slice(_start, _start + len(_table.c)), tuple(column.name for column in _table.c)))
    _start += len(_table.c)


def _fields(row: Any, at: int) -> dict[str, Any]:
    where, names = _VISIT_SLICES[at]
    return dict(zip(names, row[where], strict=True))


def visit_for_update(conn: Connection, token_hash: str) -> LockedVisit | None:
    """In a write transaction: the link with this token hash and its order, locked, and the configuration
    stamp, in ONE statement; on SQLite also the link's session and the order's latest payment attempt (the
    transaction holds the database's write lock since its BEGIN IMMEDIATE, so they are current). None if
    there is no such link."""
    sqlite = conn.dialect.name == "sqlite"
    row = conn.execute(_VISIT if sqlite else _VISIT_LOCKED, {"token_hash": token_hash}).first()
    if row is None:
        return None
    stamp = row[-1]
    link, order, config_stamp = _fields(row, 0), _fields(row, 1), None if stamp is None else int(stamp)
    if not sqlite:
        return LockedVisit(link, order, config_stamp, current=False)
    session, payment = _fields(row, 2), _fields(row, 3)
    return LockedVisit(
        link,
        order,
        config_stamp,
        current=True,
        session=session if session["id"] is not None else None,
        payment=payment if payment["id"] is not None else None,
    )
