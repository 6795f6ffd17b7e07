"""Cart use cases. Totals always come from current catalog prices in the database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from mcp_checkout import domain
from mcp_checkout.domain import Clock, Money, Principal
from mcp_checkout.domain.pricing import normalize_code
from mcp_checkout.domain.store_profile import StoreProfile
from mcp_checkout.errors import CartNotFound, CartNotOpen, CurrencyMismatch, InvalidInput, SkuNotFound
from mcp_checkout.service import policy, quotes
from mcp_checkout.service.idempotency import Idempotency, Operation, Prior
from mcp_checkout.service.store_profile import ConfigCache, StoreConfig
from mcp_checkout.service.views import (
    BuyerOut,
    CartLineOut,
    CartOut,
    MoneyOut,
    QuoteDestinationOut,
    ShippingAddressOut,
)
from mcp_checkout.store import carts as cart_store
from mcp_checkout.store import catalog as catalog_store
from mcp_checkout.store import store_profile as profile_store
from mcp_checkout.store.db import Database


def cart_not_found(cart_id: str) -> CartNotFound:
    return CartNotFound(
        f"No cart {cart_id!r}. Start one with create_cart and use the cart_id it returns.",
        details={"cart_id": cart_id},
        next_actions=["create_cart"],
    )


def sku_not_found(sku: str) -> SkuNotFound:
    return SkuNotFound(
        f"No SKU {sku!r} in the catalog. Find the right SKU with search_catalog or get_product.",
        details={"sku": sku},
        next_actions=["search_catalog", "get_product"],
    )


def visible_cart(conn: Connection, principal: Principal, cart_id: str) -> RowMapping:
    """The cart, if this caller may see and change it (buyers their own; merchants any)."""
    cart = cart_store.get(conn, cart_id)
    if cart is None or not policy.may_access(principal, cart["principal_id"]):
        raise cart_not_found(cart_id)
    return cart


def load_open_cart(conn: Connection, principal: Principal, cart_id: str) -> RowMapping:
    cart = visible_cart(conn, principal, cart_id)
    if cart["status"] == "canceled":
        raise CartNotOpen(
            f"Cart {cart_id} was canceled and can no longer change. Use create_cart for a new purchase.",
            details={"cart_id": cart_id},
            next_actions=["create_cart"],
        )
    if cart["status"] != "open":
        raise CartNotOpen(
            f"Cart {cart_id} was already turned into order {cart['order_id']} and can no longer change. "
            "Use get_order for that order, or create_cart for a new purchase.",
            details={"cart_id": cart_id, "order_id": cart["order_id"]},
            next_actions=["get_order", "create_cart"],
        )
    return cart


def priced_lines(rows: Sequence[Mapping[Any, Any]]) -> list[domain.PricedLine]:
    return [
        domain.PricedLine(row["sku"], row["title"], Money(row["price_minor"], row["currency"]), row["quantity"])
        for row in rows
    ]


def cart_view(conn: Connection, cart: Mapping[Any, Any], config: StoreConfig, now: datetime) -> CartOut:
    """The cart priced as it stands: current catalog prices, the store's rates for its destination and its
    discount codes (service/quotes.py, under the store's configuration ``config``), with what is still
    missing in ``messages``."""
    rows = cart_store.lines(conn, cart["id"])
    lines = priced_lines(rows)
    buyer = cart["buyer"] or None
    priced = quotes.quote(
        conn,
        config=config,
        currency=cart["currency"],
        lines=[quotes.line_of(row) for row in rows],
        shipping_address=cart["shipping_address"],
        fulfillment_option_id=cart["fulfillment_option_id"],
        discount_codes=cart["discount_codes"] or [],
        buyer=quotes.buyer_key(conn, buyer.get("email") if buyer else None, cart["principal_id"]),
        now=now,
        stock=[
            quotes.Stock(row["sku"], row["quantity"], domain.available_units(row["stock_on_hand"], row["reserved"]))
            for row in rows
        ],
    )
    fields = quotes.breakdown(priced)
    if not lines and cart["status"] == "open":
        fields["messages"] = [quotes.empty_cart_message(), *fields["messages"]]
        fields["ready"] = False
    address = cart["shipping_address"]
    quoted_for = address is not None and quotes.is_quote_destination(address)
    return CartOut(
        cart_id=cart["id"],
        status=cart["status"],
        currency=cart["currency"],
        lines=[
            CartLineOut(
                sku=line.sku,
                title=line.title,
                quantity=line.quantity,
                unit_price=MoneyOut.of(line.unit_price),
                line_total=MoneyOut.of(line.line_total),
                discount=MoneyOut.minor(quoted.discount, cart["currency"]),
                tax=MoneyOut.minor(quoted.tax, cart["currency"]),
                available=domain.available_units(row["stock_on_hand"], row["reserved"]),
            )
            for line, row, quoted in zip(lines, rows, priced.quote.lines, strict=True)
        ],
        item_count=sum(line.quantity for line in lines),
        order_id=cart["order_id"],
        buyer=BuyerOut.model_validate(buyer) if buyer else None,
        shipping_address=ShippingAddressOut.model_validate(address) if address and not quoted_for else None,
        quote_destination=QuoteDestinationOut.model_validate(address) if quoted_for else None,
        fulfillment_option_id=cart["fulfillment_option_id"],
        **fields,
    )


CREATE_CART = Operation("create_cart", makes="cart", id_field="cart_id", look_up="get_cart")
CANCEL_CHECKOUT = Operation("cancel_checkout", makes="cancellation", id_field="cart_id", look_up="get_cart")


@dataclass(frozen=True)
class CancelCheckout:
    """A keyed cancel of a protocol checkout (a cart, or the order made of it): a retry under the key replays."""

    idempotency_key: str
    cart_id: str
    sent: Collection[str] | None = None


@dataclass(frozen=True)
class CreateCart:
    """A keyed cart creation (a protocol adapter's create call, retried under its key): ``request_digest``
    is the adapter's digest of its own request, so another request under the key is a conflict."""

    idempotency_key: str
    currency: str | None = None
    request_digest: str | None = None
    sent: Collection[str] | None = None


@dataclass(frozen=True)
class CartDetails:
    """update_cart's arguments, validated. Only the fields in ``sent`` change (a field sent as None clears)."""

    buyer: Mapping[str, Any] | None = None
    shipping_address: Mapping[str, Any] | None = None
    fulfillment_option_id: str | None = None
    discount_codes: Sequence[str] | None = None
    sent: Collection[str] = ()


class CartService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        default_currency: str,
        idempotency: Idempotency | None = None,
        config: ConfigCache | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._default_currency = default_currency
        self._idempotency = idempotency
        self._config = config or ConfigCache(StoreProfile(name="", default_currency=default_currency))

    def _view(self, conn: Connection, cart: Mapping[Any, Any], config: StoreConfig | None = None) -> CartOut:
        return cart_view(conn, cart, config or self._config_of(conn, cart), self._clock())

    def _config_of(self, conn: Connection, cart: Mapping[Any, Any]) -> StoreConfig:
        """The store's configuration at the stamp read with the cart (its first read in this transaction)."""
        return self._config.at(conn, profile_store.stamp_of(cart))

    def _currency(self, conn: Connection, given: str | None) -> str:
        """A new cart's currency: the one asked for, else the store profile's default (from the process's copy
        of the configuration: one read of its stamp, not of the profile row)."""
        return given.upper() if given else self._config.get(conn).profile.default_currency

    async def create(self, principal: Principal, currency: str | None = None) -> CartOut:
        cart_id = domain.new_id("cart")
        now = self._clock()

        def run(conn: Connection) -> CartOut:
            code = self._currency(conn, currency)
            cart_store.create(conn, cart_id, principal.id, code, now)
            cart = cart_store.get(conn, cart_id)
            assert cart is not None
            return self._view(conn, cart)

        return await self._db.write(run)

    async def create_once(self, principal: Principal, cmd: CreateCart) -> tuple[CartOut, bool]:
        """Create a cart exactly once per key: ``(cart, replayed)``; a retry gets the same cart back as it
        is now, another request under the key ``idempotency_conflict``."""
        assert self._idempotency is not None
        call = CREATE_CART.request(cmd)
        cart_id = domain.new_id("cart")
        now = self._clock()

        def run(conn: Connection) -> tuple[CartOut, bool]:
            assert self._idempotency is not None
            prior = self._idempotency.once(conn, principal.id, call, cart_id)
            if prior is not None:
                return self._view(conn, visible_cart(conn, principal, prior.resource_id)), True
            code = self._currency(conn, cmd.currency)
            cart_store.create(conn, cart_id, principal.id, code, now)
            cart = cart_store.get(conn, cart_id)
            assert cart is not None
            return self._view(conn, cart), False

        return await self._db.write(run)

    async def cancel_once(
        self, principal: Principal, cmd: CancelCheckout, cancel: Callable[[], Awaitable[object]]
    ) -> bool:
        """Run ``cancel`` (the checkout's cancel) once per key: False when it runs now, True when an earlier
        call under the key did it (a replay). Another cart under the key is ``idempotency_conflict``; when
        ``cancel`` fails the key is released, so the same request may retry."""
        assert self._idempotency is not None
        idempotency = self._idempotency
        call = CANCEL_CHECKOUT.request(cmd)
        claimed = await self._db.write(lambda conn: idempotency.claim(conn, principal.id, call, cmd.cart_id))
        if isinstance(claimed, Prior):
            return True
        try:
            await cancel()
        except BaseException:
            await idempotency.release(claimed)
            raise
        await self._db.write(lambda conn: idempotency.complete(conn, claimed))
        return False

    async def get(self, principal: Principal, cart_id: str) -> CartOut:
        def run(conn: Connection) -> CartOut:
            return self._view(conn, visible_cart(conn, principal, cart_id))

        return await self._db.read(run)

    async def add(self, principal: Principal, cart_id: str, sku: str, quantity: int) -> CartOut:
        """Add ``quantity`` units on top of what the cart already holds of ``sku``."""
        return await self._change(principal, cart_id, sku, quantity, relative=True)

    async def set_quantity(self, principal: Principal, cart_id: str, sku: str, quantity: int) -> CartOut:
        """Make the cart hold exactly ``quantity`` units of ``sku``."""
        return await self._change(principal, cart_id, sku, quantity, relative=False)

    async def _change(self, principal: Principal, cart_id: str, sku: str, quantity: int, *, relative: bool) -> CartOut:
        domain.check_quantity(quantity)
        now = self._clock()

        def run(conn: Connection) -> CartOut:
            cart = load_open_cart(conn, principal, cart_id)
            row = catalog_store.get_skus(conn, [sku]).get(sku)
            if row is None:
                raise sku_not_found(sku)
            if row["currency"] != cart["currency"]:
                raise CurrencyMismatch(
                    f"SKU {sku} is priced in {row['currency']} but cart {cart_id} is in {cart['currency']}. "
                    f"Start a {row['currency']} cart with create_cart(currency='{row['currency']}').",
                    details={"sku": sku, "sku_currency": row["currency"], "cart_currency": cart["currency"]},
                    next_actions=["create_cart"],
                )
            current = cart_store.get_quantity(conn, cart_id, sku) or 0
            if current == 0 and cart_store.line_count(conn, cart_id) >= domain.MAX_CART_LINES:
                raise InvalidInput(f"A cart holds at most {domain.MAX_CART_LINES} different SKUs.")
            target = current + quantity if relative else quantity
            if target > domain.MAX_QUANTITY:
                raise InvalidInput(
                    f"The cart would hold {target} of {sku}; the most per SKU is {domain.MAX_QUANTITY}. "
                    f"It holds {current} now: use update_cart_item to set an exact quantity.",
                    details={"sku": sku, "in_cart": current, "requested": target},
                    next_actions=["update_cart_item"],
                )
            domain.ensure_available(sku, target, row["stock_on_hand"] - row["reserved"])
            cart_store.set_quantity(conn, cart_id, sku, target, now)
            return self._view(conn, cart)

        return await self._db.write(run)

    async def cancel(self, principal: Principal, cart_id: str) -> CartOut:
        """Close an open cart without ordering it (it can no longer change or become an order)."""
        now = self._clock()

        def run(conn: Connection) -> CartOut:
            load_open_cart(conn, principal, cart_id)
            cart_store.cancel(conn, cart_id, now)
            cart = cart_store.get(conn, cart_id)
            assert cart is not None
            return self._view(conn, cart)

        return await self._db.write(run)

    async def remove(self, principal: Principal, cart_id: str, sku: str) -> CartOut:
        now = self._clock()

        def run(conn: Connection) -> CartOut:
            cart = load_open_cart(conn, principal, cart_id)
            cart_store.remove(conn, cart_id, sku, now)
            return self._view(conn, cart)

        return await self._db.write(run)

    async def update(self, principal: Principal, cart_id: str, details: CartDetails) -> CartOut:
        """Set the cart's buyer, shipping address, fulfillment option and discount codes: each field sent
        replaces what the cart had (None clears it); fields not sent stay as they are. Safe to retry."""
        values: dict[str, Any] = {}
        if "buyer" in details.sent:
            values["buyer"] = clean_buyer(details.buyer)
        if "shipping_address" in details.sent:
            address = details.shipping_address
            values["shipping_address"] = quotes.clean_destination(address) if address else None
        if "fulfillment_option_id" in details.sent:
            values["fulfillment_option_id"] = details.fulfillment_option_id or None
        if "discount_codes" in details.sent:
            codes = list(dict.fromkeys(normalize_code(code) for code in details.discount_codes or ()))
            values["discount_codes"] = codes or None
        now = self._clock()

        def run(conn: Connection) -> CartOut:
            cart: Mapping[Any, Any] = load_open_cart(conn, principal, cart_id)
            config = self._config_of(conn, cart)
            option = values.get("fulfillment_option_id")
            if option is not None:
                quotes.check_option_exists(config, option, cart["currency"])
            changes = {field: value for field, value in values.items() if cart[field] != value}
            if changes:  # a retry that sends what the cart holds writes nothing
                cart = {**cart, **cart_store.set_details(conn, cart_id, changes, now)}
            return self._view(conn, cart, config)

        return await self._db.write(run)


def clean_buyer(buyer: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not buyer:
        return None
    cleaned = {key: (value.strip() or None) if isinstance(value, str) else value for key, value in buyer.items()}
    if not cleaned.get("email"):
        raise InvalidInput("buyer.email is required: the buyer's email address.", details={"field": "buyer.email"})
    cleaned["email"] = str(cleaned["email"]).lower()
    return {key: cleaned.get(key) for key in ("email", "name", "phone")}
