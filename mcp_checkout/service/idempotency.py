"""Exactly once, for every operation an agent may retry: the one idempotency protocol.

A keyed operation is declared once (:class:`Operation`) and its request fingerprinted here, from the
validated command (:func:`fingerprint`): the fields the client sent, with their validated values, in ACP
semantics (key order ignored, ``1.0 == 1``, ``null`` differs from an absent field, array order matters).
Keys are scoped to (principal, operation) and unique in the database (``idempotency_keys``). For the
same key, the same request gets the stored result back (the caller marks it ``replayed: true``), a
different request gets ``idempotency_conflict``, and a call still running gets ``idempotency_in_flight``.

Two shapes of operation use it:

- Done in one write transaction (``create_order``, ``create_checkout_link``): :meth:`Idempotency.once`
  records the key as done with the result's id, first thing in the operation's own transaction. A
  concurrent twin waits on the unique key (PostgreSQL blocks on the uncommitted insert; SQLite serialises
  writers) and then replays; a failure rolls the key back with everything else.
- With a call outside the database between two transactions (``refund_order`` calls the gateway):
  :meth:`Idempotency.claim` holds the key with a lease, :meth:`Idempotency.complete` finishes it and
  :meth:`Idempotency.release` ends the lease after a failure (the same request may retry at once and
  takes the claim over; a different request under the key is still a conflict). A claim whose holder
  died is taken over when its lease runs out.

Gateway idempotency keys (:func:`gateway_key`) derive from the same records, so a retry reaches the
gateway under the key the first attempt used. Records are kept for the retention period (at least a day)
and then purged (:meth:`Idempotency.purge`).

A new keyed operation is a few lines: declare its ``Operation``, give its command an
``idempotency_key`` and ``sent``, and call ``once`` (or ``claim``/``complete``) in its transaction.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

from sqlalchemy import Connection

from mcp_checkout import domain
from mcp_checkout.domain import Clock
from mcp_checkout.errors import IdempotencyConflict, IdempotencyInFlight
from mcp_checkout.store import idempotency as store
from mcp_checkout.store.db import Database

NOT_FINGERPRINTED = frozenset({"idempotency_key", "sent"})
_IN_PROGRESS, _COMPLETED = "in_progress", "completed"


class KeyedCommand(Protocol):
    """A validated request for a keyed operation (a frozen dataclass). ``sent``: the names of the fields
    the client sent (None: all of them), so that ``null`` and an absent field stay different requests."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def idempotency_key(self) -> str | None: ...

    @property
    def sent(self) -> Collection[str] | None: ...


def fingerprint(command: KeyedCommand, *, exclude: Collection[str] = ()) -> str:
    """The request fingerprint of a keyed command: its fields the client sent, validated, without the key."""
    sent = command.sent
    request = {
        name: getattr(command, name)
        for name in _fingerprinted_fields(type(command), frozenset(exclude))
        if sent is None or name in sent
    }
    return domain.fingerprint(request)


@functools.cache
def _fingerprinted_fields(command_type: type, exclude: frozenset[str]) -> tuple[str, ...]:
    """The fields of a keyed command that its fingerprint covers (looked up once per command type)."""
    skip = NOT_FINGERPRINTED | exclude
    return tuple(field.name for field in dataclasses.fields(command_type) if field.name not in skip)


def sent_fields(arguments: Mapping[str, Any]) -> frozenset[str]:
    """The names of the arguments a client sent (for :class:`KeyedCommand.sent`)."""
    return frozenset(arguments)


@dataclass(frozen=True)
class Operation:
    """One keyed operation: its name (the key scope), what it makes, and where the agent sees that."""

    name: str
    makes: str  # "order", "refund", "checkout link"
    id_field: str  # the detail naming the result: "order_id"
    look_up: str  # the tool that shows the result: "get_order"

    def request(self, command: KeyedCommand, *, exclude: Collection[str] = ()) -> Keyed:
        key = command.idempotency_key
        if key is None:
            raise ValueError(f"{self.name} needs an idempotency_key here")
        return Keyed(self, key, fingerprint(command, exclude=exclude))


@dataclass(frozen=True)
class Keyed:
    """A call of a keyed operation: the operation, the caller's key and the request's fingerprint."""

    operation: Operation
    key: str
    fingerprint: str


@dataclass(frozen=True)
class Prior:
    """An earlier call with the same key and the same request finished and made ``resource_id``."""

    resource_id: str


@dataclass(frozen=True)
class Claim:
    """This call holds the key; it makes ``resource_id`` (kept when a dead attempt's claim is taken over)."""

    record_id: int
    token: str
    resource_id: str
    taken_over: bool = False


def gateway_key(*parts: object) -> str:
    """An idempotency key for a payment gateway call, derived from the order/attempt or the claim it serves."""
    return ":".join(["mcpco", *(str(part) for part in parts)])


def intent_key(order_id: str, attempt: int) -> str:
    """Attempt N of an order's PaymentIntent: a retry or a crash never makes a second intent."""
    return gateway_key(order_id, attempt)


def cancel_key(order_id: str, attempt: int) -> str:
    return gateway_key("cancel", order_id, attempt)


def confirm_key(order_id: str, attempt: int, request_key: str) -> str:
    """Confirming attempt N with the payment method of one keyed request (e.g. a UCP complete_checkout's
    Idempotency-Key with its caller): that request's retries confirm once; a new request may confirm again."""
    return gateway_key("confirm", order_id, attempt, hashlib.sha256(request_key.encode()).hexdigest()[:32])


def refund_key(claim: Claim) -> str:
    """The gateway key of a refund: the same for every attempt that holds its claim."""
    return gateway_key("refund", claim.resource_id)


