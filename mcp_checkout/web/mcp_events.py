"""Resumable MCP streams: a bounded, in-process replay buffer for streamable HTTP sessions.

With an event store the SDK sends a priming event (an id and a ``retry`` hint) first on each SSE
stream, so a client whose connection drops during a long call (``wait_for_order``) reconnects with
``Last-Event-ID`` and receives what it missed, then the answer. Sessions live in one process, so the
buffer does too. Event ids are random: one shared buffer serves every session, and an id is the only
thing a client presents to replay.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.types import JSONRPCMessage


@dataclass(frozen=True, slots=True)
class _Event:
    id: EventId
    message: JSONRPCMessage | None  # None: the priming event
    at: float


class BoundedEventStore(EventStore):
    def __init__(
        self,
        *,
        max_streams: int = 1_000,
        max_events_per_stream: int = 200,
        ttl_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._streams: OrderedDict[StreamId, deque[_Event]] = OrderedDict()
        self._stream_of: dict[EventId, StreamId] = {}
        self._max_streams = max_streams
        self._max_events = max_events_per_stream
        self._ttl = ttl_seconds
        self._clock = clock

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        now = self._clock()
        self._expire(now)
        events = self._streams.get(stream_id)
        if events is None:
            events = self._streams[stream_id] = deque()
        self._streams.move_to_end(stream_id)
        event = _Event(id=secrets.token_urlsafe(18), message=message, at=now)
        events.append(event)
        self._stream_of[event.id] = stream_id
        while len(events) > self._max_events:
            self._stream_of.pop(events.popleft().id, None)
        while len(self._streams) > self._max_streams:
            self._drop(next(iter(self._streams)))
        return event.id

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        self._expire(self._clock())
        stream_id = self._stream_of.get(last_event_id)
        if stream_id is None:
            return None
        seen = False
        for event in list(self._streams.get(stream_id, ())):
            if seen and event.message is not None:
                await send_callback(EventMessage(event.message, event.id))
            seen = seen or event.id == last_event_id
        return stream_id

    def _expire(self, now: float) -> None:
        while self._streams:
            stream_id, events = next(iter(self._streams.items()))
            if events and now - events[-1].at < self._ttl:
                return
            self._drop(stream_id)

    def _drop(self, stream_id: StreamId) -> None:
        for event in self._streams.pop(stream_id, ()):
            self._stream_of.pop(event.id, None)
