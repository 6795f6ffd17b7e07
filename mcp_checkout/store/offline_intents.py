"""The offline gateway's PaymentIntents, kept in the database so they survive restarts.

:class:`OfflineIntentRepository` is the store's side of the gateway's ``OfflineIntentStore`` port.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from mcp_checkout.store.db import Database, dialect_insert
from mcp_checkout.store.models import offline_intents


def _get(conn: Connection, intent_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(offline_intents).where(offline_intents.c.id == intent_id)).mappings().first()
    return None if row is None else dict(row)


def _create_once(conn: Connection, values: Mapping[str, Any]) -> dict[str, Any]:
    conn.execute(
        dialect_insert(conn, offline_intents)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    query = select(offline_intents).where(offline_intents.c.idempotency_key == values["idempotency_key"])
    return dict(conn.execute(query).mappings().one())


class OfflineIntentRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_once(self, values: Mapping[str, Any]) -> Mapping[str, Any]:
        return await self._db.write(lambda conn: _create_once(conn, values))

    async def get(self, intent_id: str) -> Mapping[str, Any] | None:
        return await self._db.read(lambda conn: _get(conn, intent_id))

    async def change(
        self,
        intent_id: str,
        now: datetime,
        decide: Callable[[Mapping[str, Any]], Mapping[str, Any] | None],
    ) -> Mapping[str, Any] | None:
        def run(conn: Connection) -> dict[str, Any] | None:
            row = _get(conn, intent_id)
            if row is None:
                return None
            values = decide(row)
            if values is None:
                return row
            conn.execute(
                update(offline_intents).where(offline_intents.c.id == intent_id).values(updated_at=now, **values)
            )
            return _get(conn, intent_id)

        return await self._db.write(run)