class Idempotency:
    def __init__(self, db: Database, clock: Clock, *, retention: timedelta, lease: timedelta) -> None:
        self._db = db
        self._clock = clock
        self._retention = retention
        self._lease = lease

    # ------------------------------------------------------------ one-transaction operations
    def once(self, conn: Connection, principal_id: str, call: Keyed, resource_id: str) -> Prior | None:
        """First statement of the operation's own write transaction: record the key as done with
        ``resource_id`` (committed with the operation, rolled back with it), or return the earlier
        call's result (:class:`Prior`). Raises ``idempotency_conflict`` / ``idempotency_in_flight``."""
        now = self._clock()
        token = secrets.token_hex(16)
        if self._insert(conn, principal_id, call, _COMPLETED, resource_id, token, now, locked_until=now) is not None:
            return None
        record = self._existing(conn, principal_id, call)
        if record["status"] == _COMPLETED:
            return Prior(record["resource_id"])
        self._check_lease(record, call)  # an in-progress claim: only a two-phase attempt holds one
        if not store.take_over(
            conn, record["id"], record["claim_token"], token, now, status=_COMPLETED, resource_id=resource_id
        ):
            raise self._busy()
        return None

    def _insert(
        self,
        conn: Connection,
        principal_id: str,
        call: Keyed,
        status: str,
        resource_id: str,
        token: str,
        now: datetime,
        *,
        locked_until: datetime,
    ) -> int | None:
        """Record the key unless it exists (the unique key decides between concurrent twins): its record's id,
        or None if it existed."""
        return store.try_insert(
            conn,
            principal_id=principal_id,
            operation=call.operation.name,
            key=call.key,
            fingerprint=call.fingerprint,
            status=status,
            resource_id=resource_id,
            claim_token=token,
            locked_until=locked_until,
            now=now,
            expires_at=now + self._retention,
        )

    def redirect(self, conn: Connection, principal_id: str, call: Keyed, resource_id: str) -> None:
        """The call found its result made already by a natural key (a cart ordered before): point the key there."""
        store.set_resource(conn, principal_id, call.operation.name, call.key, resource_id)

    # ------------------------------------------------------------ two-phase operations
    def claim(self, conn: Connection, principal_id: str, call: Keyed, resource_id: str) -> Prior | Claim:
        """Hold the key for a call that finishes in a later transaction (after a gateway call)."""
        now = self._clock()
        token = secrets.token_hex(16)
        record_id = self._insert(
            conn, principal_id, call, _IN_PROGRESS, resource_id, token, now, locked_until=now + self._lease
        )
        if record_id is not None:
            return Claim(record_id, token, resource_id)
        record = self._existing(conn, principal_id, call)
        if record["status"] == _COMPLETED:
            return Prior(record["resource_id"])
        self._check_lease(record, call)
        held = record["resource_id"] or resource_id
        if not store.take_over(
            conn, record["id"], record["claim_token"], token, now + self._lease, status=_IN_PROGRESS, resource_id=held
        ):
            raise self._busy()
        return Claim(record["id"], token, held, taken_over=True)

    def complete(self, conn: Connection, claim: Claim) -> None:
        """The claimed call finished. (If a retry took the claim over meanwhile, it makes the same result.)"""
        store.complete(conn, claim.record_id, claim.resource_id)

    async def release(self, claim: Claim) -> None:
        """The claimed call failed: end its lease so the same request can retry at once. The key keeps its
        fingerprint: the outcome at the gateway may be unknown, so another request must not reuse it."""
        await self._db.write(lambda conn: store.end_lease(conn, claim.record_id, claim.token, self._clock()))

    # ------------------------------------------------------------ retention
    async def purge(self) -> int:
        """Forget keys older than the retention period. Returns how many."""
        now = self._clock()
        return await self._db.write(lambda conn: store.purge_expired(conn, now))

    # ------------------------------------------------------------ checks
    def _existing(self, conn: Connection, principal_id: str, call: Keyed) -> Any:
        record = store.get(conn, principal_id, call.operation.name, call.key)
        if record is None:  # purged between the two statements
            raise IdempotencyInFlight(
                "The idempotency key is being recycled; retry in a second with the same key.", retry_after_seconds=1
            )
        if record["fingerprint"] != call.fingerprint:
            raise conflict(call, record["resource_id"])
        return record

    def _check_lease(self, record: Any, call: Keyed) -> None:
        now = self._clock()
        if record["locked_until"] > now:
            wait = min(5, max(1, int((record["locked_until"] - now).total_seconds() + 0.999)))
            raise IdempotencyInFlight(
                f"An identical {call.operation.name} with idempotency_key {call.key!r} is still running. Wait "
                f"about {wait}s and retry with the same key and arguments to get its result.",
                details={"idempotency_key": call.key},
                retry_after_seconds=wait,
            )

    @staticmethod
    def _busy() -> IdempotencyInFlight:
        return IdempotencyInFlight(
            "Another retry took this idempotency key first; retry in a second with the same key.",
            retry_after_seconds=1,
        )


def conflict(call: Keyed, resource_id: str | None) -> IdempotencyConflict:
    operation = call.operation
    made = f" That key made {operation.makes} {resource_id}." if resource_id else ""
    return IdempotencyConflict(
        f"idempotency_key {call.key!r} was already used for a different {operation.name} request. Reuse a key "
        f"only to retry the very same request; use a new key for a new {operation.makes}.{made}",
        details={"idempotency_key": call.key, operation.id_field: resource_id},
        next_actions=[operation.look_up, operation.name],
    )
