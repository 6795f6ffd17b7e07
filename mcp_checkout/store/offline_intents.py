"""The offline gateway's PaymentIntents, kept in the database so they survive restarts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, select, update

from mcp_checkout.store.db import dialect_insert
from mcp_checkout.store.models import offline_intents


def create_once(conn: Connection, values: Mapping[str, Any]) -> RowMapping:
    """Insert an intent unless one exists for the idempotency key; return the stored one."""
    conn.execute(
        dialect_insert(conn, offline_intents)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    query = select(offline_intents).where(offline_intents.c.idempotency_key == values["idempotency_key"])
    return conn.execute(query).mappings().one()


def get(conn: Connection, intent_id: str) -> RowMapping | None:
    return conn.execute(select(offline_intents).where(offline_intents.c.id == intent_id)).mappings().first()


def set_state(conn: Connection, intent_id: str, now: datetime, **values: Any) -> None:
    conn.execute(update(offline_intents).where(offline_intents.c.id == intent_id).values(updated_at=now, **values))
