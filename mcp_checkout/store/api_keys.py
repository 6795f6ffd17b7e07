"""API-key and rate-limit SQL. Only a SHA-256 of each key's secret is stored."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, insert, select, update

from mcp_checkout.store.db import dialect_insert
from mcp_checkout.store.models import api_keys, rate_limit_windows


def insert_key(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(api_keys).values(**values))


def get_key(conn: Connection, key_id: str) -> RowMapping | None:
    return conn.execute(select(api_keys).where(api_keys.c.id == key_id)).mappings().first()


def list_keys(conn: Connection) -> Sequence[RowMapping]:
    return conn.execute(select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)).mappings().all()


def count_usable(conn: Connection, now: datetime) -> int:
    query = select(api_keys.c.id).where(
        api_keys.c.revoked_at.is_(None), (api_keys.c.expires_at.is_(None)) | (api_keys.c.expires_at > now)
    )
    return len(conn.execute(query).all())


def revoke(conn: Connection, key_id: str, now: datetime) -> bool:
    result = conn.execute(
        update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return result.rowcount == 1


def touch(conn: Connection, key_id: str, now: datetime) -> None:
    conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now))


def count_call(conn: Connection, key_id: str, window_start: int, calls: int = 1) -> int:
    """Count ``calls`` calls in a key's window and return the window's total (shared by every process)."""
    inserting = dialect_insert(conn, rate_limit_windows).values(key_id=key_id, window_start=window_start, calls=calls)
    upsert = inserting.on_conflict_do_update(
        index_elements=["key_id", "window_start"], set_={"calls": rate_limit_windows.c.calls + calls}
    ).returning(rate_limit_windows.c.calls)
    return int(conn.execute(upsert).scalar_one())


def purge_windows(conn: Connection, before: int) -> None:
    conn.execute(delete(rate_limit_windows).where(rate_limit_windows.c.window_start < before))
