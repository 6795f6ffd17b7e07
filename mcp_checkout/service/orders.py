"""Order use cases: exactly-once creation (one write transaction, its key claimed first through
service/idempotency.py), look-ups, cancellation and expiry. Status changes and their effects live in
service/order_state.py; the order as tools show it is built in service/order_view.py."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping

from mcp_checkout import domain
from mcp_checkout.domain import Actor, Clock, OrderStatus, Principal, StockState
from mcp_checkout.domain.pricing import DiscountCode, Notice, ShippingRate
from mcp_checkout.domain.store_profile import StoreProfile
from mcp_checkout.errors import (
    CartAlreadyOrdered,
    CartEmpty,
    CheckoutError,
    CurrencyMismatch,
    DiscountCodeExhausted,
    DiscountCodeExpired,
    DiscountCodeInvalid,
    DiscountCodeRejected,
    DiscountMinimumNotMet,
    InvalidInput,
    InvalidState,
    OrderNotFound,
)
from mcp_checkout.service import audit, policy, quotes, webhook_outbox
from mcp_checkout.service.carts import cart_not_found, priced_lines, sku_not_found, visible_cart
from mcp_checkout.service.idempotency import Idempotency, Keyed, Operation
from mcp_checkout.service.order_state import order_not_found, transition, visible_order, visible_rows
from mcp_checkout.service.order_view import Written, current_view, order_view, refunds_of, view_of
from mcp_checkout.service.store_profile import ConfigCache, StoreConfig
from mcp_checkout.service.views import OrderLookup, OrderOut, RefundEntry
from mcp_checkout.store import carts as cart_store
from mcp_checkout.store import catalog as catalog_store
from mcp_checkout.store import order_rows
from mcp_checkout.store import orders as order_store
from mcp_checkout.store import pricing as pricing_store
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
    buyer: Mapping[str, Any] | None = None
    fulfillment_option_id: str | None = None
    discount_codes: Sequence[str] | None = None
    sent: Collection[str] | None = None

    def given(self, name: str) -> bool:
        """Whether the client sent this argument (so it overrides the cart's value)."""
        return self.sent is None or name in self.sent


AfterPlace = Callable[[Connection, RowMapping], None]
CancelPaid = Callable[[Principal, str, str | None], Awaitable[OrderOut]]


@dataclass(frozen=True)
class _Details:
    buyer: Mapping[str, Any] | None
    shipping_address: Mapping[str, Any] | None
    fulfillment_option_id: str | None
    discount_codes: Sequence[str] | None


_REJECTIONS: Mapping[str, type[DiscountCodeRejected]] = {
    "discount_code_invalid": DiscountCodeInvalid,
    "discount_code_expired": DiscountCodeExpired,
    "discount_minimum_not_met": DiscountMinimumNotMet,
    "discount_code_exhausted": DiscountCodeExhausted,
}


def discount_rejected(notice: Notice) -> DiscountCodeRejected:
    error = _REJECTIONS.get(notice.code, DiscountCodeInvalid)
    return error(notice.message, details={"field": notice.path}, next_actions=["update_cart", "get_cart"])


def redeem(
    conn: Connection, priced: quotes.Priced, order_id: str, code: str, amount: int, buyer_key: str, now: datetime
) -> None:
    """Count one use of ``code`` for the order ``order_id`` and record its redemption, or fail the order with
    ``discount_code_exhausted``: the conditional update lets only as many orders as there are uses left
    through."""
    gone = DiscountCodeExhausted(
        f"Discount code {code} has just been used up. Remove it (update_cart(discount_codes=[])) and order again.",
        details={"code": code},
        next_actions=["update_cart", "get_cart"],
    )
    if not pricing_store.redeem(conn, order_id, code, buyer_key, amount, now):
        raise gone
    limit = next((c.max_uses_per_buyer for c in priced.codes if c.code == code), None)
    # The code's row is locked now (PostgreSQL), so this count sees every committed order of this buyer,
    # and this order's own redemption: more than the limit means the buyer had used them all already.
    if limit is not None and pricing_store.buyer_uses(conn, code, buyer_key) > limit:
        raise gone


def applied_codes(priced: quotes.Priced, amounts: Sequence[tuple[str, int]]) -> list[dict[str, Any]] | None:
    """The codes an order holds, as stored on it: [{code, kind, amount}]."""
    kinds = {code.code: code.kind for code in priced.codes}
    return [{"code": code, "kind": kinds.get(code, "percent"), "amount": amount} for code, amount in amounts] or None


def reprice_delivery(
    conn: Connection,
    order: RowMapping,
    address: Mapping[str, Any] | None,
    option_id: str | None,
    config: StoreConfig,
    now: datetime,
) -> quotes.Priced:
    """Price an unpaid order's delivery for ``address`` and ``option_id`` (checked against the store's
    current rates) and write the new totals, in ``conn``'s transaction (the order row locked by the caller)."""
    items = order_store.items(conn, order["id"])
    held = [entry for entry in order["discount_codes"] or () if isinstance(entry, dict)]
    profile = replace(config.profile, prices_include_tax=bool(order["prices_include_tax"]))
    priced = quotes.quote(
        conn, config=config, profile=profile, currency=order["currency"],
        lines=[quotes.line_of(item) for item in items], shipping_address=address,
        fulfillment_option_id=option_id, discount_codes=[], buyer="", now=now,
        redeemed=[DiscountCode(entry["code"], entry.get("kind") or "percent") for entry in held],
        frozen_discounts=[item["discount_minor"] for item in items],
    )  # fmt: skip
    if option_id and priced.option is None and priced.options:
        choices = ", ".join(rate.rate_id for rate in priced.options)
        raise InvalidInput(
            f"fulfillment_option_id {option_id!r} does not serve this address; choose one of {choices}.",
            details={"field": "fulfillment_option_id"},
        )
    q = priced.quote
    amounts = dict(q.discounts)  # free shipping is worth what it waives now; other codes' amounts are frozen
    codes = [{**c, "amount": amounts.get(c["code"], 0)} if c.get("kind") == "free_shipping" else c for c in held]
    option = priced.option
    values = {
        "shipping_address": dict(address) if address else None,
        "fulfillment_option_id": option.rate_id if option else None,
        "fulfillment_option": quotes.option_snapshot(option, q.shipping_total) if option else None,
        "discount_codes": codes or None,
        "shipping_total_minor": q.shipping_total,
        "tax_total_minor": q.tax_total,
        "total_minor": q.total,
        "updated_at": now,
    }
    taxes = {item["line_no"]: quoted.tax for item, quoted in zip(items, q.lines, strict=True)}
    if not pricing_store.set_order_pricing(conn, order["id"], values, taxes):
        raise InvalidState(f"Order {order['id']} changed while this call ran. Call get_order and try again.")
    waived = {c["code"]: c["amount"] for c in codes if c.get("kind") == "free_shipping"}
    pricing_store.set_redemption_amounts(conn, order["id"], waived, now)  # the recorded use says the same
    return priced


def _buyer_extra(buyer: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The buyer's name and phone as an order keeps them (the email has its own column)."""
    if not buyer:
        return None
    extra = {key: buyer.get(key) for key in ("name", "phone") if buyer.get(key)}
    return extra or None


class OrderService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        idempotency: Idempotency,
        *,
        order_ttl: timedelta,
        config: ConfigCache | None = None,
    ) -> None:
        self._db = db
        self._config = config or ConfigCache(StoreProfile(name="", default_currency="USD"))
        self._clock = clock
        self._idempotency = idempotency
        self._order_ttl = order_ttl
        self._on_closed: Callable[[str], Awaitable[None]] | None = None
        self._cancel_paid: CancelPaid | None = None

    def on_closed(self, hook: Callable[[str], Awaitable[None]]) -> None:
        """Run ``hook(order_id)`` after an unpaid order is canceled or expired (e.g. cancel its intent)."""
        self._on_closed = hook

    def on_paid_cancel(self, cancel_paid: CancelPaid) -> None:
        """The merchant cancels a paid order: ``cancel_paid`` cancels, restocks and refunds it (payments)."""
        self._cancel_paid = cancel_paid

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
        details = _Details(cmd.buyer, cmd.shipping_address, cmd.fulfillment_option_id, cmd.discount_codes)
        stamp: int | None = None  # the configuration stamp, when read with the SKUs
        if cmd.cart_id is not None:
            cart = visible_cart(conn, principal, cmd.cart_id)
            # Claim the cart first: a conditional update that only one order can win.
            if not cart_store.mark_ordered(conn, cmd.cart_id, order_id, now):
                return self._existing_cart_order(conn, principal, cmd.cart_id, call)
            rows: Sequence[Mapping[Any, Any]] = cart_store.lines(conn, cmd.cart_id)
            currency = cart["currency"]
            if not rows:
                raise CartEmpty(
                    f"Cart {cmd.cart_id} is empty. Add items with add_to_cart, then call create_order again.",
                    details={"cart_id": cmd.cart_id},
                    next_actions=["add_to_cart"],
                )
            details = _Details(  # what create_order sends wins over what the cart holds
                cmd.buyer if cmd.given("buyer") else cart["buyer"],
                cmd.shipping_address if cmd.given("shipping_address") else cart["shipping_address"],
                cmd.fulfillment_option_id if cmd.given("fulfillment_option_id") else cart["fulfillment_option_id"],
                cmd.discount_codes if cmd.given("discount_codes") else cart["discount_codes"],
            )
        else:
            assert cmd.items is not None
            rows, currency, stamp = self._direct_lines(conn, cmd.items)
        lines = priced_lines(rows)
        email = cmd.email or (
            str(details.buyer["email"]).lower() if details.buyer and details.buyer.get("email") else None
        )
        buyer_key = quotes.buyer_key(conn, email, principal.id)
        # Profile, rates, codes, webhooks: the stamp read with a direct order's SKUs, else one read of it.
        config = self._config.at(conn, stamp) if stamp is not None else self._config.get(conn)
        to_price = [quotes.line_of(row) for row in rows]
        ships = bool(quotes.shipping_rates_for(config, currency, to_price))
        address = quotes.order_address(details.shipping_address, ships=ships)  # the cart's may be a quote's
        priced = quotes.quote(
            conn, config=config, currency=currency, lines=to_price,
            shipping_address=address, fulfillment_option_id=details.fulfillment_option_id,
            discount_codes=details.discount_codes or [], buyer=buyer_key, now=now,
        )  # fmt: skip
        for notice in priced.messages:
            if notice.code.startswith("discount_"):
                raise discount_rejected(notice)
        wanted = sorted((line.sku, line.quantity) for line in lines)  # one lock order everywhere: no deadlocks
        if stamp is not None:  # a direct order locked its SKUs' rows (in this order): one statement for all
            reserved = catalog_store.reserve(conn, wanted, now)
        else:
            reserved = set()
            for line in wanted:
                reserved |= catalog_store.reserve(conn, [line], now)
                if line[0] not in reserved:
                    break
        for sku, quantity in wanted:
            if sku not in reserved:
                row = catalog_store.get_skus(conn, [sku]).get(sku)
                domain.ensure_available(
                    sku, quantity, domain.available_units(row["stock_on_hand"], row["reserved"]) if row else 0
                )
                raise AssertionError("reservation failed with stock available")
        q = priced.quote
        option = priced.option
        values: dict[str, Any] = {
            "id": order_id,
            "cart_id": cmd.cart_id,
            "principal_id": principal.id,
            "client_name": principal.client[:200],
            "status": OrderStatus.PENDING_PAYMENT.value,
            "stock_state": StockState.RESERVED.value,
            "currency": currency,
            "subtotal_minor": q.subtotal,
            "total_minor": q.total,
            "discount_total_minor": q.discount_total,
            "shipping_total_minor": q.shipping_total,
            "tax_total_minor": q.tax_total,
            "prices_include_tax": q.prices_include_tax,
            "requires_shipping": q.requires_shipping,
            "email": email,
            "buyer": _buyer_extra(details.buyer),
            "merchant_reference_id": cmd.merchant_reference_id,
            "shipping_address": address,
            "fulfillment_option_id": option.rate_id if option else None,
            "fulfillment_option": quotes.option_snapshot(option, q.shipping_total) if option else None,
            "discount_codes": applied_codes(priced, q.discounts),
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
                "discount_minor": quoted.discount,
                "tax_minor": quoted.tax,
                "tax_category": row["tax_category"],
                "requires_shipping": row["requires_shipping"],
                "image_url": row["image_url"] or "",
            }
            for number, (line, row, quoted) in enumerate(zip(lines, rows, q.lines, strict=True), start=1)
        ]
        status, actor, reason = OrderStatus.PENDING_PAYMENT.value, principal.actor.value, "created with create_order"
        event = {"from_status": None, "to_status": status, "actor": actor, "principal_id": principal.id,
                 "reason": reason, "at": now}  # fmt: skip
        number = order_store.insert_order(conn, values, items, event)
        for code, amount in q.discounts:  # usage counted once, here, in the order's own transaction
            redeem(conn, priced, order_id, code, amount, buyer_key, now)
        if also is None:
            # Nothing but this transaction knows the order yet: show what was written instead of
            # reading it back (six statements). Timestamps as the database returns them: UTC.
            utc = {key: values[key].astimezone(UTC) for key in ("created_at", "updated_at", "expires_at")}
            history = [{**event, "at": utc["created_at"]}]
            view = order_view(conn, {**values, **utc, "number": number}, Written(items=items, history=history))
        else:
            order = order_store.get(conn, order_id)
            assert order is not None
            also(conn, order)
            view = order_view(conn, order)
        webhook_outbox.record_order_event(
            conn, OrderStatus.PENDING_PAYMENT, order_id, now, lambda: view,
            endpoints_active=config.webhooks_active, followers=config.followers_possible,
        )  # fmt: skip
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

    def _direct_lines(
        self, conn: Connection, items: Sequence[tuple[str, int]]
    ) -> tuple[list[dict[str, Any]], str, int | None]:
        """The SKU rows of a direct order, each with its quantity, their one currency, and the configuration
        stamp read with them (their rows are locked for this transaction on PostgreSQL)."""
        if not items:
            raise InvalidInput("items must hold at least one {sku, quantity}.")
        codes = [sku for sku, _ in items]
        if len(set(codes)) != len(codes):
            raise InvalidInput("Each SKU may appear once in items; add the quantities together.")
        found, stamp = catalog_store.skus_to_order(conn, codes)
        rows: list[dict[str, Any]] = []
        for sku, quantity in items:
            domain.check_quantity(quantity)
            row = found.get(sku)
            if row is None:
                raise sku_not_found(sku)
            row["quantity"] = quantity
            rows.append(row)
        currencies = sorted({row["currency"] for row in rows})
        if len(currencies) > 1:
            raise CurrencyMismatch(
                f"These SKUs are priced in different currencies ({', '.join(currencies)}); one order has one "
                "currency. Order them separately.",
                details={"currencies": currencies},
            )
        return rows, currencies[0], stamp

    # ------------------------------------------------------------ delivery (the checkout page)
    async def set_delivery(
        self,
        order_id: str,
        shipping_address: Mapping[str, Any] | None,
        fulfillment_option_id: str | None,
    ) -> OrderOut:
        """Set the shipping address and option of an unpaid order (the buyer on the checkout page) and price
        its delivery again on the server: shipping, free shipping and tax from the order's frozen lines,
        line discounts and codes; the totals on the order change. Only while it is pending_payment: the
        caller updates or replaces the live payment intent afterwards (its amount is the new total).
        ``InvalidInput`` names a bad field (shipping_address.country, fulfillment_option_id);
        ``InvalidState`` if the order is no longer pending_payment."""
        address = quotes.clean_address(shipping_address) if shipping_address else None
        now = self._clock()

        def run(conn: Connection) -> OrderOut:
            order = order_store.get(conn, order_id, for_update=True)
            if order is None:
                raise order_not_found(order_id)
            if order["status"] != OrderStatus.PENDING_PAYMENT.value:
                raise InvalidState(
                    f"Order {order['number']} is {order['status']}: its delivery can no longer change.",
                    details={"order_id": order_id, "status": order["status"]},
                    next_actions=["get_order"],
                )
            reprice_delivery(conn, order, address, fulfillment_option_id, self._config.get(conn), now)
            return current_view(conn, order_id)

        return await self._db.write(run)

    # ------------------------------------------------------------ reads
    async def get(self, principal: Principal, order_id: str) -> OrderOut:
        rows = await self._view_rows(principal, order_id)
        order = rows.order
        if order["status"] == OrderStatus.PENDING_PAYMENT.value and order["expires_at"] <= self._clock():
            await self._expire_if_due(order_id)
            rows = await self._view_rows(principal, order_id)
        rates: list[ShippingRate] = []
        if quotes.notices_need_rates(rows.order):  # the store's set-up, not the order's: read apart
            rates = await self._db.read(pricing_store.active_shipping_rates, quick=True, one_statement=True)
        return view_of(rows, lambda: rates)

    async def _view_rows(self, principal: Principal, order_id: str) -> order_rows.OrderRows:
        # The order and everything its view shows: one statement, so one snapshot without a transaction.
        rows = order_rows.of_rows(await self._db.fetch(order_rows.VIEW_ROWS, order_id))
        return visible_rows(rows, principal, order_id)

    async def refunds(self, order_id: str) -> list[RefundEntry]:
        """The order's refunds, oldest first, for a caller that already may see the order (get)."""
        return await self._db.read(lambda conn: refunds_of(conn, order_id), quick=True)

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

        def run(conn: Connection) -> OrderOut | None:
            nonlocal changed
            order = visible_order(conn, principal, order_id, lock=True)
            if order["status"] == OrderStatus.PAID.value or _paid_cancel_of(conn, principal, order):
                if not policy.may_cancel_paid(principal):
                    raise InvalidState(
                        f"Order {order['number']} is paid; only the merchant can cancel a paid order (it is then "
                        "refunded in full). Ask the merchant.",
                        details={"order_id": order_id, "status": order["status"]},
                        next_actions=["get_order"],
                    )
                return None  # canceled, restocked and refunded by the payments service (cancel_paid)
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
        if view is None:
            assert self._cancel_paid is not None, "build_services wires on_paid_cancel"
            return await self._cancel_paid(principal, order_id, reason)
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


def _paid_cancel_of(conn: Connection, principal: Principal, order: RowMapping) -> bool:
    """A merchant cancels again an order canceled after payment: its refund may still be owed (retried)."""
    if not policy.may_cancel_paid(principal) or order["status"] != OrderStatus.CANCELED.value:
        return False
    last = order_store.events(conn, order["id"])[-1]
    return bool(last["from_status"] == OrderStatus.PAID.value)
