"""OAuth SQL: clients, pending consents, authorization codes, tokens and one-time approval codes.

Codes and tokens are looked up by their SHA-256 only; consuming one is a conditional UPDATE, so two
processes racing on the same code or refresh token cannot both win.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, func, insert, select, update

from mcp_checkout.store.oauth_tables import (
    oauth_approval_codes,
    oauth_clients,
    oauth_codes,
    oauth_consents,
    oauth_tokens,
)


def insert_client(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(oauth_clients).values(**values))


def get_client(conn: Connection, client_id: str) -> RowMapping | None:
    return conn.execute(select(oauth_clients).where(oauth_clients.c.client_id == client_id)).mappings().first()


def list_clients(conn: Connection) -> Sequence[RowMapping]:
    query = select(oauth_clients).order_by(oauth_clients.c.created_at, oauth_clients.c.client_id)
    return conn.execute(query).mappings().all()


def count_clients_since(conn: Connection, since: datetime) -> int:
    query = select(func.count()).select_from(oauth_clients).where(oauth_clients.c.created_at >= since)
    return int(conn.execute(query).scalar_one())


def revoke_client(conn: Connection, client_id: str, now: datetime) -> bool:
    done = conn.execute(
        update(oauth_clients)
        .where(oauth_clients.c.client_id == client_id, oauth_clients.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    conn.execute(
        update(oauth_tokens)
        .where(oauth_tokens.c.client_id == client_id, oauth_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return done.rowcount == 1


def insert_consent(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(oauth_consents).values(**values))


def get_consent(conn: Connection, request_hash: str) -> RowMapping | None:
    query = select(oauth_consents).where(oauth_consents.c.request_hash == request_hash)
    return conn.execute(query).mappings().first()


def use_consent(conn: Connection, request_hash: str, now: datetime) -> bool:
    """Mark a pending consent answered; False when it was already answered or has expired."""
    done = conn.execute(
        update(oauth_consents)
        .where(
            oauth_consents.c.request_hash == request_hash,
            oauth_consents.c.used_at.is_(None),
            oauth_consents.c.expires_at > now,
        )
        .values(used_at=now)
    )
    return done.rowcount == 1


def insert_code(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(oauth_codes).values(**values))


def get_code(conn: Connection, code_hash: str) -> RowMapping | None:
    return conn.execute(select(oauth_codes).where(oauth_codes.c.code_hash == code_hash)).mappings().first()


def use_code(conn: Connection, code_hash: str, now: datetime) -> bool:
    done = conn.execute(
        update(oauth_codes)
        .where(oauth_codes.c.code_hash == code_hash, oauth_codes.c.used_at.is_(None), oauth_codes.c.expires_at > now)
        .values(used_at=now)
    )
    return done.rowcount == 1


def insert_tokens(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    conn.execute(insert(oauth_tokens), [dict(row) for row in rows])


def get_token(conn: Connection, token_hash: str) -> RowMapping | None:
    return conn.execute(select(oauth_tokens).where(oauth_tokens.c.token_hash == token_hash)).mappings().first()


def rotate_refresh(conn: Connection, token_hash: str, now: datetime) -> bool:
    """Retire a live refresh token as it is exchanged; False when it was exchanged or revoked already."""
    done = conn.execute(
        update(oauth_tokens)
        .where(
            oauth_tokens.c.token_hash == token_hash,
            oauth_tokens.c.kind == "refresh",
            oauth_tokens.c.rotated_at.is_(None),
            oauth_tokens.c.revoked_at.is_(None),
        )
        .values(rotated_at=now)
    )
    return done.rowcount == 1


def revoke_family(conn: Connection, family_id: str, now: datetime) -> int:
    done = conn.execute(
        update(oauth_tokens)
        .where(oauth_tokens.c.family_id == family_id, oauth_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(done.rowcount)


def insert_approval_code(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(oauth_approval_codes).values(**values))


def use_approval_code(conn: Connection, code_hash: str, now: datetime) -> bool:
    done = conn.execute(
        update(oauth_approval_codes)
        .where(
            oauth_approval_codes.c.code_hash == code_hash,
            oauth_approval_codes.c.used_at.is_(None),
            oauth_approval_codes.c.expires_at > now,
        )
        .values(used_at=now)
    )
    return done.rowcount == 1


def purge_expired(conn: Connection, now: datetime) -> None:
    """Forget consents, codes and approval codes past their time, and tokens that can no longer be used."""
    conn.execute(delete(oauth_consents).where(oauth_consents.c.expires_at < now))
    conn.execute(delete(oauth_codes).where(oauth_codes.c.expires_at < now))
    conn.execute(delete(oauth_approval_codes).where(oauth_approval_codes.c.expires_at < now))
    conn.execute(delete(oauth_tokens).where(oauth_tokens.c.expires_at < now))
