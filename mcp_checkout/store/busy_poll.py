"""Keep the event loop polling, not sleeping, while a PostgreSQL round trip is awaited.

With nothing else ready, asyncio's loop sleeps in ``epoll_wait`` for the length of every round trip of a request
served alone. On a virtual machine the idle vCPU then halts, and the wake-up, and the cold caches the reply comes
back to, cost more than the rest of our work on a hot read (get_product through MCP on PostgreSQL: ~90 µs of
~400; bench/README.md, fourth pass). While a :class:`BusyPoll` is on, a callback that schedules itself again on
every turn keeps the loop ready, so it polls its sockets (``epoll_wait`` with no timeout) instead of sleeping.
It is the trade Linux's busy polling (``SO_BUSY_POLL``) makes, CPU for latency, for at most ``seconds`` after each
statement starts (a slow query or a distant server is then waited for asleep as before), and only when the loop
has nothing else to do: a busy loop never sleeps anyway, and one callback serves all the round trips in flight.

PostgreSQL only: SQLite work runs on the loop's thread or in a worker thread that needs the GIL the polling
thread would hold.
"""

from __future__ import annotations

import asyncio
import os
import time


class BusyPoll:
    """One per :class:`~mcp_checkout.store.db.Database`: :meth:`start` and :meth:`stop` around each piece of
    database work, :meth:`extend` as each of its statements starts."""

    __slots__ = ("_loop", "_seconds", "_ticking", "_until", "_waiting")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._until = 0.0
        self._waiting = 0
        self._ticking = False

    def start(self) -> None:
        """Database work begins on the running loop: poll for up to ``seconds`` (and as :meth:`extend` says)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (tests run several): whatever ticked on the old one is gone
            self._loop = loop
            self._ticking = False
        self._waiting += 1
        self._until = time.monotonic() + self._seconds
        if not self._ticking:
            self._ticking = True
            loop.call_soon(self._tick)

    def extend(self) -> None:
        """A statement starts: poll for up to ``seconds`` from now, if any work is in flight."""
        if self._waiting:
            self._until = time.monotonic() + self._seconds

    def stop(self) -> None:
        """Database work ended (returned or raised): the loop sleeps again once no work is in flight."""
        self._waiting -= 1

    def _tick(self) -> None:
        if self._waiting > 0 and time.monotonic() < self._until and self._loop is not None:
            os.sched_yield()  # a process waiting for this CPU (the database's own, on a small machine) runs first
            self._loop.call_soon(self._tick)
        else:
            self._ticking = False
