"""The audit log: every merchant and operator action, recorded in the same transaction as the change.

Call sites add one line inside their write transaction::

    audit.record(conn, principal, "inventory.adjust", sku, before={"stock_on_hand": 3}, after={...}, at=now)

``before``/``after`` describe the change (prices, stock, statuses, counts), never a secret or buyer data:
values under keys that name such things are replaced by ``"[redacted]"`` here, whatever a caller passes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Connection

from mcp_checkout import domain
from mcp_checkout.domain import Clock, Principal
from mcp_checkout.errors import InvalidCursor, InvalidInput
from mcp_checkout.service import policy
from mcp_checkout.store import audit as audit_store
from mcp_checkout.store.db import Database

AuditActor = Literal["merchant", "operator", "system"]
# The operator at the command line (mcp-checkout …): no API key, the machine's own user.
OPERATOR = policy.OPERATOR
REDACTED = "[redacted]"
_SENSITIVE = frozenset(
    {"email", "email_lock", "shipping_address", "address", "phone", "secret", "signing_secret", "token", "key"}
)
MAX_PAGE = 100


def actor_of(who: Principal | None) -> AuditActor:
    if who is None:
        return "system"
    return "operator" if who.id == OPERATOR.id else "merchant"


def _scrub(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): REDACTED if str(k).lower() in _SENSITIVE else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def record(
    conn: Connection,
    who: Principal | None,
    action: str,
    target: str | None = None,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    at: datetime,
) -> None:
    """Append one audit event to the running transaction (it commits or rolls back with the change).
    A buyer's own actions (e.g. canceling their order) are not merchant actions: they are skipped here
    (the order's status history keeps them)."""
    if who is not None and who.kind != "merchant":
        return
    audit_store.append(
        conn,
        {
            "at": at,
            "action": action,
            "actor": actor_of(who),
            "principal_id": who.id if who else None,
            "client": (who.client if who else "")[:200],
            "target": target[:200] if target else None,
            "before": _scrub(before) if before is not None else None,
            "after": _scrub(after) if after is not None else None,
        },
    )


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    action: str
    actor: str
    principal_id: str | None
    client: str
    target: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditEventPage(BaseModel):
    events: list[AuditEventOut]
    next_cursor: str | None


def _scope(*filters: Any) -> str:
    return hashlib.sha256(repr(filters).encode()).hexdigest()[:16]


class AuditService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def list_events(
        self,
        principal: Principal,
        *,
        action: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> AuditEventPage:
        """Audit events newest first, optionally filtered; ``since`` inclusive, ``until`` exclusive."""
        policy.require(principal, "list_audit_events")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be 1 to {MAX_PAGE}; got {limit}.")
        if actor is not None and actor not in ("merchant", "operator", "system"):
            raise InvalidInput("actor must be merchant, operator or system.", details={"actor": actor})
        since = domain.utc_moment(since, "since") if since else None
        until = domain.utc_moment(until, "until") if until else None
        scope = _scope(action, actor, since, until)
        before_id = None
        if cursor is not None:
            bad = InvalidCursor(
                "The cursor is not valid for these filters. Call list_audit_events again with the same filters "
                "and no cursor to start over.",
                next_actions=["list_audit_events"],
            )
            fields = domain.unpack_cursor(cursor, bad)
            before_id = fields.get("before")
            if fields.get("s") != scope or not isinstance(before_id, int) or isinstance(before_id, bool):
                raise bad
        rows = await self._db.read(
            lambda conn: audit_store.page(
                conn, action=action, actor=actor, since=since, until=until, before_id=before_id, limit=limit + 1
            )
        )
        events = [AuditEventOut.model_validate(dict(row)) for row in rows[:limit]]
        more = len(rows) > limit
        return AuditEventPage(
            events=events,
            next_cursor=domain.pack_cursor({"before": events[-1].id, "s": scope}) if more else None,
        )
