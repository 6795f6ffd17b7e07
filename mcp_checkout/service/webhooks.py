"""Outbound webhooks, the merchant's side: endpoints (create, list, deactivate, the live-mode check of
saved ones) and deliveries (list, metrics, replay, purge of old history).

The jobs live beside it: the URL rules in ``webhook_urls``, signing in ``webhook_signing``, the outbox
written in the order's own transaction in ``webhook_outbox``, and the sender in ``webhook_dispatch``
(one :class:`~mcp_checkout.service.webhook_dispatch.Dispatcher` per process, reached through this
service as ``services.webhooks``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, RowMapping

from mcp_checkout import domain
from mcp_checkout.domain import Clock, Principal
from mcp_checkout.errors import (
    InvalidCursor,
    InvalidInput,
    InvalidState,
    WebhookDeliveryNotFound,
    WebhookEndpointNotFound,
)
from mcp_checkout.service import audit, policy
from mcp_checkout.service.order_view import current_view
from mcp_checkout.service.secretbox import SecretBox
from mcp_checkout.service.webhook_dispatch import DeliveryFormat, Dispatcher
from mcp_checkout.service.webhook_outbox import DELIVERIES_QUEUED, EVENT_TYPES, follow_order
from mcp_checkout.service.webhook_signing import new_secret
from mcp_checkout.service.webhook_urls import Resolver, check_url, refuse_for_live, system_resolver, url_refusal
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
from mcp_checkout.store.db import Database

log = logging.getLogger(__name__)

MAX_DESCRIPTION = 500
MAX_WINDOW_MINUTES = 60 * 24 * 31
_LATENCY_SAMPLE = 50_000


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
    """Endpoints and deliveries for merchants; ``dispatcher`` sends (``dispatch_forever`` in each serving process)."""

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
        self._resolver = resolver
        self._retention = retention
        self._resolve_timeout = min(timeout_seconds, 5.0)
        self.dispatcher = Dispatcher(
            db,
            clock,
            secrets=secrets,
            live=live,
            resolver=resolver,
            max_attempts=max_attempts,
            timeout_seconds=timeout_seconds,
            backoff_base_seconds=backoff_base_seconds,
            backoff_cap_seconds=backoff_cap_seconds,
            poll_interval_seconds=poll_interval_seconds,
            batch_size=batch_size,
        )

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
        scope = domain.cursor_scope({"e": endpoint_id, "s": status, "o": order_id})
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
        self.dispatcher.poke(frozenset({DELIVERIES_QUEUED}))
        return ReplayedDelivery(
            delivery=view,
            message="Queued for sending again now, with the same webhook-id and a fresh set of attempts. "
            "Check the outcome with list_webhook_deliveries.",
        )

    async def purge(self, batch: int = 500) -> int:
        """Forget events (and their deliveries) older than the retention period once none is pending."""
        before = self._clock() - self._retention
        return await self._db.write(lambda conn: store.purge_finished(conn, before, batch))

    # ------------------------------------------------------------ platforms following their orders
    async def follow_order(self, order_id: str, url: str, kind: str = store.UCP) -> bool:
        """Send ``order_id``'s events to the platform's webhook ``url`` (an endpoint of ``kind``, one per URL,
        made on first use), starting with the order as it is now. False if it already followed it.
        A URL the webhook rules refuse is ``invalid_input`` and nothing is registered."""
        url = check_url(url, live=self._live)
        now = self._clock()

        def run(conn: Connection) -> bool:
            endpoint_id = store.platform_endpoint(conn, url)
            if endpoint_id is None:
                endpoint_id = domain.new_id("we")
                store.insert_endpoint(conn, {
                    "id": endpoint_id, "url": url, "kind": kind, "event_types": list(EVENT_TYPES),
                    "description": "UCP platform: events of the orders it placed (RFC 9421 signed)",
                    "secret": self._secrets.seal("none: signed with the business's signing key"),
                    "status": store.ACTIVE, "created_at": now, "deactivated_at": None,
                })  # fmt: skip
                log.info("webhook endpoint %s registered for a UCP platform", endpoint_id)
            return follow_order(conn, order_id, endpoint_id, now, lambda: current_view(conn, order_id))

        return await self._db.write(run)

    def register_format(self, kind: str, delivery_format: DeliveryFormat) -> None:
        self.dispatcher.register_format(kind, delivery_format)

    # ------------------------------------------------------------ the dispatcher of this process
    async def dispatch_once(self) -> int:
        return await self.dispatcher.dispatch_once()

    async def dispatch_forever(self) -> None:
        await self.dispatcher.dispatch_forever()

    async def close(self) -> None:
        await self.dispatcher.close()
