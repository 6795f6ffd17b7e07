"""Progress of long work (a catalog import) reported to an ``async (done, total)`` callback.

The work runs in a worker thread or a database greenlet and only writes two integers; a pump on the
event loop sends them at most every ``interval`` seconds, and once more at the end.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

T = TypeVar("T")
ProgressCallback = Callable[[int, int], Awaitable[None]]
"""``await progress(done, total)``: called from the event loop, at most every ~0.2 s and once at the end."""


class Progress:
    """Written by the work (any thread), read by the pump."""

    def __init__(self) -> None:
        self.done = 0
        self.total = 0
        self._sent = (-1, -1)

    async def send(self, callback: ProgressCallback) -> None:
        current = (self.done, self.total)
        if current != self._sent and current[1] > 0:
            self._sent = current
            await callback(*current)

    async def pump(self, callback: ProgressCallback, interval: float) -> None:
        while True:
            await anyio.sleep(interval)
            try:
                await self.send(callback)
            except Exception:  # a progress consumer that fails must not fail the work
                return


async def with_progress(
    work: Callable[[], Awaitable[T]], tracker: Progress, callback: ProgressCallback | None, interval: float
) -> T:
    """``await work()`` while pumping ``tracker`` to ``callback`` (if any); the last report says done."""
    if callback is None:
        return await work()
    outcome: list[T] = []
    failure: list[Exception] = []
    async with anyio.create_task_group() as group:
        group.start_soon(tracker.pump, callback, interval)
        try:
            outcome.append(await work())
        except Exception as exc:
            failure.append(exc)
        finally:
            group.cancel_scope.cancel()
    if failure:
        raise failure[0]
    tracker.done = tracker.total
    await tracker.send(callback)
    return outcome[0]
