"""Idempotency-key SQL. Uniqueness of (principal, operation, key) is a database constraint."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, RowMapping, delete, select, update

from mcp_checkout.store.db import dialect_insert
from mcp_checkout.store.models import idempotency_keys


def try_insert_claim(
    conn: Connection,
    *,
    principal_id: str,
    operation: str,
    key: str,
    fingerprint: str,
    claim_token: str,
    locked_until: datetime,
    now: datetime,
    expires_at: datetime,
) -> bool:
    """Insert an in-progress record; False if the key already exists (nothing written)."""
    statement = (
        dialect_insert(conn, idempotency_keys)
        .values(
            principal_id=principal_id,
            operation=operation,
            key=key,
            fingerprint=fingerprint,
            status="in_progress",
            claim_token=claim_token,
            locked_until=locked_until,
            created_at=now,
            expires_at=expires_at,
        )
        .on_conflict_do_nothing(index_elements=["principal_id", "operation", "key"])
    )
    return conn.execute(statement).rowcount == 1


def get(conn: Connection, principal_id: str, operation: str, key: str) -> RowMapping | None:
    query = select(idempotency_keys).where(
        idempotency_keys.c.principal_id == principal_id,
        idempotency_keys.c.operation == operation,
        idempotency_keys.c.key == key,
    )
    return conn.execute(query).mappings().first()


def take_over(conn: Connection, record_id: int, old_token: str, new_token: str, locked_until: datetime) -> bool:
    """Claim a stale in-progress record whose owner died; False if someone else did first."""
    result = conn.execute(
        update(idempotency_keys)
        .where(
            idempotency_keys.c.id == record_id,
            idempotency_keys.c.claim_token == old_token,
            idempotency_keys.c.status == "in_progress",
        )
        .values(claim_token=new_token, locked_until=locked_until)
    )
    return result.rowcount == 1


def complete(conn: Connection, record_id: int, claim_token: str, resource_id: str) -> bool:
    result = conn.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.id == record_id, idempotency_keys.c.claim_token == claim_token)
        .values(status="completed", resource_id=resource_id)
    )
    return result.rowcount == 1


def release(conn: Connection, record_id: int, claim_token: str) -> None:
    """Forget a claim whose attempt failed, so the same key can be retried."""
    conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.id == record_id,
            idempotency_keys.c.claim_token == claim_token,
            idempotency_keys.c.status == "in_progress",
        )
    )


def purge_expired(conn: Connection, now: datetime, limit: int = 5000) -> int:
    stale = select(idempotency_keys.c.id).where(idempotency_keys.c.expires_at < now).limit(limit)
    ids = list(conn.execute(stale).scalars().all())
    if not ids:
        return 0
    conn.execute(delete(idempotency_keys).where(idempotency_keys.c.id.in_(ids)))
    return len(ids)
