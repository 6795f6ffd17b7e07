"""The webhook dispatcher: claims due deliveries, sends them signed, records each outcome, retries.

Each serving process runs one (:meth:`Dispatcher.dispatch_forever`). A claim takes a batch of due
deliveries under a lease (PostgreSQL ``FOR UPDATE SKIP LOCKED``; SQLite ``BEGIN IMMEDIATE``), so
several processes never send one delivery at once, and a claim of a process that died is taken again
once its lease ends. Delivery is at least once; the ``webhook-id`` (the delivery id) is stable across
retries so receivers can drop duplicates. Network errors, timeouts, 5xx, 408, 425 and 429 are retried
with capped exponential backoff and full jitter (honouring ``Retry-After``); any other non-2xx answer
fails the delivery at once; after the last attempt it is abandoned. Connections go only where the URL
policy allows (:mod:`mcp_checkout.service.webhook_urls`).
"""

from __future__ import annotations

import email.utils
import logging
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import anyio
import httpx
from sqlalchemy import Connection, RowMapping

from mcp_checkout.domain import Clock
from mcp_checkout.errors import CheckoutError
from mcp_checkout.service.secretbox import SecretBox, SecretUnavailable
from mcp_checkout.service.webhook_outbox import DELIVERIES_QUEUED
from mcp_checkout.service.webhook_signing import signed_headers
from mcp_checkout.service.webhook_urls import DestinationRefused, Resolver, pinned_transport, static_refusal
from mcp_checkout.store import webhooks as store
from mcp_checkout.store.db import Database

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 425, 429}) | frozenset(range(500, 600))


@dataclass(frozen=True)
class Delivery:
    """One delivery of an event, as a :class:`DeliveryFormat` sees it (``body``: the native event JSON)."""

    delivery_id: str
    event_id: str
    event_type: str
    order_id: str | None
    url: str
    body: str
    event_at: datetime


class DeliveryFormat(Protocol):
    """How an endpoint kind other than ``standard`` is sent: the exact bytes and every header, signed."""

    async def prepare(self, delivery: Delivery) -> tuple[bytes, dict[str, str]]: ...


