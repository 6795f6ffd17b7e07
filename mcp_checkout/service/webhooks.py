"""Signed outbound webhooks with a transactional outbox.

An order change writes its event (and one pending delivery per subscribed endpoint) in the very
transaction that makes the change (:func:`record_order_event`, called from ``service/orders.py``), so
no committed change goes unannounced and no rolled-back change is announced. :class:`WebhookService`
runs the dispatcher inside each serving process: it claims due deliveries with a lease (PostgreSQL
``FOR UPDATE SKIP LOCKED``; SQLite ``BEGIN IMMEDIATE``), POSTs them signed as the Standard Webhooks
specification defines, and records each outcome. Delivery is at least once; ``webhook-id`` (the
delivery id) is stable across retries so receivers can drop duplicates.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import logging
import math
import random
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
from pydantic import BaseModel
from sqlalchemy import Connection, RowMapping

from mcp_checkout import domain
from mcp_checkout.domain import Clock, OrderStatus, Principal
from mcp_checkout.errors import (
    CheckoutError,
    InvalidCursor,
    InvalidInput,
    InvalidState,
    WebhookDeliveryNotFound,
    WebhookEndpointNotFound,
)
from mcp_checkout.service import audit, policy
from mcp_checkout.service.secretbox import SecretBox, SecretUnavailable
from mcp_checkout.service.webhook_urls import (
    DestinationRefused,
    Resolver,
    check_url,
    pinned_transport,
    refuse_for_live,
    static_refusal,
    system_resolver,
    url_refusal,
)
from mcp_checkout.service.webhook_views import (
    CreatedWebhookEndpoint,
    ReplayedDelivery,
    WebhookDeliveryOut,
    WebhookDeliveryPage,
    WebhookEndpointList,
    WebhookEndpointOut,
    WebhookMetrics,
)
from mcp_checkout.store import webhooks as store
from mcp_checkout.store.db import Database, note_changed

log = logging.getLogger(__name__)

EVENT_OF_STATUS = {
    OrderStatus.PENDING_PAYMENT: "order.created",
    OrderStatus.PAID: "order.paid",
    OrderStatus.FULFILLED: "order.fulfilled",
    OrderStatus.CANCELED: "order.canceled",
    OrderStatus.EXPIRED: "order.expired",
    OrderStatus.REFUNDED: "order.refunded",
}
EVENT_TYPES = tuple(EVENT_OF_STATUS.values())
SECRET_PREFIX = "whsec_"  # noqa: S105 (the format prefix, not a secret)
MAX_DESCRIPTION = 500
MAX_WINDOW_MINUTES = 60 * 24 * 31
_LATENCY_SAMPLE = 50_000
_RETRY_STATUSES = frozenset({408, 425, 429}) | frozenset(range(500, 600))


# ---------------------------------------------------------------- signing (Standard Webhooks)
def new_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes, the form the standardwebhooks libraries accept."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# ---------------------------------------------------------------- the outbox (inside the caller's transaction)
# Noted in a transaction that queued deliveries; this process's dispatcher hears it once that commits.
DELIVERIES_QUEUED = "~webhook-deliveries-queued"


def record_order_event(
    conn: Connection, status: OrderStatus, order_id: str, now: datetime, view: Callable[[], BaseModel]
) -> None:
    """Queue the event for an order that just reached ``status``, in ``conn``'s transaction.

    Without an active endpoint subscribed to the event this is one read of a tiny table and nothing is
    written. ``view`` renders the order as it is now (only called when someone will receive it).
    """
    event_type = EVENT_OF_STATUS.get(status)
    if event_type is None:
        return
    endpoint_ids = store.subscribers(conn, event_type)
    if not endpoint_ids:
        return
    envelope = {
        "type": event_type,
        "timestamp": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": view().model_dump(mode="json"),
    }
    event = {
        "id": domain.new_id("evt"),
        "type": event_type,
        "order_id": order_id,
        "body": json.dumps(envelope, separators=(",", ":"), ensure_ascii=False),
        "created_at": now,
    }
    store.insert_event(conn, event, endpoint_ids, [domain.new_id("msg") for _ in endpoint_ids])
    note_changed(conn, DELIVERIES_QUEUED)


# ---------------------------------------------------------------- input rules
def check_events(events: Sequence[str]) -> list[str]:
    chosen = list(dict.fromkeys(event.strip() for event in events if event.strip()))
    unknown = [event for event in chosen if event not in EVENT_TYPES]
    if not chosen or unknown:
        raise InvalidInput(
            f"Choose one or more event types from {', '.join(EVENT_TYPES)}"
            + (f"; unknown: {', '.join(unknown[:10])}." if unknown else "."),
            details={"unknown": unknown[:10], "allowed": list(EVENT_TYPES)},
        )
    return chosen


def backoff_seconds(attempt: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Capped exponential backoff with full jitter after the ``attempt``-th failed try, no less than the
    receiver's Retry-After (still within the cap)."""
    ceiling = min(cap, base * 2 ** min(attempt - 1, 62))
    delay = random.uniform(0, ceiling)  # noqa: S311 (jitter, not a secret)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


