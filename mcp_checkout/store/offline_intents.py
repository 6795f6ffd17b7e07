"""The offline gateway's PaymentIntents, kept in the database so they survive restarts.

:class:`OfflineIntentRepository` is the store's side of the gateway's ``OfflineIntentStore`` port.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from mcp_checkout.store.db import Database, insert_or_ignore
from mcp_checkout.store.models import offline_intents

_GET = select(offline_intents).where(offline_intents.c.id == bindparam("intent_id"))
_BY_KEY = select(offline_intents).where(offline_intents.c.idempotency_key == bindparam("idempotency_key"))
_UPDATE = update(offline_intents).where(offline_intents.c.id == bindparam("b_id"))  # sets the columns it is given


def _get(conn: Connection, intent_id: str) -> dict[str, Any] | None:
    row = conn.execute(_GET, {"intent_id": intent_id}).mappings().first()
    return None if row is None else dict(row)


_COLUMNS = frozenset(column.name for column in offline_intents.c)


def create_once_in(conn: Connection, values: Mapping[str, Any]) -> dict[str, Any]:
    """:meth:`OfflineIntentRepository.create_once` in the caller's transaction (on the repository's database):
    once inserted, ``values`` themselves when they give every column (the row is what was sent; no read back),
    else the row as stored (or the one already made with this key)."""
    inserted = conn.execute(insert_or_ignore(conn, offline_intents, ("idempotency_key",)), dict(values)).rowcount
    if inserted == 1 and values.keys() >= _COLUMNS:
        return dict(values)
    return dict(conn.execute(_BY_KEY, {"idempotency_key": values["idempotency_key"]}).mappings().one())


def get_in(conn: Connection, intent_id: str) -> dict[str, Any] | None:
    """:meth:`OfflineIntentRepository.get` in the caller's transaction (on the repository's database)."""
    return _get(conn, intent_id)


class OfflineIntentRepository:
    def __init__(self, db: Database) -> None:
        self.db = db  # a transaction on this database can also make and read intents (create_once_in, get_in)

    async def create_once(self, values: Mapping[str, Any]) -> Mapping[str, Any]:
        return await self.db.write(lambda conn: create_once_in(conn, values))

    async def get(self, intent_id: str) -> Mapping[str, Any] | None:
        return await self.db.read(
            lambda conn: _get(conn, intent_id), quick=True, one_statement=True
        )  # one indexed look-up

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
            conn.execute(_UPDATE, {**values, "updated_at": now, "b_id": intent_id})
            return _get(conn, intent_id)

        return await self.db.write(run)
