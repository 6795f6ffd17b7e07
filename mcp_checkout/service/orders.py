"""Order use cases: exactly-once creation, look-ups, cancellation and expiry."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping

from mcp_checkout import domain
from mcp_checkout.domain import Actor, Clock, Money, OrderStatus, Principal, StockState
from mcp_checkout.errors import (
    CartAlreadyOrdered,
    CartEmpty,
    CheckoutError,
    CurrencyMismatch,
    IdempotencyInFlight,
    InvalidInput,
    OrderNotFound,
)
from mcp_checkout.service import audit, policy, webhook_outbox
from mcp_checkout.service.carts import cart_not_found, priced_lines, sku_not_found, visible_cart
from mcp_checkout.service.idempotency import Idempotency, Keyed, Operation
from mcp_checkout.service.views import (
    CheckoutState,
    CreatedBy,
    MoneyOut,
    OrderIssue,
    OrderLineOut,
    OrderLookup,
    OrderOut,
    PaymentState,
    ShippingAddressOut,
    StatusChange,
)
from mcp_checkout.store import carts as cart_store
from mcp_checkout.store import catalog as catalog_store
from mcp_checkout.store import checkout as checkout_store
from mcp_checkout.store import orders as order_store
from mcp_checkout.store import payments as payment_store
from mcp_checkout.store.db import Database

log = logging.getLogger(__name__)

LOOKUP_LIMIT = 20


CREATE_ORDER = Operation("create_order", makes="order", id_field="order_id", look_up="get_order")


@dataclass(frozen=True)
class CreateOrder:
    """A validated create_order request. ``sent``: the fields the client sent (see KeyedCommand)."""

    idempotency_key: str
    cart_id: str | None = None
    items: Sequence[tuple[str, int]] | None = None
    email: str | None = None
    merchant_reference_id: str | None = None
    shipping_address: Mapping[str, Any] | None = None
    sent: Collection[str] | None = None


AfterPlace = Callable[[Connection, RowMapping], None]


def order_not_found(order_id: str) -> OrderNotFound:
    return OrderNotFound(
        f"No order {order_id!r}. Order ids look like ord_…; find orders by your reference with lookup_orders.",
        details={"order_id": order_id},
        next_actions=["lookup_orders"],
    )


@dataclass(frozen=True)
class _Written:
    """What a transaction just wrote for a new order, so its view need not read it back."""

    items: Sequence[Mapping[str, Any]]
    history: Sequence[Mapping[str, Any]]


def order_lines(items: Sequence[Mapping[Any, Any]], currency: str) -> list[OrderLineOut]:
    """An order's lines as shown to agents and buyers, from its stored lines."""
    return [
        OrderLineOut(
            sku=item["sku"],
            title=item["title"],
            quantity=item["quantity"],
            unit_price=MoneyOut.of(Money(item["unit_price_minor"], currency)),
            line_total=MoneyOut.of(Money(item["line_total_minor"], currency)),
        )
        for item in items
    ]


def order_view(conn: Connection, order: Mapping[Any, Any], written: _Written | None = None) -> OrderOut:
    """The order as tools show it. ``written``: the order was created in this very transaction, with
    these lines and this history, and nothing else refers to it yet (no link, payment or issue)."""
    currency = order["currency"]
    items = written.items if written else order_store.items(conn, order["id"])
    history = written.history if written else order_store.events(conn, order["id"])
    status = OrderStatus(order["status"])
    address = order["shipping_address"]
    return OrderOut(
        order_id=order["id"],
        number=order["number"],
        status=status.value,
        currency=currency,
        lines=order_lines(items, currency),
        subtotal=MoneyOut.of(Money(order["subtotal_minor"], currency)),
        total=MoneyOut.of(Money(order["total_minor"], currency)),
        email=order["email"],
        merchant_reference_id=order["merchant_reference_id"],
        shipping_address=ShippingAddressOut.model_validate(address) if address else None,
        cart_id=order["cart_id"],
        stock=order["stock_state"],
        created_at=order["created_at"],
        updated_at=order["updated_at"],
        expires_at=order["expires_at"] if status is OrderStatus.PENDING_PAYMENT else None,
        created_by=CreatedBy(principal_id=order["principal_id"], client=order["client_name"]),
        checkout=None if written else _checkout_state(conn, order["id"]),
        payment=None if written else _payment_state(conn, order["id"]),
        issues=[]
        if written
        else [
            OrderIssue(code=issue["code"], message=issue["message"], at=issue["at"])
            for issue in payment_store.issues_of_order(conn, order["id"])
        ],
        status_history=[
            StatusChange(
                from_status=event["from_status"],
                to_status=event["to_status"],
                at=event["at"],
                actor=event["actor"],
                reason=event["reason"],
            )
            for event in history
        ],
    )


