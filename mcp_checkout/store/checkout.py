"""Checkout link and session SQL. Tokens are never stored: only their SHA-256."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, insert, select, update

from mcp_checkout.store.models import checkout_links, checkout_sessions
from mcp_checkout.store.sealing import email_hash


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
_SET_LINKS_OF_ORDER = update(checkout_links).where(
    checkout_links.c.order_id == bindparam("b_order_id"),
    checkout_links.c.status.in_(bindparam("b_expected", expanding=True)),
)
_INSERT_SESSION = insert(checkout_sessions)
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
    values = {**extra, "status": target, "updated_at": now, "b_id": link_id, "b_expected": list(expected)}
    return conn.execute(_SET_LINK_STATUS, values).rowcount == 1


def set_links_of_order(conn: Connection, order_id: str, expected: Sequence[str], target: str, now: datetime) -> None:
    values = {"status": target, "updated_at": now, "b_order_id": order_id, "b_expected": list(expected)}
    conn.execute(_SET_LINKS_OF_ORDER, values)


def insert_session(conn: Connection, session_id: str, link_id: str, order_id: str, now: datetime) -> None:
    values = {"id": session_id, "link_id": link_id, "order_id": order_id, "status": "open"}
    conn.execute(_INSERT_SESSION, {**values, "created_at": now, "updated_at": now})


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
