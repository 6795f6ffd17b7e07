"""Buyer data SQL: find a buyer's rows by keyed email hash, erase them, re-seal every sealed value.

Reads and writes here go through the sealed column types (store/sealing.py) except in :func:`reseal_batch`,
which works on the stored tokens themselves so that values already sealed with the newest key are left
alone (a rotation can stop anywhere and run again).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Text, column, or_, select, table, update

from mcp_checkout.store.models import carts, checkout_links, orders, webhook_events
from mcp_checkout.store.sealing import email_hashes, keyring_of

ERASED = "[erased]"  # the tombstone left where the buyer's details were
_BUYER_KEYS = frozenset({"email", "email_lock", "shipping_address", "billing_address", "phone"})


def open_orders_of(conn: Connection, email: str) -> list[str]:
    """Ids of the buyer's orders still waiting for payment (by order email or link email lock)."""
    hashes = email_hashes(conn, email)
    linked = select(checkout_links.c.order_id).where(checkout_links.c.email_hash.in_(hashes))
    query = select(orders.c.id).where(
        orders.c.status == "pending_payment", or_(orders.c.email_hash.in_(hashes), orders.c.id.in_(linked))
    )
    return list(conn.execute(query).scalars().all())


@dataclass(frozen=True)
class Erased:
    order_ids: list[str]
    links: int
    webhook_events: int


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (None if v is None else ERASED) if k in _BUYER_KEYS else _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def erase(conn: Connection, email: str, now: datetime) -> Erased:
    """Replace the buyer's personal data in orders, links and stored webhook bodies with tombstones; amounts,
    lines and statuses stay. Finds nothing the second time (the hashes are gone)."""
    hashes = email_hashes(conn, email)
    # Carts (open or ordered) that named this buyer: their details go entirely (a cart keeps no tombstone).
    conn.execute(
        update(carts).where(carts.c.email_hash.in_(hashes)).values(buyer=None, shipping_address=None, email_hash=None)
    )
    link_rows = conn.execute(
        select(checkout_links.c.id, checkout_links.c.order_id).where(checkout_links.c.email_hash.in_(hashes))
    ).all()
    order_ids = set(conn.execute(select(orders.c.id).where(orders.c.email_hash.in_(hashes))).scalars().all())
    order_ids |= {order_id for _, order_id in link_rows}
    if link_rows:
        conn.execute(
            update(checkout_links)
            .where(checkout_links.c.id.in_([link_id for link_id, _ in link_rows]))
            .values(email_lock=ERASED, email_hash=None, updated_at=now)  # still locked, to nobody
        )
    if not order_ids:
        return Erased([], len(link_rows), 0)
    conn.execute(
        update(orders)
        .where(orders.c.id.in_(sorted(order_ids)))
        .values(email=None, email_hash=None, shipping_address=None, buyer_erased_at=now)
    )
    # Links of these orders locked to the buyer under an earlier spelling are covered by the hash; any other
    # lock on the same order names the same buyer, so it goes too.
    conn.execute(
        update(checkout_links)
        .where(checkout_links.c.order_id.in_(sorted(order_ids)), checkout_links.c.email_lock.is_not(None))
        .values(email_lock=ERASED, email_hash=None)
    )
    scrubbed = 0
    events = select(webhook_events.c.id, webhook_events.c.body).where(webhook_events.c.order_id.in_(sorted(order_ids)))
    for event_id, body in conn.execute(events).all():
        clean = json.dumps(_scrub(json.loads(body)), separators=(",", ":"), ensure_ascii=False)
        if clean != body:
            conn.execute(update(webhook_events).where(webhook_events.c.id == event_id).values(body=clean))
            scrubbed += 1
    return Erased(sorted(order_ids), len(link_rows), scrubbed)


# ---------------------------------------------------------------- key rotation
@dataclass(frozen=True)
class SealedColumns:
    """A table's sealed columns, and the keyed email hash kept beside one of them."""

    table: str
    key: str
    columns: tuple[str, ...]
    email_column: str | None = None  # its hash lives in email_hash


SEALED: tuple[SealedColumns, ...] = (
    SealedColumns("orders", "id", ("email", "shipping_address", "buyer"), email_column="email"),
    SealedColumns("carts", "id", ("buyer", "shipping_address")),
    SealedColumns("checkout_links", "id", ("email_lock",), email_column="email_lock"),
    SealedColumns("webhook_events", "id", ("body",)),
    SealedColumns("webhook_endpoints", "id", ("secret",)),
    SealedColumns("signing_keys", "kid", ("private_key",)),
)


def reseal_batch(conn: Connection, where: SealedColumns, after: str | None, limit: int) -> tuple[int, str | None]:
    """Re-seal with the newest key the values of up to ``limit`` rows after key ``after`` that another key
    sealed (clear values too). Returns (rows changed, last key seen; None when the table is done)."""
    keyring = keyring_of(conn.dialect)
    names = [where.key, *where.columns] + (["email_hash"] if where.email_column else [])
    raw = table(where.table, *(column(name, Text) for name in names))
    query = select(*(raw.c[name] for name in [where.key, *where.columns])).order_by(raw.c[where.key]).limit(limit)
    if after is not None:
        query = query.where(raw.c[where.key] > after)
    rows = conn.execute(query).all()
    changed = 0
    for row in rows:
        values: dict[str, Any] = {}
        for name, stored in zip(where.columns, row[1:], strict=True):
            if stored is None or keyring.is_current(stored):
                continue
            clear = keyring.open(stored)
            values[name] = keyring.seal(clear)
            if name == where.email_column and clear != ERASED:
                values["email_hash"] = keyring.email_hash(clear)
        if values:
            conn.execute(update(raw).where(raw.c[where.key] == row[0]).values(**values))
            changed += 1
    return changed, (rows[-1][0] if len(rows) == limit else None)


def sealed_tables() -> Sequence[SealedColumns]:
    return SEALED
