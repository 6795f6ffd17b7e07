"""The business's message-signing keys: SQL only (the private key column is sealed by its type)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, func, select, update

from mcp_checkout.store.db import insert_or_ignore
from mcp_checkout.store.models import signing_keys

ACTIVE, RETIRED = "active", "retired"
_PUBLIC = [column for column in signing_keys.c if column.name != "private_key"]


def active(conn: Connection) -> Sequence[RowMapping]:
    """The active keys without their private halves, newest first."""
    query = select(*_PUBLIC).where(signing_keys.c.status == ACTIVE).order_by(signing_keys.c.generation.desc())
    return conn.execute(query).mappings().all()


def every(conn: Connection) -> Sequence[RowMapping]:
    return conn.execute(select(*_PUBLIC).order_by(signing_keys.c.generation.desc())).mappings().all()


def newest_private(conn: Connection) -> RowMapping | None:
    """The newest active key with its private half (the one that signs)."""
    query = (
        select(signing_keys.c.kid, signing_keys.c.private_key)
        .where(signing_keys.c.status == ACTIVE)
        .order_by(signing_keys.c.generation.desc())
        .limit(1)
    )
    return conn.execute(query).mappings().first()


def next_generation(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(signing_keys.c.generation), 0))).scalar_one()) + 1


def insert_key(conn: Connection, values: Mapping[str, Any]) -> bool:
    """Add a key as generation ``values["generation"]``; False if another process took that generation."""
    return bool(conn.execute(insert_or_ignore(conn, signing_keys, ("generation",)), dict(values)).rowcount)


def retire(conn: Connection, kid: str, now: datetime) -> int:
    result = conn.execute(
        update(signing_keys)
        .where(signing_keys.c.kid == kid, signing_keys.c.status == ACTIVE)
        .values(status=RETIRED, retired_at=now)
    )
    return result.rowcount
