"""Idempotency-key SQL. Uniqueness of (principal, operation, key) is a database constraint; the protocol
itself lives in ``service/idempotency.py``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, RowMapping, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mcp_checkout.store.lean import Lean, bound_values
from mcp_checkout.store.models import idempotency_keys

_CLAIM_FIELDS = (
    "principal_id", "operation", "key", "fingerprint", "status", "resource_id", "claim_token", "locked_until",
    "created_at", "expires_at",
)  # fmt: skip


def _claim(dialect: str) -> Any:
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    return (
        insert(idempotency_keys)
        .values(bound_values(idempotency_keys, _CLAIM_FIELDS))
        .on_conflict_do_nothing(index_elements=["principal_id", "operation", "key"])
        .returning(idempotency_keys.c.id)
    )


_CLAIM = Lean(_claim, "claim idempotency key")  # the first statement of every keyed write: run on the driver


def try_insert(
    conn: Connection,
    *,
    principal_id: str,
    operation: str,
    key: str,
    fingerprint: str,
    status: str,
    resource_id: str | None,
    claim_token: str,
    locked_until: datetime,
    now: datetime,
    expires_at: datetime,
) -> int | None:
    """Insert the key's record and return its id; None if the key already exists (nothing written). On
    PostgreSQL this waits for a concurrent transaction that inserted the same key to finish."""
    params = {
        "principal_id": principal_id,
        "operation": operation,
        "key": key,
        "fingerprint": fingerprint,
        "status": status,
        "resource_id": resource_id,
        "claim_token": claim_token,
        "locked_until": locked_until,
        "created_at": now,
        "expires_at": expires_at,
    }
    row = _CLAIM.first(conn, params)
    return None if row is None else int(row[0])


def _scope(principal_id: str, operation: str, key: str) -> list[ColumnElement[bool]]:
    return [
        idempotency_keys.c.principal_id == principal_id,
        idempotency_keys.c.operation == operation,
        idempotency_keys.c.key == key,
    ]


def get(conn: Connection, principal_id: str, operation: str, key: str) -> RowMapping | None:
    return conn.execute(select(idempotency_keys).where(*_scope(principal_id, operation, key))).mappings().first()


def take_over(
    conn: Connection,
    record_id: int,
    old_token: str,
    new_token: str,
    locked_until: datetime,
    *,
    status: str,
    resource_id: str,
) -> bool:
    """Claim a stale in-progress record whose owner died; False if someone else did first."""
    result = conn.execute(
        update(idempotency_keys)
        .where(
            idempotency_keys.c.id == record_id,
            idempotency_keys.c.claim_token == old_token,
            idempotency_keys.c.status == "in_progress",
        )
        .values(claim_token=new_token, locked_until=locked_until, status=status, resource_id=resource_id)
    )
    return result.rowcount == 1


def complete(conn: Connection, record_id: int, resource_id: str) -> None:
    conn.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.id == record_id)
        .values(status="completed", resource_id=resource_id)
    )


def set_resource(conn: Connection, principal_id: str, operation: str, key: str, resource_id: str) -> None:
    conn.execute(update(idempotency_keys).where(*_scope(principal_id, operation, key)).values(resource_id=resource_id))


def end_lease(conn: Connection, record_id: int, claim_token: str, now: datetime) -> None:
    """A claimed attempt failed: let the next attempt take the record over at once."""
    conn.execute(
        update(idempotency_keys)
        .where(
            idempotency_keys.c.id == record_id,
            idempotency_keys.c.claim_token == claim_token,
            idempotency_keys.c.status == "in_progress",
        )
        .values(locked_until=now)
    )


def purge_expired(conn: Connection, now: datetime, limit: int = 5000) -> int:
    stale = select(idempotency_keys.c.id).where(idempotency_keys.c.expires_at < now).limit(limit)
    ids = list(conn.execute(stale).scalars().all())
    if not ids:
        return 0
    conn.execute(delete(idempotency_keys).where(idempotency_keys.c.id.in_(ids)))
    return len(ids)