def _checkout_state(conn: Connection, order_id: str) -> CheckoutState | None:
    links = checkout_store.links_of_order(conn, order_id)
    if not links:
        return None
    link = links[0]
    session = checkout_store.session_of_link(conn, link["id"])
    return CheckoutState(
        link_id=link["id"],
        link_status=link["status"],
        session_status=session["status"] if session else None,
        merchant_reference_id=link["merchant_reference_id"],
        expires_at=link["expires_at"],
    )


def _payment_state(conn: Connection, order_id: str) -> PaymentState | None:
    payment = payment_store.latest_payment(conn, order_id)
    if payment is None:
        return None
    currency = payment["currency"]
    return PaymentState(
        gateway=payment["gateway"],
        intent_id=payment["intent_id"],
        status=payment["status"],
        attempt=payment["attempt"],
        amount_received=MoneyOut.of(Money(payment["amount_received_minor"], currency)),
        refunded=MoneyOut.of(Money(payment["refunded_minor"], currency)),
        last_error=payment["last_error"],
    )


def visible_order(conn: Connection, principal: Principal, order_id: str, *, lock: bool = False) -> RowMapping:
    """The order, if this caller may see it (buyers see their own; merchants see all)."""
    order = order_store.get(conn, order_id, for_update=lock)
    if order is None or not policy.may_access(principal, order["principal_id"]):
        raise order_not_found(order_id)
    return order


def transition(
    conn: Connection,
    order: RowMapping,
    target: OrderStatus,
    *,
    actor: Actor,
    principal_id: str | None,
    reason: str | None,
    now: datetime,
) -> None:
    """Apply one legal status change, its stock effect and its history entry."""
    current = OrderStatus(order["status"])
    domain.check_transition(order["id"], current, target)
    stock_state = StockState(order["stock_state"])
    effect = domain.STOCK_EFFECT.get(target)
    if effect is not None and stock_state is StockState.RESERVED:
        quantities = _quantities(order_store.items(conn, order["id"]))
        if effect is StockState.RELEASED:
            catalog_store.release_stock(conn, quantities, now)
        else:
            catalog_store.commit_stock(conn, quantities, now)
        stock_state = effect
    if not order_store.set_status(conn, order["id"], current.value, target.value, stock_state.value, now):
        raise IdempotencyInFlight(
            f"Order {order['id']} changed while this call ran. Call get_order and try again.",
            retry_after_seconds=1,
        )
    order_store.add_event(conn, order["id"], current.value, target.value, actor.value, principal_id, reason, now)
    _settle_checkout(conn, order["id"], target, now)
    webhook_outbox.record_order_event(conn, target, order["id"], now, lambda: _current_view(conn, order["id"]))


def _current_view(conn: Connection, order_id: str) -> OrderOut:
    order = order_store.get(conn, order_id)
    assert order is not None
    return order_view(conn, order)