def _retry_after(value: str | None, now: datetime) -> float | None:
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


def p95(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)], 3)


# ---------------------------------------------------------------- views and cursors
def _endpoint_out(row: Mapping[Any, Any]) -> WebhookEndpointOut:
    return WebhookEndpointOut(
        endpoint_id=row["id"],
        url=row["url"],
        description=row["description"],
        events=list(row["event_types"]),
        status=row["status"],
        created_at=row["created_at"],
        deactivated_at=row["deactivated_at"],
    )


def _delivery_out(row: Mapping[Any, Any]) -> WebhookDeliveryOut:
    pending = row["status"] == store.PENDING
    return WebhookDeliveryOut(
        delivery_id=row["id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        order_id=row["order_id"],
        endpoint_id=row["endpoint_id"],
        endpoint_url=row["endpoint_url"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=_due(row) if pending else None,
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        last_attempt_at=row["last_attempt_at"],
        delivered_at=row["delivered_at"],
        created_at=row["created_at"],
    )


def _due(row: Mapping[Any, Any]) -> datetime:
    """When a pending delivery will be tried: its due time, or the end of a running attempt's claim."""
    due: datetime = row["next_attempt_at"]
    claimed: datetime | None = row["claimed_until"]
    return max(due, claimed) if claimed is not None else due


def _encode_cursor(row: Mapping[Any, Any], scope: str) -> str:
    return domain.pack_cursor({"t": row["created_at"].isoformat(), "i": row["id"], "s": scope})


def _decode_cursor(cursor: str, scope: str) -> tuple[datetime, str]:
    bad = InvalidCursor(
        "The cursor does not belong to these list_webhook_deliveries filters. Pass next_cursor back unchanged "
        "with the same filters, or call without cursor to start over.",
        next_actions=["list_webhook_deliveries"],
    )
    data = domain.unpack_cursor(cursor, bad)
    moment, last = data.get("t"), data.get("i")
    if data.get("s") != scope or not isinstance(last, str) or not isinstance(moment, str):
        raise bad
    try:
        return domain.utc_moment(datetime.fromisoformat(moment), "cursor"), last
    except (ValueError, InvalidInput):
        raise bad from None


# ---------------------------------------------------------------- the service
class WebhookService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        secrets: SecretBox,
        live: bool,
        max_attempts: int,
        timeout_seconds: float,
        backoff_base_seconds: float,
        backoff_cap_seconds: float,
        poll_interval_seconds: float,
        batch_size: int,
        retention: timedelta = timedelta(days=30),
        resolver: Resolver = system_resolver,
    ) -> None:
        self._db = db
        self._clock = clock
        self._secrets = secrets
        self._live = live
        self._max_attempts = max_attempts
        self._timeout = timeout_seconds
        self._base = backoff_base_seconds
        self._cap = backoff_cap_seconds
        self._poll = poll_interval_seconds
        self._batch = batch_size
        self._resolver = resolver
        self._retention = retention
        # A claim outlives any attempt (timeout) by a margin; past it, another dispatcher may retry.
        self._lease = timedelta(seconds=timeout_seconds * 2 + 5)
        self._resolve_timeout = min(timeout_seconds, 5.0)
        self._client: httpx.AsyncClient | None = None
        self._wake: anyio.Event | None = None
        self._next_due: datetime | None = None

    # ------------------------------------------------------------ endpoints
    async def create_endpoint(
        self, principal: Principal, url: str, events: Sequence[str], description: str = ""
    ) -> CreatedWebhookEndpoint:
        policy.require(principal, "create_webhook_endpoint")
        url = check_url(url, live=self._live)
        if self._live:  # a DNS name is checked now too, so a merchant hears at once; each delivery checks again
            refuse_for_live(url, await url_refusal(url, self._resolver, self._resolve_timeout))
        chosen = check_events(events)
        if len(description) > MAX_DESCRIPTION:
            raise InvalidInput(f"description is at most {MAX_DESCRIPTION} characters; shorten it.")
        secret = new_secret()
        now = self._clock()
        values = {
            "id": domain.new_id("we"),
            "url": url,
            "description": description,
            "event_types": chosen,
            "secret": self._secrets.seal(secret),
            "status": store.ACTIVE,
            "created_at": now,
            "deactivated_at": None,
        }

        def run(conn: Connection) -> None:
            store.insert_endpoint(conn, values)
            change = {"host": urlsplit(url).hostname, "events": chosen}  # not the URL: it may carry a token
            audit.record(conn, principal, "webhook_endpoint.create", str(values["id"]), after=change, at=now)

        await self._db.write(run)
        log.info("webhook endpoint %s created for %s", values["id"], ",".join(chosen))
        return CreatedWebhookEndpoint(endpoint=_endpoint_out(values), signing_secret=secret)

    async def list_endpoints(self, principal: Principal) -> WebhookEndpointList:
        policy.require(principal, "list_webhook_endpoints")
        rows = await self._db.read(store.endpoints)
        return WebhookEndpointList(endpoints=[_endpoint_out(row) for row in rows])

    async def live_refusals(self, principal: Principal) -> list[tuple[WebhookEndpointOut, str]]:
        """The active endpoints live mode refuses to send to (whatever the mode now), each with why:
        an endpoint saved in test mode is judged again before a live launch (doctor, readiness_check)."""
        active = [e for e in (await self.list_endpoints(principal)).endpoints if e.status == store.ACTIVE]
        refused = []
        for endpoint in active:
            why = await url_refusal(endpoint.url, self._resolver, self._resolve_timeout)
            if why is not None:
                refused.append((endpoint, why))
        return refused

    async def deactivate_endpoint(self, principal: Principal, endpoint_id: str) -> WebhookEndpointOut:
        policy.require(principal, "deactivate_webhook_endpoint")
        now = self._clock()

        def run(conn: Connection) -> WebhookEndpointOut:
            if (before := store.endpoint(conn, endpoint_id)) is None:
                raise self._endpoint_not_found(endpoint_id)
            store.deactivate_endpoint(conn, endpoint_id, now)
            audit.record(conn, principal, "webhook_endpoint.deactivate", endpoint_id,
                         before={"status": before["status"]}, after={"status": store.INACTIVE}, at=now)  # fmt: skip
            row = store.endpoint(conn, endpoint_id)
            assert row is not None
            return _endpoint_out(row)

        return await self._db.write(run)

    @staticmethod
    def _endpoint_not_found(endpoint_id: str) -> WebhookEndpointNotFound:
        return WebhookEndpointNotFound(
            f"No webhook endpoint {endpoint_id!r}. Endpoint ids look like we_…; call list_webhook_endpoints.",
            details={"endpoint_id": endpoint_id},
            next_actions=["list_webhook_endpoints"],
        )

    # ------------------------------------------------------------ deliveries
    async def list_deliveries(
        self,
        principal: Principal,
        *,
        endpoint_id: str | None = None,
        status: str | None = None,
        order_id: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
        window_minutes: int = 60 * 24,
    ) -> WebhookDeliveryPage:
        policy.require(principal, "list_webhook_deliveries")
        scope = domain.fingerprint({"e": endpoint_id, "s": status, "o": order_id})[:16]
        after = _decode_cursor(cursor, scope) if cursor else None

        def run(conn: Connection) -> list[RowMapping]:
            if endpoint_id is not None and store.endpoint(conn, endpoint_id) is None:
                raise self._endpoint_not_found(endpoint_id)
            return list(
                store.deliveries(
                    conn, endpoint_id=endpoint_id, status=status, order_id=order_id, after=after, limit=limit + 1
                )
            )

        rows = await self._db.read(run)
        page = rows[:limit]
        return WebhookDeliveryPage(
            deliveries=[_delivery_out(row) for row in page],
            next_cursor=_encode_cursor(page[-1], scope) if len(rows) > limit else None,
            metrics=await self.metrics(principal, window_minutes),
        )

    async def metrics(self, principal: Principal, window_minutes: int = 60 * 24) -> WebhookMetrics:
        """Delivery figures (for list_webhook_deliveries and the go-live report)."""
        policy.require(principal, "list_webhook_deliveries")
        if not 1 <= window_minutes <= MAX_WINDOW_MINUTES:
            raise InvalidInput(f"window_minutes must be 1 to {MAX_WINDOW_MINUTES} (31 days).")
        since = self._clock() - timedelta(minutes=window_minutes)

        def run(conn: Connection) -> tuple[dict[str, int], int, list[float]]:
            return (
                store.status_counts(conn, since),
                store.pending_count(conn),
                store.delivery_latencies(conn, since, _LATENCY_SAMPLE),
            )

        counts, pending, latencies = await self._db.read(run)
        delivered, failed, abandoned = (counts.get(s, 0) for s in (store.DELIVERED, store.FAILED, store.ABANDONED))
        finished = delivered + failed + abandoned
        return WebhookMetrics(
            window_minutes=window_minutes,
            created=sum(counts.values()),
            delivered=delivered,
            failed=failed,
            abandoned=abandoned,
            pending=pending,
            success_rate=round(delivered / finished, 4) if finished else None,
            p95_delivery_seconds=p95(latencies),
        )

    async def replay(self, principal: Principal, delivery_id: str) -> ReplayedDelivery:
        policy.require(principal, "replay_webhook_delivery")
        now = self._clock()

        def run(conn: Connection) -> WebhookDeliveryOut:
            row = store.delivery(conn, delivery_id)
            if row is None:
                raise WebhookDeliveryNotFound(
                    f"No webhook delivery {delivery_id!r}. Delivery ids look like msg_…; find them with "
                    "list_webhook_deliveries.",
                    details={"delivery_id": delivery_id},
                    next_actions=["list_webhook_deliveries"],
                )
            endpoint = store.endpoint(conn, row["endpoint_id"])
            if endpoint is None or endpoint["status"] != store.ACTIVE:
                raise InvalidState(
                    f"Delivery {delivery_id} belongs to deactivated endpoint {row['endpoint_id']}; nothing is sent "
                    "there any more. Register the receiver again with create_webhook_endpoint.",
                    details={"delivery_id": delivery_id, "endpoint_id": row["endpoint_id"]},
                    next_actions=["create_webhook_endpoint"],
                )
            store.replay(conn, delivery_id, now)
            replayed = store.delivery(conn, delivery_id)
            assert replayed is not None
            return _delivery_out(replayed)

        view = await self._db.write(run)
        self._poke(frozenset({DELIVERIES_QUEUED}))
        return ReplayedDelivery(
            delivery=view,
            message="Queued for sending again now, with the same webhook-id and a fresh set of attempts. "
            "Check the outcome with list_webhook_deliveries.",
        )

    async def purge(self, batch: int = 500) -> int:
        """Forget events (and their deliveries) older than the retention period once none is pending."""
        before = self._clock() - self._retention
        return await self._db.write(lambda conn: store.purge_finished(conn, before, batch))

    # ------------------------------------------------------------ the dispatcher
    async def dispatch_once(self) -> int:
        """Claim the due deliveries (one batch), send them concurrently, record the outcomes.
        Returns how many were attempted."""
        now = self._clock()
        if not await self._db.read(lambda conn: store.any_due(conn, now), quick=True):
            return 0
        token = secrets.token_hex(16)
        lease_until = now + self._lease
        claimed = await self._db.write(lambda conn: store.claim_due(conn, now, lease_until, token, self._batch))
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
            secret = self._secrets.open(row["secret"])
            body = self._secrets.open(row["body"])  # the event body is sealed like buyer data
        except SecretUnavailable as exc:  # never send unsigned: wait (and retry) until the key is fixed
            log.error("webhook %s not sent: %s", row["id"], exc)
            return self._retry_or_abandon(row, {"last_status_code": None}, f"not sent: {exc}", None)
        headers = {
            "content-type": "application/json",
            "user-agent": "mcp-checkout-webhooks/1",
            "webhook-id": row["id"],
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, row["id"], timestamp, body),
        }
        try:
            async with self._http().stream("POST", row["url"], content=body.encode(), headers=headers) as resp:
                code = resp.status_code
                if code in (429, 503):
                    retry_after = _retry_after(resp.headers.get("retry-after"), started)
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
        if code is not None and code not in _RETRY_STATUSES:
            reason = "redirect not followed; register the final URL" if 300 <= code < 400 else "refused by receiver"
            return {**values, "status": store.FAILED, "next_attempt_at": None, "last_error": f"HTTP {code}: {reason}"}
        return self._retry_or_abandon(row, values, error or f"HTTP {code}", retry_after)

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
        stop_listening = self._db.after_commit(self._poke)
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

    def _poke(self, changed: frozenset[str]) -> None:
        if DELIVERIES_QUEUED in changed and self._wake is not None:
            self._wake.set()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
