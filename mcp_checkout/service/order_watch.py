"""Waiting for orders to change: ``wait_for_order`` and ``orders://`` resource subscriptions.

One :class:`OrderWatch` per process (in ``Services``) keeps, in memory, who waits for which orders.
The database stays the ground truth, because the change an agent waits for (a payment) may land in
another process (a webhook on another worker, another server on the same database). A change is heard
two ways:

* at once, when a write transaction of THIS process that added to an order's status history commits
  (``store.orders.add_event`` notes the order; ``Database.after_commit`` tells us after the commit);
* from any process, by polling: while anything is watched, :meth:`OrderWatch.run` reads the newest
  status-history id of every watched order (one indexed query for all of them) each ``poll_interval``.
  Nothing is polled while nothing is watched.

Waiters hold no database connection while they wait; each wake costs one read of the order.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio

from mcp_checkout.domain import Clock, OrderStatus, Principal, reachable_statuses
from mcp_checkout.errors import CheckoutError
from mcp_checkout.service.orders import OrderService
from mcp_checkout.service.views import OrderOut, OrderWaitOut
from mcp_checkout.store import orders as order_store
from mcp_checkout.store.db import Database

log = logging.getLogger(__name__)

POLL_INTERVAL_SECONDS = 0.5
HEARTBEAT_SECONDS = 5.0
NOTIFY_TIMEOUT_SECONDS = 5.0
MAX_WAIT_SECONDS = 60

Listener = Callable[[str], Awaitable[None]]
Progress = Callable[[float, float, str], Awaitable[None]]


@dataclass(eq=False)
class _Interest:
    """One waiter (woken through ``event``) or one subscription (told through ``listener``)."""

    order_id: str
    listener: Listener | None = None
    event: anyio.Event | None = field(default=None)


class OrderWatch:
    def __init__(
        self,
        db: Database,
        orders: OrderService,
        clock: Clock,
        *,
        poll_interval: float = POLL_INTERVAL_SECONDS,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> None:
        self._db = db
        self._orders = orders
        self._clock = clock
        self._poll_interval = poll_interval
        self._heartbeat = heartbeat
        self._interests: dict[str, set[_Interest]] = {}
        self._versions: dict[str, int] = {}  # watched order → newest status-history id seen
        self._dirty: set[str] = set()  # changed by this process; run() re-reads them and tells subscribers
        self._kick: anyio.Event | None = None  # wakes run(); made on the event loop, never at import
        self._runner: anyio.Lock | None = None
        self._stopping = False
        db.after_commit(self._committed)

    @property
    def watched(self) -> int:
        """How many orders are watched now (for tests and diagnostics)."""
        return len(self._interests)

    # ------------------------------------------------------------ use cases
    async def wait_for(
        self,
        principal: Principal,
        order_id: str,
        statuses: Collection[OrderStatus],
        seconds: float,
        progress: Progress | None = None,
    ) -> OrderWaitOut:
        """Return as soon as the order is in one of ``statuses`` (or can no longer get there), or
        its current state after ``seconds``."""
        wanted = frozenset(statuses)
        started = anyio.current_time()
        deadline = started + min(seconds, MAX_WAIT_SECONDS)
        view = await self._orders.get(principal, order_id)  # visibility first: order_not_found for others'
        if self._settled(view, wanted):
            return self._outcome(view, wanted, started)
        interest = _Interest(order_id, event=anyio.Event())
        async with self._watching(interest):
            view = await self._orders.get(principal, order_id)  # it may have changed before we watched
            next_beat = started + self._heartbeat
            while not (self._settled(view, wanted) or self._stopping) and (now := anyio.current_time()) < deadline:
                with anyio.move_on_after(min(deadline, next_beat, now + self._until_expiry(view)) - now):
                    await self._event_of(interest).wait()
                interest.event = anyio.Event()  # before the read: a change after it wakes us again
                view = await self._orders.get(principal, order_id)  # also applies a due expiry
                if anyio.current_time() >= next_beat:
                    next_beat += self._heartbeat
                    if progress is not None:
                        await progress(round(anyio.current_time() - started, 1), seconds, view.status)
        return self._outcome(view, wanted, started)

    async def subscribe(self, principal: Principal, order_id: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener(order_id)`` after each status change of the order (from :meth:`run`, so only
        while one runs). Raises order_not_found when the caller may not see the order. Returns the
        function that ends the subscription."""
        await self._orders.get(principal, order_id)
        interest = _Interest(order_id, listener=listener)
        await self._add(interest)
        return lambda: self._remove(interest)

    def stop_waiting(self) -> None:
        """The process is shutting down: every waiter returns its order as it is now (and new waits
        return at once), so running calls can answer before the server stops."""
        self._stopping = True
        for interests in self._interests.values():
            for interest in interests:
                if interest.event is not None:
                    interest.event.set()

    # ------------------------------------------------------------ the per-process loop
    async def run(self) -> None:
        """Tell subscribers about changes and poll for other processes' changes, until cancelled.
        One runs per process: a second concurrent ``run()`` stands by until the first ends."""
        if self._runner is None:
            self._runner = anyio.Lock()
        async with self._runner:
            next_poll = anyio.current_time()
            while True:
                kick = self._kick = anyio.Event()
                if not self._dirty:
                    idle = max(next_poll - anyio.current_time(), 0) if self._interests else math.inf
                    with anyio.move_on_after(idle):
                        await kick.wait()
                ids = set(self._dirty)
                self._dirty.clear()
                if self._interests and anyio.current_time() >= next_poll:
                    ids.update(self._interests)
                    next_poll = anyio.current_time() + self._poll_interval
                if ids:
                    try:
                        await self._check(ids)
                    except CheckoutError as exc:  # the database is away: try again at the next poll
                        log.warning("order watch: poll failed: %s", exc.code)
                        await anyio.sleep(self._poll_interval)

    # ------------------------------------------------------------ internals
    @staticmethod
    def _settled(view: OrderOut, wanted: frozenset[OrderStatus]) -> bool:
        """Reached, or no longer reachable (waiting longer could not help)."""
        return not (reachable_statuses(OrderStatus(view.status)) & wanted) or view.status in wanted

    def _outcome(self, view: OrderOut, wanted: frozenset[OrderStatus], started: float) -> OrderWaitOut:
        waited = round(anyio.current_time() - started, 2)
        reached = view.status in wanted
        wanted_text = ", ".join(sorted(wanted))
        if reached:
            message = f"Order {view.number} is {view.status}."
        elif self._stopping:
            message = (
                f"Order {view.number} is {view.status}; this server is restarting. Call wait_for_order again "
                "in a few seconds to keep waiting."
            )
        elif not reachable_statuses(OrderStatus(view.status)) & wanted:
            message = (
                f"Order {view.number} is {view.status} and can no longer become {wanted_text}. "
                "Tell the user; for a new attempt create a new order or checkout link."
            )
        else:
            message = (
                f"Order {view.number} is still {view.status} after {waited:g}s. Call wait_for_order again to keep "
                "waiting, or tell the user the payment has not arrived yet."
            )
        return OrderWaitOut(reached=reached, waited_seconds=waited, message=message, order=view)

    def _until_expiry(self, view: OrderOut) -> float:
        """Seconds until an unpaid order's deadline (then re-read: reading applies the expiry)."""
        if view.expires_at is None:
            return math.inf
        return max((view.expires_at - self._clock()).total_seconds() + 0.05, 0.25)

    @staticmethod
    def _event_of(interest: _Interest) -> anyio.Event:
        assert interest.event is not None
        return interest.event

    @asynccontextmanager
    async def _watching(self, interest: _Interest) -> AsyncIterator[None]:
        await self._add(interest)
        try:
            yield
        finally:
            self._remove(interest)

    async def _add(self, interest: _Interest) -> None:
        order_id = interest.order_id
        if order_id not in self._versions:
            # The version to compare polls against, read BEFORE the caller reads the order: a change
            # after this read is seen by the next poll, one before it by the caller's own read.
            versions = await self._db.read(
                lambda conn: order_store.last_event_ids(conn, [order_id]), quick=True, one_statement=True
            )
            self._versions.setdefault(order_id, versions.get(order_id, 0))
        self._interests.setdefault(order_id, set()).add(interest)
        self._wake()  # run() starts polling if it was idle

    def _remove(self, interest: _Interest) -> None:
        order_id = interest.order_id
        watchers = self._interests.get(order_id)
        if watchers is None:
            return
        watchers.discard(interest)
        if not watchers:
            del self._interests[order_id]
            self._versions.pop(order_id, None)

    def _wake(self) -> None:
        if self._kick is not None:
            self._kick.set()

    def _committed(self, order_ids: frozenset[str]) -> None:
        """A write transaction of this process committed status changes of ``order_ids``."""
        for order_id in order_ids & self._interests.keys():
            for interest in self._interests[order_id]:
                if interest.event is not None:
                    interest.event.set()  # waiters: at once
            self._dirty.add(order_id)  # subscribers: from run(), which also records the new version
            self._wake()

    async def _check(self, order_ids: Collection[str]) -> None:
        ids = sorted(order_ids)
        versions = await self._db.read(
            lambda conn: order_store.last_event_ids(conn, ids), quick=len(ids) <= 50, one_statement=True
        )
        for order_id, version in versions.items():
            seen = self._versions.get(order_id)
            if seen is None or version <= seen:
                continue  # unwatched meanwhile, or unchanged
            self._versions[order_id] = version
            await self._tell(order_id)

    async def _tell(self, order_id: str) -> None:
        for interest in list(self._interests.get(order_id, ())):
            if interest.event is not None:
                interest.event.set()
            if interest.listener is not None:
                with anyio.move_on_after(NOTIFY_TIMEOUT_SECONDS):
                    try:
                        await interest.listener(order_id)
                    except Exception:  # one subscriber's broken connection must not stop the others
                        log.warning("order watch: could not notify a subscriber of %s", order_id, exc_info=True)