def _settle_checkout(conn: Connection, order_id: str, target: OrderStatus, now: datetime) -> None:
    """Links and sessions follow their order: paid consumes them, cancel/expiry closes them."""
    live_links = [state.value for state in domain.LIVE_LINK_STATES]
    open_sessions = [domain.SessionStatus.OPEN.value, domain.SessionStatus.PAYMENT_PENDING.value]
    if target is OrderStatus.PAID:
        checkout_store.set_links_of_order(conn, order_id, live_links, domain.LinkStatus.CONSUMED.value, now)
        checkout_store.set_sessions_of_order(conn, order_id, open_sessions, domain.SessionStatus.COMPLETED.value, now)
    elif target in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
        checkout_store.set_links_of_order(conn, order_id, live_links, domain.LinkStatus.EXPIRED.value, now)
        checkout_store.set_sessions_of_order(conn, order_id, open_sessions, domain.SessionStatus.CANCELED.value, now)


def _quantities(items: Sequence[RowMapping]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for item in items:
        totals[item["sku"]] = totals.get(item["sku"], 0) + item["quantity"]
    return dict(sorted(totals.items()))


class OrderService:
    def __init__(self, db: Database, clock: Clock, idempotency: Idempotency, *, order_ttl: timedelta) -> None:
        self._db = db
        self._clock = clock
        self._idempotency = idempotency
        self._order_ttl = order_ttl
        self._on_closed: Callable[[str], Awaitable[None]] | None = None

    def on_closed(self, hook: Callable[[str], Awaitable[None]]) -> None:
        """Run ``hook(order_id)`` after an unpaid order is canceled or expired (e.g. cancel its intent)."""
        self._on_closed = hook

    async def _closed(self, order_ids: Sequence[str]) -> None:
        if self._on_closed is None:
            return
        for order_id in order_ids:
            try:
                await self._on_closed(order_id)
            except CheckoutError as exc:  # best effort: the order itself is already closed
                log.warning("after closing order %s: %s", order_id, exc.code)

    async def _expire_if_due(self, order_id: str) -> None:
        """Apply expiry now to one order whose deadline passed, without waiting for the sweep."""
        now = self._clock()

        def run(conn: Connection) -> bool:
            order = order_store.get(conn, order_id, for_update=True)
            if order is None or order["status"] != OrderStatus.PENDING_PAYMENT.value or order["expires_at"] > now:
                return False
            transition(
                conn, order, OrderStatus.EXPIRED, actor=Actor.SYSTEM, principal_id=None,
                reason="unpaid when its payment window closed", now=now,
            )  # fmt: skip
            return True

        if await self._db.write(run):
            await self._closed([order_id])

    # ------------------------------------------------------------ create
    async def create(self, principal: Principal, cmd: CreateOrder) -> OrderOut:
        """Create the order exactly once, in ONE write transaction: the key is claimed first thing in it."""
        call = CREATE_ORDER.request(cmd)
        order_id = domain.new_id("ord")

        def run(conn: Connection) -> OrderOut | str:
            prior = self._idempotency.once(conn, principal.id, call, order_id)
            if prior is not None:
                return prior.resource_id
            return self.place(conn, principal, cmd, call, order_id)

        placed = await self._db.write(run)
        if isinstance(placed, str):
            return (await self.get(principal, placed)).as_replay()
        return placed

    def place(
        self,
        conn: Connection,
        principal: Principal,
        cmd: CreateOrder,
        call: Keyed,
        order_id: str,
        also: AfterPlace | None = None,
    ) -> OrderOut:
        """Place the order in ``conn``'s transaction, whose first statement claimed ``call``'s key.
        ``also`` runs in the same transaction once the order exists (e.g. minting its checkout link)."""
        if (cmd.cart_id is None) == (cmd.items is None):
            raise InvalidInput(
                "Pass exactly one of cart_id (an order from a cart) or items (a direct order).",
                next_actions=["create_cart", "get_cart"],
            )
        now = self._clock()
        if cmd.cart_id is not None:
            cart = visible_cart(conn, principal, cmd.cart_id)
            # Claim the cart first: a conditional update that only one order can win.
            if not cart_store.mark_ordered(conn, cmd.cart_id, order_id, now):
                return self._existing_cart_order(conn, principal, cmd.cart_id, call)
            lines = priced_lines(cart_store.lines(conn, cmd.cart_id))
            currency = cart["currency"]
            if not lines:
                raise CartEmpty(
                    f"Cart {cmd.cart_id} is empty. Add items with add_to_cart, then call create_order again.",
                    details={"cart_id": cmd.cart_id},
                    next_actions=["add_to_cart"],
                )
        else:
            assert cmd.items is not None
            lines, currency = self._direct_lines(conn, cmd.items)

        for line in sorted(lines, key=lambda item: item.sku):  # one lock order everywhere: no deadlocks
            if not catalog_store.reserve_stock(conn, line.sku, line.quantity, now):
                row = catalog_store.get_skus(conn, [line.sku]).get(line.sku)
                available = (row["stock_on_hand"] - row["reserved"]) if row else 0
                domain.ensure_available(line.sku, line.quantity, available)
                raise AssertionError("reservation failed with stock available")
        subtotal = domain.money_sum((line.line_total for line in lines), currency)
        values: dict[str, Any] = {
            "id": order_id,
            "cart_id": cmd.cart_id,
            "principal_id": principal.id,
            "client_name": principal.client[:200],
            "status": OrderStatus.PENDING_PAYMENT.value,
            "stock_state": StockState.RESERVED.value,
            "currency": currency,
            "subtotal_minor": subtotal.amount,
            "total_minor": subtotal.amount,
            "email": cmd.email,
            "merchant_reference_id": cmd.merchant_reference_id,
            "shipping_address": dict(cmd.shipping_address) if cmd.shipping_address else None,
            "request_fingerprint": call.fingerprint,
            "created_at": now,
            "updated_at": now,
            "expires_at": now + self._order_ttl,
        }
        items = [
            {
                "line_no": number,
                "sku": line.sku,
                "title": line.title,
                "unit_price_minor": line.unit_price.amount,
                "quantity": line.quantity,
                "line_total_minor": line.line_total.amount,
            }
            for number, line in enumerate(lines, start=1)
        ]
        number = order_store.insert_order(conn, values, items)
        status, actor, reason = OrderStatus.PENDING_PAYMENT.value, principal.actor.value, "created with create_order"
        order_store.add_event(conn, order_id, None, status, actor, principal.id, reason, now)
        if also is None:
            # Nothing but this transaction knows the order yet: show what was written instead of
            # reading it back (six statements). Timestamps as the database returns them: UTC.
            utc = {key: values[key].astimezone(UTC) for key in ("created_at", "updated_at", "expires_at")}
            event = {
                "from_status": None,
                "to_status": status,
                "actor": actor,
                "reason": reason,
                "at": utc["created_at"],
            }
            view = order_view(conn, {**values, **utc, "number": number}, _Written(items=items, history=[event]))
        else:
            order = order_store.get(conn, order_id)
            assert order is not None
            also(conn, order)
            view = order_view(conn, order)
        webhook_outbox.record_order_event(conn, OrderStatus.PENDING_PAYMENT, order_id, now, lambda: view)
        return view

    def _existing_cart_order(self, conn: Connection, principal: Principal, cart_id: str, call: Keyed) -> OrderOut:
        """The cart is an order already (the natural key): the same request under another key replays it."""
        order = order_store.get_by_cart(conn, cart_id)
        if order is None:
            raise cart_not_found(cart_id)
        if order["request_fingerprint"] != call.fingerprint:
            raise CartAlreadyOrdered(
                f"Cart {cart_id} was already ordered as {order['id']} ({order['number']}) with different "
                "details. Use get_order for that order, or create_cart for a new purchase.",
                details={"cart_id": cart_id, "order_id": order["id"], "number": order["number"]},
                next_actions=["get_order", "create_cart"],
            )
        self._idempotency.redirect(conn, principal.id, call, order["id"])
        return order_view(conn, order).as_replay()

    def _direct_lines(self, conn: Connection, items: Sequence[tuple[str, int]]) -> tuple[list[domain.PricedLine], str]:
        if not items:
            raise InvalidInput("items must hold at least one {sku, quantity}.")
        codes = [sku for sku, _ in items]
        if len(set(codes)) != len(codes):
            raise InvalidInput("Each SKU may appear once in items; add the quantities together.")
        found = catalog_store.get_skus(conn, codes)
        lines: list[domain.PricedLine] = []
        for sku, quantity in items:
            domain.check_quantity(quantity)
            row = found.get(sku)
            if row is None:
                raise sku_not_found(sku)
            lines.append(domain.PricedLine(sku, row["title"], Money(row["price_minor"], row["currency"]), quantity))
        currencies = sorted({line.unit_price.currency for line in lines})
        if len(currencies) > 1:
            raise CurrencyMismatch(
                f"These SKUs are priced in different currencies ({', '.join(currencies)}); one order has one "
                "currency. Order them separately.",
                details={"currencies": currencies},
            )
        return lines, currencies[0]

    # ------------------------------------------------------------ reads
    async def get(self, principal: Principal, order_id: str) -> OrderOut:
        now = self._clock()
        view = await self._db.read(lambda conn: order_view(conn, visible_order(conn, principal, order_id)), quick=True)
        if view.status == OrderStatus.PENDING_PAYMENT.value and view.expires_at is not None and view.expires_at <= now:
            await self._expire_if_due(order_id)
            view = await self._db.read(lambda conn: order_view(conn, visible_order(conn, principal, order_id)))
        return view

    async def lookup(self, principal: Principal, reference: str, *, allow_missing: bool) -> OrderLookup:
        def run(conn: Connection) -> list[OrderOut]:
            rows = order_store.by_reference(conn, reference, LOOKUP_LIMIT, owner=policy.owner_filter(principal))
            return [order_view(conn, row) for row in rows]

        found = await self._db.read(run)
        if not found and not allow_missing:
            raise OrderNotFound(
                f"No order or checkout link has merchant_reference_id {reference!r}. Check the reference, "
                "or call lookup_orders with allow_missing=true to get status 'not_found' instead of an error.",
                details={"merchant_reference_id": reference},
                next_actions=["lookup_orders"],
            )
        return OrderLookup(status="found" if found else "not_found", merchant_reference_id=reference, orders=found)

    # ------------------------------------------------------------ changes
    async def cancel(self, principal: Principal, order_id: str, reason: str | None) -> OrderOut:
        await self._db.read(lambda conn: visible_order(conn, principal, order_id))
        await self._expire_if_due(order_id)
        changed = False

        def run(conn: Connection) -> OrderOut:
            nonlocal changed
            order = visible_order(conn, principal, order_id, lock=True)
            if order["status"] != OrderStatus.CANCELED.value:
                transition(
                    conn, order, OrderStatus.CANCELED, actor=principal.actor, principal_id=principal.id,
                    reason=reason or "canceled with cancel_order", now=self._clock(),
                )  # fmt: skip
                audit.record(conn, principal, "order.cancel", order_id, before={"status": order["status"]},
                             after={"status": "canceled", "reason": reason}, at=self._clock())  # fmt: skip
                order = visible_order(conn, principal, order_id)
                changed = True
            return order_view(conn, order)

        view = await self._db.write(run)
        if changed:
            await self._closed([order_id])
        return view

    async def expire_due(self, batch: int = 200) -> int:
        """Expire unpaid orders whose time is up, releasing their stock. Returns how many."""
        now = self._clock()

        def run(conn: Connection) -> list[str]:
            expired: list[str] = []
            for order_id in order_store.due_for_expiry(conn, now, batch):
                order = order_store.get(conn, order_id, for_update=True)
                if order is not None and order["status"] == OrderStatus.PENDING_PAYMENT.value:
                    transition(
                        conn, order, OrderStatus.EXPIRED, actor=Actor.SYSTEM, principal_id=None,
                        reason="unpaid when its payment window closed", now=now,
                    )  # fmt: skip
                    expired.append(order_id)
            return expired

        expired = await self._db.write(run)
        await self._closed(expired)
        return len(expired)
