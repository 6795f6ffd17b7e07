"""Subscriptions to ``orders://{order_id}``: a client hears ``notifications/resources/updated`` when
the order's status changes (paid, partially_fulfilled, fulfilled, canceled, expired, refunded).

Two protocol eras, one source of changes (``services.order_watch``):

* 2025-11-25 and earlier (``mcp.Client(mode="legacy")``, Claude Desktop, the Inspector):
  ``resources/subscribe`` / ``resources/unsubscribe``. A subscription belongs to the connection (the
  session) and ends with it. Registering the handler is what makes the SDK advertise
  ``resources.subscribe: true`` at these versions.
* 2026-07-28: ``resources/subscribe`` is gone; a client opens a ``subscriptions/listen`` stream naming
  the URIs. The SDK serves it (and advertises ``subscribe``) on its own, but would accept any URI and
  never hear of an order change: we check the caller may see each order and publish its changes on
  the server's subscription bus while a stream for it is open.

Subscribing to an order the caller may not see is an error (``order_not_found``), as reading it is.
Only ``orders://`` resources change; subscribing to anything else is refused. Errors are raised as
``CheckoutError``s and mapped once, by the gate every request passes (tools/gate.py).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server import MCPServer
from mcp.server.context import ServerRequestContext
from mcp.server.subscriptions import ResourceUpdated, SubscriptionBus
from mcp.types import EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams
from mcp_types import SubscriptionsListenRequestParams, SubscriptionsListenResult
from pydantic import BaseModel

from mcp_checkout.errors import InvalidInput
from mcp_checkout.service.order_watch import OrderWatch
from mcp_checkout.tools.context import AppState, caller

ORDER_URI = re.compile(r"^orders://(ord_[A-Za-z0-9]{1,60})$")
MAX_PER_SESSION = 100
_STATE_KEY = "mcp_checkout.order_subscriptions"

ListenHandler = Callable[[ServerRequestContext[Any, Any], Any], Awaitable[Any]]


def _order_id(uri: str) -> str:
    match = ORDER_URI.match(uri)
    if match is None:
        raise InvalidInput(
            f"Only orders://{{order_id}} resources can be subscribed to, not {uri[:100]!r}.",
            details={"uri": uri[:200]},
        )
    return match.group(1)


def _state(ctx: ServerRequestContext[Any, Any]) -> AppState:
    state = ctx.lifespan_context
    if not isinstance(state, AppState):
        raise RuntimeError("server lifespan did not provide AppState")
    return state


def register(server: MCPServer[Any], *, legacy: bool = True) -> None:
    """``legacy``: serve ``resources/subscribe`` (only where sessions outlive a request)."""
    # The SDK has no public way to add these handlers to an MCPServer; its low-level server has.
    lowlevel = server._lowlevel_server

    async def subscribe(ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        uri = str(params.uri)
        order_id = _order_id(uri)
        state = _state(ctx)
        session = ctx.session
        connection = session._connection  # the per-session object: its state and teardown outlive this request
        subscriptions: dict[str, Callable[[], None]] | None = connection.state.get(_STATE_KEY)
        if subscriptions is None:
            subscriptions = connection.state[_STATE_KEY] = {}
            connection.exit_stack.callback(_end_all, subscriptions)  # the session ended: so do its subscriptions
        if uri in subscriptions:
            return EmptyResult()
        if len(subscriptions) >= MAX_PER_SESSION:
            raise InvalidInput(f"At most {MAX_PER_SESSION} subscriptions per session; unsubscribe first.")

        async def tell(_order_id: str) -> None:
            await session.send_resource_updated(uri)

        end = await state.services.order_watch.subscribe(caller(state), order_id, tell)  # order_not_found if not theirs
        if uri in subscriptions:  # the same subscribe twice at once: keep one
            end()
        else:
            subscriptions[uri] = end
        return EmptyResult()

    async def unsubscribe(ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams) -> EmptyResult:
        subscriptions = ctx.session._connection.state.get(_STATE_KEY) or {}
        end = subscriptions.pop(str(params.uri), None)
        if end is not None:
            end()
        return EmptyResult()

    if legacy:
        lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
        lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)
    listen = lowlevel.get_request_handler("subscriptions/listen")
    if listen is not None:
        lowlevel.add_request_handler(
            "subscriptions/listen", listen.params_type, _OrderListen(listen.handler, server._subscriptions)
        )


def _end_all(subscriptions: dict[str, Callable[[], None]]) -> None:
    for end in subscriptions.values():
        end()
    subscriptions.clear()


class _OrderListen:
    """Wraps the SDK's ``subscriptions/listen`` handler: while a stream names ``orders://`` URIs, those
    orders' changes are published on the bus (once per URI, however many streams name it)."""

    def __init__(self, inner: ListenHandler, bus: SubscriptionBus) -> None:
        self._inner = inner
        self._bus = bus
        # (watch, uri) → (open streams, end); the watch belongs to the lifespan's services (one per process)
        self._held: dict[tuple[OrderWatch, str], tuple[int, Callable[[], None]]] = {}

    async def __call__(self, ctx: ServerRequestContext[Any, Any], params: BaseModel) -> SubscriptionsListenResult:
        assert isinstance(params, SubscriptionsListenRequestParams)
        uris = sorted({uri for uri in params.notifications.resource_subscriptions or () if uri.startswith("orders:")})
        state = _state(ctx)
        who = caller(state)
        held: list[tuple[OrderWatch, str]] = []
        try:
            for uri in uris:
                order_id = _order_id(uri)
                await state.services.orders.get(who, order_id)  # this caller may see it (order_not_found if not)
                await self._hold(state, uri, order_id)
                held.append((state.services.order_watch, uri))
            result: SubscriptionsListenResult = await self._inner(ctx, params)
            return result
        finally:
            for key in held:
                self._release(key)

    async def _hold(self, state: AppState, uri: str, order_id: str) -> None:
        key = (state.services.order_watch, uri)
        if key not in self._held:

            async def publish(_order_id: str) -> None:
                await self._bus.publish(ResourceUpdated(uri=uri))

            end = await state.services.order_watch.subscribe(caller(state), order_id, publish)
            if key in self._held:  # another stream got there first while we awaited
                end()
            else:
                self._held[key] = (0, end)
        count, end = self._held[key]
        self._held[key] = (count + 1, end)

    def _release(self, key: tuple[OrderWatch, str]) -> None:
        count, end = self._held[key]
        if count > 1:
            self._held[key] = (count - 1, end)
        else:
            del self._held[key]
            end()
