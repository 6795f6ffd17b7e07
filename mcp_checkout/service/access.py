"""API keys and per-key rate limits for remote callers.

A key reads ``mcpk_<mode>_<id>_<secret>``. The id finds the row; only SHA-256(secret) is stored, and
it is compared in constant time. Scopes: ``buyer`` (catalog, carts, orders, checkout) and ``merchant``
(everything). A server with no usable key refuses every remote call: there is no open mode.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import Connection, RowMapping

from mcp_checkout.domain import Clock, Principal, PrincipalKind
from mcp_checkout.errors import InvalidInput, NotFound, RateLimited
from mcp_checkout.service import audit
from mcp_checkout.store import api_keys as key_store
from mcp_checkout.store.db import Database

KEY_PATTERN = re.compile(r"^mcpk_(live|test)_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_TOUCH_EVERY = timedelta(minutes=1)
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


class KeyInfo(BaseModel):
    key_id: str
    name: str
    scope: PrincipalKind
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    status: Literal["active", "expired", "revoked"]


class CreatedKey(BaseModel):
    key: str
    info: KeyInfo


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_FLUSH_EVERY_SECONDS = 0.25


class _Window:
    """One key's calls in one minute as this process sees them: the shared total it last read back
    from the database, plus its own calls not written there yet."""

    __slots__ = ("flushed_at", "known_total", "unflushed")

    def __init__(self) -> None:
        self.known_total = 0
        self.unflushed = 0
        self.flushed_at = 0.0


class AccessService:
    def __init__(self, db: Database, clock: Clock, *, key_mode: Literal["live", "test"], per_minute: int) -> None:
        self._db = db
        self._clock = clock
        self._mode = key_mode
        self._per_minute = per_minute
        self._local_windows: dict[tuple[str, int], int] = defaultdict(int)
        self._shared_windows: dict[tuple[str, int], _Window] = {}
        # A process may run ahead of the shared count by this many calls (1% of the limit, at most 100)
        # and by at most _FLUSH_EVERY_SECONDS: one database write per batch, not one per call, because
        # every process writing the same counter row on every call serialises them all on its row lock.
        self._slack = max(1, min(per_minute // 100, 100))

    def _info(self, row: RowMapping | None) -> KeyInfo:
        assert row is not None
        now = self._clock()
        status: Literal["active", "expired", "revoked"] = "active"
        if row["revoked_at"] is not None:
            status = "revoked"
        elif row["expires_at"] is not None and row["expires_at"] <= now:
            status = "expired"
        return KeyInfo(
            key_id=row["id"],
            name=row["name"],
            scope=row["scope"],
            prefix=f"mcpk_{self._mode}_{row['id']}",
            created_at=row["created_at"],
            last_used_at=row["last_used_at"],
            expires_at=row["expires_at"],
            revoked_at=row["revoked_at"],
            status=status,
        )

    async def create_key(self, name: str, scope: PrincipalKind, expires_in_days: int | None = None) -> CreatedKey:
        name = name.strip()
        if not 1 <= len(name) <= 120:
            raise InvalidInput("A key needs a name of 1-120 characters (e.g. 'storefront agent').")
        if scope not in ("buyer", "merchant"):
            raise InvalidInput("scope must be 'buyer' or 'merchant'.")
        if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
            raise InvalidInput("expires_in_days must be between 1 and 3650.")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = self._clock()
        values = {
            "id": key_id,
            "name": name,
            "scope": scope,
            "secret_hash": _hash(secret),
            "created_at": now,
            "expires_at": now + timedelta(days=expires_in_days) if expires_in_days else None,
        }

        def run(conn: Connection) -> KeyInfo:
            key_store.insert_key(conn, values)
            audit.record(conn, audit.OPERATOR, "api_key.create", key_id, after={"name": name, "scope": scope}, at=now)
            row = key_store.get_key(conn, key_id)
            return self._info(row)

        info = await self._db.write(run)
        return CreatedKey(key=f"mcpk_{self._mode}_{key_id}_{secret}", info=info)

    async def list_keys(self) -> list[KeyInfo]:
        rows = await self._db.read(key_store.list_keys)
        return [self._info(row) for row in rows]

    async def revoke(self, key: str) -> KeyInfo:
        key_id = key.rsplit("_", 1)[-1] if key.startswith("mcpk_") else key

        def run(conn: Connection) -> KeyInfo:
            row = key_store.get_key(conn, key_id)
            if row is None:
                raise NotFound(f"No API key {key_id!r}. `mcp-checkout keys list` shows the key ids.")
            key_store.revoke(conn, key_id, now := self._clock())
            audit.record(
                conn,
                audit.OPERATOR,
                "api_key.revoke",
                key_id,
                before={"revoked": row["revoked_at"] is not None},
                at=now,
            )
            return self._info(key_store.get_key(conn, key_id))

        return await self._db.write(run)

    async def authenticate(self, token: str) -> Principal | None:
        """The principal a bearer key stands for, or None (unknown, malformed, revoked or expired)."""
        match = KEY_PATTERN.match(token)
        key_id, secret = (match.group(2), match.group(3)) if match else ("", token)
        row = await self._db.read(lambda conn: key_store.get_key(conn, key_id)) if match else None
        stored = row["secret_hash"] if row is not None else _DUMMY_HASH
        if not hmac.compare_digest(_hash(secret).encode(), str(stored).encode()) or row is None:
            return None
        now = self._clock()
        if row["revoked_at"] is not None or (row["expires_at"] is not None and row["expires_at"] <= now):
            return None
        if row["last_used_at"] is None or now - row["last_used_at"] > _TOUCH_EVERY:
            await self._db.write(lambda conn: key_store.touch(conn, key_id, now))
        return Principal(id=f"key:{key_id}", kind=row["scope"])

    async def count_call(
        self, principal: Principal, *, per_minute: int | None = None, who: str = "This API key"
    ) -> None:
        """Spend one call of the principal's per-minute budget (``per_minute``, default the keys' limit);
        RateLimited when it is used up. ``who`` names the caller in the refusal.

        On PostgreSQL the window lives in the database, so every server process shares it; on
        SQLite (one process per file in practice) it lives in memory, sparing the single writer."""
        now = time.time()
        window = int(now // 60)
        if self._db.dialect == "postgresql":
            calls = await self._count_shared(principal.id, window)
        else:
            self._local_windows[(principal.id, window)] += 1
            calls = self._local_windows[(principal.id, window)]
            for stale in [k for k in self._local_windows if k[1] < window]:
                del self._local_windows[stale]
        limit = self._per_minute if per_minute is None else per_minute
        if calls > limit:
            wait = max(1, int(60 - now % 60) + 1)
            raise RateLimited(
                f"{who} made more than {limit} calls this minute. Wait {wait}s, then retry "
                "the same call (reuse any idempotency_key).",
                details={"limit_per_minute": limit},
                retry_after_seconds=wait,
            )

    async def _count_shared(self, key_id: str, window: int) -> int:
        """Count one call in the window every process shares; return the best known total."""
        counted = self._shared_windows.get((key_id, window))
        if counted is None:
            counted = self._shared_windows[(key_id, window)] = _Window()
            for stale in [k for k in self._shared_windows if k[1] < window]:
                del self._shared_windows[stale]
        counted.unflushed += 1
        due = time.monotonic() - counted.flushed_at >= _FLUSH_EVERY_SECONDS
        if counted.unflushed >= self._slack or due:
            batch, counted.unflushed = counted.unflushed, 0
            counted.flushed_at = time.monotonic()
            total = await self._db.write(lambda conn: key_store.count_call(conn, key_id, window, batch))
            counted.known_total = max(counted.known_total, total)
            return counted.known_total + counted.unflushed
        return counted.known_total + counted.unflushed

    async def purge_rate_windows(self) -> None:
        """Forget finished per-minute windows (the shared counters live in the database)."""
        current = int(time.time() // 60)
        await self._db.write(lambda conn: key_store.purge_windows(conn, current - 1))