def backoff_seconds(attempt: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Capped exponential backoff with full jitter after the ``attempt``-th failed try, no less than the
    receiver's Retry-After (still within the cap)."""
    ceiling = min(cap, base * 2 ** min(attempt - 1, 62))
    delay = random.uniform(0, ceiling)  # noqa: S311 (jitter, not a secret)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as seconds from ``now``; None if absent or unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


class Dispatcher:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        secrets: SecretBox,
        live: bool,
        resolver: Resolver,
        max_attempts: int,
        timeout_seconds: float,
        backoff_base_seconds: float,
        backoff_cap_seconds: float,
        poll_interval_seconds: float,
        batch_size: int,
    ) -> None:
        self._db = db
        self._clock = clock
        self._secrets = secrets
        self._live = live
        self._resolver = resolver
        self._max_attempts = max_attempts
        self._timeout = timeout_seconds
        self._base = backoff_base_seconds
        self._cap = backoff_cap_seconds
        self._poll = poll_interval_seconds
        self._batch = batch_size
        # A claim outlives any attempt (timeout) by a margin; past it, another dispatcher may retry.
        self._lease = timedelta(seconds=timeout_seconds * 2 + 5)
        self._client: httpx.AsyncClient | None = None
        self._wake: anyio.Event | None = None
        self._next_due: datetime | None = None
        self._formats: dict[str, DeliveryFormat] = {}

    def register_format(self, kind: str, delivery_format: DeliveryFormat) -> None:
        """Send (and so claim) deliveries to endpoints of ``kind`` (e.g. ``ucp``) as ``delivery_format`` says.
        A process without a kind's format leaves its deliveries to the processes that have one."""
        self._formats[kind] = delivery_format

    async def dispatch_once(self) -> int:
        """Claim the due deliveries (one batch), send them concurrently, record the outcomes.
        Returns how many were attempted."""
        now = self._clock()
        if not await self._db.read(lambda conn: store.any_due(conn, now), quick=True, one_statement=True):
            return 0
        token = secrets.token_hex(16)
        kinds = (store.STANDARD, *self._formats)
        lease_until = now + self._lease
        claimed = await self._db.write(lambda conn: store.claim_due(conn, now, lease_until, token, self._batch, kinds))
        if not claimed:
            return 0
        outcomes: dict[str, dict[str, Any]] = {}

        async def attempt(row: RowMapping) -> None:
            outcomes[row["id"]] = await self._attempt(row)

        def record(conn: Connection) -> None:
            for row in claimed:
                # No outcome: cancelled midway (shutdown); release the claim instead of waiting out the lease.
                values = outcomes.get(row["id"], {})
                if not store.record_outcome(conn, row["id"], token, values) and values:
                    log.warning("webhook delivery %s: claim lost before its outcome was recorded", row["id"])

        try:
            async with anyio.create_task_group() as tasks:
                for row in claimed:
                    tasks.start_soon(attempt, row)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self._db.write(record)
        retries = [values["next_attempt_at"] for values in outcomes.values() if values.get("status") == store.PENDING]
        if retries:
            earliest = min(retries)
            self._next_due = earliest if self._next_due is None else min(self._next_due, earliest)
        return len(claimed)

    async def _attempt(self, row: RowMapping) -> dict[str, Any]:
        started = self._clock()
        if self._live and (why := static_refusal(row["url"])) is not None:
            return self._refused(row, why)
        timestamp = int(started.timestamp())
        retry_after: float | None = None
        code: int | None = None
        error: str | None = None
        try:
            content, headers = await self._signed(row, timestamp)
        except SecretUnavailable as exc:  # never send unsigned: wait (and retry) until the key is fixed
            log.error("webhook %s not sent: %s", row["id"], exc)
            return self._retry_or_abandon(row, {"last_status_code": None}, f"not sent: {exc}", None)
        except CheckoutError as exc:  # e.g. the order is gone (erased); a format's own refusal
            log.warning("webhook %s not sent: %s", row["id"], exc.code)
            return self._retry_or_abandon(row, {"last_status_code": None}, f"not sent: {exc.code}", None)
        except Exception as exc:  # a format that failed (e.g. a body of an older shape): retried, then abandoned
            log.error("webhook %s not sent: its %s format failed (%s)", row["id"], row["kind"], type(exc).__name__)
            error = f"not sent: the {row['kind']} format failed ({type(exc).__name__})"
            return self._retry_or_abandon(row, {"last_status_code": None}, error, None)
        try:
            async with self._http().stream("POST", row["url"], content=content, headers=headers) as resp:
                code = resp.status_code
                if code in (429, 503):
                    retry_after = retry_after_seconds(resp.headers.get("retry-after"), started)
        except DestinationRefused as exc:  # live mode, a name resolving to an internal address: not connected
            return self._refused(row, exc.reason)
        except Exception as exc:  # network, TLS, protocol: whatever kept the receiver from answering is retried
            error = f"{type(exc).__name__}: {str(exc)[:200]}" if str(exc) else type(exc).__name__
        now = self._clock()
        log.debug("webhook %s attempt %d: %s", row["id"], row["attempts"], code or error)
        values: dict[str, Any] = {"last_status_code": code}
        if code is not None and 200 <= code < 300:
            return {**values, "status": store.DELIVERED, "delivered_at": now, "next_attempt_at": None,
                    "last_error": None}  # fmt: skip
        if code is not None and code not in RETRY_STATUSES:
            reason = "redirect not followed; register the final URL" if 300 <= code < 400 else "refused by receiver"
            return {**values, "status": store.FAILED, "next_attempt_at": None, "last_error": f"HTTP {code}: {reason}"}
        return self._retry_or_abandon(row, values, error or f"HTTP {code}", retry_after)

    async def _signed(self, row: RowMapping, timestamp: int) -> tuple[bytes, dict[str, str]]:
        body = self._secrets.open(row["body"])  # the event body is sealed like buyer data
        if row["kind"] == store.STANDARD:
            return body.encode(), signed_headers(self._secrets.open(row["secret"]), row["id"], timestamp, body)
        delivery = Delivery(
            delivery_id=row["id"], event_id=row["event_id"], event_type=row["event_type"], order_id=row["order_id"],
            url=row["url"], body=body, event_at=row["event_at"],
        )  # fmt: skip
        return await self._formats[row["kind"]].prepare(delivery)

    def _refused(self, row: RowMapping, why: str) -> dict[str, Any]:
        log.warning("webhook delivery %s refused in live mode: %s", row["id"], why)
        error = (
            f"refused in live mode, nothing sent: {why}. Deactivate this endpoint (deactivate_webhook_endpoint) "
            "and register the receiver's public https address."
        )
        return {"status": store.FAILED, "next_attempt_at": None, "last_status_code": None, "last_error": error[:500]}

    def _retry_or_abandon(
        self, row: RowMapping, values: dict[str, Any], error: str, retry_after: float | None
    ) -> dict[str, Any]:
        if row["attempts"] >= self._max_attempts:
            log.warning("webhook delivery %s abandoned after %d attempts (%s)", row["id"], row["attempts"], error)
            return {**values, "status": store.ABANDONED, "next_attempt_at": None, "last_error": error}
        delay = backoff_seconds(row["attempts"], self._base, self._cap, retry_after)
        return {**values, "status": store.PENDING, "next_attempt_at": self._clock() + timedelta(seconds=delay),
                "last_error": error}  # fmt: skip

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            limits = httpx.Limits(max_connections=max(self._batch, 10))
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=False,
                transport=pinned_transport(self._resolver, live=self._live, limits=limits),
                trust_env=False,
            )
        return self._client

    async def dispatch_forever(self) -> None:
        """Deliver until cancelled: promptly after this process queues deliveries, and at least every
        poll interval (for other processes' events and retries that came due)."""
        stop_listening = self._db.after_commit(self.poke)
        try:
            while True:
                self._wake = anyio.Event()
                if await self._dispatch_safely():
                    continue  # there may be more due
                with anyio.move_on_after(self._sleep_seconds()):
                    await self._wake.wait()  # woken after a commit that queued deliveries, or the poll interval
        finally:
            stop_listening()
            self._wake = None

    async def _dispatch_safely(self) -> int:
        try:
            return await self.dispatch_once()
        except CheckoutError as exc:
            log.warning("webhook dispatch skipped: %s", exc.code)
        except Exception:
            log.exception("webhook dispatch failed")
        return 0

    def _sleep_seconds(self) -> float:
        if self._next_due is None:
            return self._poll
        wait = (self._next_due - self._clock()).total_seconds()
        self._next_due = None
        return min(self._poll, max(wait, 0.0))

    def poke(self, changed: frozenset[str]) -> None:
        """Wake the running dispatcher when ``changed`` says deliveries were queued."""
        if DELIVERIES_QUEUED in changed and self._wake is not None:
            self._wake.set()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
