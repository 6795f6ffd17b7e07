"""Audit log SQL: append an event in the caller's transaction; read pages newest first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, insert, select

from mcp_checkout.store.models import audit_events


def append(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(audit_events).values(**values))


def page(
    conn: Connection,
    *,
    action: str | None,
    actor: str | None,
    since: datetime | None,
    until: datetime | None,
    before_id: int | None,
    limit: int,
) -> Sequence[RowMapping]:
    """Events newest first; ``since`` inclusive, ``until`` exclusive; ``before_id`` continues a page."""
    query = select(audit_events)
    if action is not None:
        query = query.where(audit_events.c.action == action)
    if actor is not None:
        query = query.where(audit_events.c.actor == actor)
    if since is not None:
        query = query.where(audit_events.c.at >= since)
    if until is not None:
        query = query.where(audit_events.c.at < until)
    if before_id is not None:
        query = query.where(audit_events.c.id < before_id)
    return conn.execute(query.order_by(audit_events.c.id.desc()).limit(limit)).mappings().all()
