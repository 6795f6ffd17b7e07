"""The replay buffer behind resumable MCP streams: bounded per stream, in streams and in time."""

from __future__ import annotations

from mcp.server.streamable_http import EventMessage
from mcp.types import JSONRPCNotification

from mcp_checkout.web.mcp_events import BoundedEventStore


def note(n: int) -> JSONRPCNotification:
    return JSONRPCNotification(jsonrpc="2.0", method="notifications/progress", params={"n": n})


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def replay(store: BoundedEventStore, after: str) -> tuple[str | None, list[int]]:
    sent: list[EventMessage] = []

    async def send(event: EventMessage) -> None:
        sent.append(event)

    stream = await store.replay_events_after(after, send)
    return stream, [event.message.params["n"] for event in sent]  # type: ignore[union-attr,index]


async def test_replays_only_what_followed_on_the_same_stream() -> None:
    store = BoundedEventStore()
    primer = await store.store_event("a", None)
    ids = [await store.store_event("a", note(n)) for n in range(3)]
    await store.store_event("b", note(99))
    assert await replay(store, primer) == ("a", [0, 1, 2])
    assert await replay(store, ids[1]) == ("a", [2])
    assert await replay(store, "unknown") == (None, [])
    assert len(set(ids)) == 3 and all(len(event_id) >= 24 for event_id in ids)  # random, not a counter


async def test_old_events_streams_and_idle_streams_are_dropped() -> None:
    clock = Clock()
    store = BoundedEventStore(max_streams=2, max_events_per_stream=2, ttl_seconds=60, clock=clock)
    first = await store.store_event("a", note(0))
    await store.store_event("a", note(1))
    await store.store_event("a", note(2))
    assert (await replay(store, first))[0] is None  # pushed out of its stream's window
    b = await store.store_event("b", note(0))
    await store.store_event("c", note(0))
    assert (await replay(store, b))[0] == "b"
    await store.store_event("d", note(0))  # a third stream: the least recently written one goes
    assert (await replay(store, b))[0] is None
    c_late = await store.store_event("c", note(1))
    clock.now = 61
    assert (await replay(store, c_late))[0] is None
