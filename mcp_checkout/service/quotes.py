"""Pricing a cart or an order: take the store profile, the shipping and tax rates and the discount codes (one
process's copy, service/store_profile.StoreConfig), run the domain's pricing rules (domain/pricing.py) and say
what is still missing or wrong (``messages``) and whether it can be paid as it stands (``ready``). The breakdown
fields of the views are built here too.

A store with no active shipping rate in the cart's currency does not ship (digital goods, or shipping not set
up yet): nothing asks for an address or an option, as before shipping existed."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, RowMapping

from mcp_checkout.domain import format_money, pricing
from mcp_checkout.domain.pricing import Destination, DiscountCode, Notice, ShippingRate, normalize_code
from mcp_checkout.domain.store_profile import StoreProfile
from mcp_checkout.errors import InvalidInput
from mcp_checkout.service import rates
from mcp_checkout.service.store_profile import StoreConfig
from mcp_checkout.service.views import (
    AppliedDiscount,
    CheckoutMessage,
    FulfillmentOptionOut,
    MoneyOut,
    ShippingAddressOut,
)
from mcp_checkout.store import pricing as pricing_store


@dataclass(frozen=True)
class Stock:
    """A line's quantity against what is available now (carts only: an order holds its stock)."""

    sku: str
    quantity: int
    available: int


@dataclass(frozen=True)
class Priced:
    quote: pricing.Quote
    profile: StoreProfile
    options: list[ShippingRate]  # what the store offers this destination
    option: ShippingRate | None  # the chosen one, if it is among them
    codes: list[DiscountCode]  # the codes applied (usable now)
    messages: list[Notice]

    @property
    def ready(self) -> bool:
        return not any(message.severity == "error" for message in self.messages)


def line_of(row: Mapping[Any, Any], quantity: int | None = None) -> pricing.Line:
    """A pricing line from a SKU row (catalog columns) or a stored order line."""
    return pricing.Line(
        sku=row["sku"],
        unit_price=row["price_minor"] if "price_minor" in row else row["unit_price_minor"],
        quantity=row["quantity"] if quantity is None else quantity,
        category=row.get("category") or "",
        tax_category=row.get("tax_category") or pricing.STANDARD,
        requires_shipping=bool(row.get("requires_shipping", True)),
    )


def destination_of(address: Mapping[str, Any] | None) -> Destination | None:
    if not address:
        return None
    return Destination(str(address["country"]), str(address.get("region") or ""))


def buyer_key(conn: Connection, email: str | None, principal_id: str) -> str:
    """Who a per-buyer discount limit counts: the buyer's keyed email hash, else the caller."""
    return pricing_store.buyer_key(conn, email) or f"principal:{principal_id}"[:64]


def quote(
    conn: Connection,
    *,
    config: StoreConfig,
    currency: str,
    lines: Sequence[pricing.Line],
    shipping_address: Mapping[str, Any] | None,
    fulfillment_option_id: str | None,
    discount_codes: Sequence[str],
    buyer: str,
    now: datetime,
    stock: Sequence[Stock] = (),
    profile: StoreProfile | None = None,
    redeemed: Sequence[DiscountCode] | None = None,
    frozen_discounts: Sequence[int] | None = None,
) -> Priced:
    """Price ``lines`` for this destination, option and codes under the store's configuration ``config``
    (store_profile.ConfigCache; ``profile`` overrides its profile); ``buyer``: see :func:`buyer_key`.
    Re-pricing a placed order: ``redeemed`` are its codes (not checked again) and ``frozen_discounts`` its
    lines' discounts; only delivery (shipping, free shipping, tax) is priced anew."""
    profile = profile or config.profile
    messages: list[Notice] = []
    for index, line in enumerate(stock):
        if line.quantity > line.available:
            messages.append(
                Notice(
                    "error", "insufficient_stock", f"lines[{index}].quantity",
                    f"Only {max(line.available, 0)} of SKU {line.sku} left ({line.quantity} in the cart). Lower "
                    "the quantity with update_cart_item, or remove the line with remove_from_cart.",
                )
            )  # fmt: skip
    subtotal = sum(line.amount for line in lines)
    if redeemed is None:
        codes = _usable_codes(conn, config, profile, currency, subtotal, discount_codes, buyer, now, messages)
    else:
        codes = list(redeemed)
    rates = shipping_rates_for(config, currency, lines)
    if not rates:  # a store with no shipping rate in this currency does not ship: no address or option asked
        lines = [replace(line, requires_shipping=False) for line in lines]
    requires_shipping = bool(rates)
    destination = destination_of(shipping_address)
    options: list[ShippingRate] = []
    option: ShippingRate | None = None
    if requires_shipping:
        if destination is None:
            messages.append(
                Notice(
                    "error", "shipping_address_required", "shipping_address",
                    "Some items ship: set the buyer's shipping address with update_cart(shipping_address=...), "
                    "or leave it to the buyer on the checkout page.",
                )
            )  # fmt: skip
        else:
            options = pricing.rates_for(rates, destination.country, currency)
            option = next((rate for rate in options if rate.rate_id == fulfillment_option_id), None)
            if not options:
                messages.append(
                    Notice(
                        "error", "address_undeliverable", "shipping_address.country",
                        f"The store does not ship to {destination.country} (in {currency}). Use another address, "
                        "or remove the items that ship.",
                    )
                )  # fmt: skip
            elif option is None:
                choices = ", ".join(rate.rate_id for rate in options)
                what = (
                    f"Option {fulfillment_option_id!r} does not serve this address"
                    if fulfillment_option_id
                    else "Choose how to ship"
                )
                messages.append(
                    Notice(
                        "error", "fulfillment_option_required", "fulfillment_option_id",
                        f"{what}: set fulfillment_option_id with update_cart to one of {choices} "
                        "(see fulfillment_options).",
                    )
                )  # fmt: skip
            if options and shipping_address and is_quote_destination(shipping_address):
                messages += _full_address_notices(shipping_address)
    elif destination is None and profile.origin_country:
        destination = Destination(profile.origin_country)  # nothing ships: taxed where the store is
    tax_rates = config.tax_table_in(destination.country) if destination is not None else ()
    result = pricing.quote(
        lines, currency=currency, prices_include_tax=profile.prices_include_tax, destination=destination,
        shipping=option, tax_rates=tax_rates, discounts=codes, frozen_discounts=frozen_discounts,
    )  # fmt: skip
    return Priced(result, profile, options, option, codes, messages)


def _usable_codes(
    conn: Connection,
    config: StoreConfig,
    profile: StoreProfile,
    currency: str,
    subtotal: int,
    wanted: Sequence[str],
    buyer: str,
    now: datetime,
    messages: list[Notice],
) -> list[DiscountCode]:
    names = list(dict.fromkeys(normalize_code(code) for code in wanted if code.strip()))
    found = config.codes(conn, names) if names else {}
    usable: list[DiscountCode] = []
    for index, name in enumerate(names):
        path = f"discount_codes[{index}]"
        code = found.get(name)
        if code is None:
            messages.append(
                Notice("error", "discount_code_invalid", path,
                       f"There is no discount code {name}. Check the spelling with the buyer, or remove it.")
            )  # fmt: skip
            continue
        uses = pricing_store.buyer_uses(conn, name, buyer) if code.max_uses_per_buyer is not None else 0
        problem = pricing.discount_problem(code, currency=currency, subtotal=subtotal, now=now, buyer_uses=uses,
                                           path=path)  # fmt: skip
        if problem is not None:
            messages.append(problem)
        elif usable and not profile.allow_discount_stacking:
            messages.append(
                Notice("error", "discount_code_invalid", path,
                       f"This store takes one discount code per order; {usable[0].code} is applied. "
                       f"Remove {name} or {usable[0].code}.")
            )  # fmt: skip
        else:
            usable.append(code)
    return usable


# ---------------------------------------------------------------- views
def option_out(rate: ShippingRate, price: int) -> FulfillmentOptionOut:
    pickup = rate.pickup_address
    return FulfillmentOptionOut(
        option_id=rate.rate_id,
        kind=rate.kind,
        name=rate.name,
        carrier=rate.carrier,
        price=MoneyOut.minor(price, rate.currency),
        min_days=rate.min_days,
        max_days=rate.max_days,
        pickup_address=ShippingAddressOut.model_validate(pickup) if pickup else None,
    )


def option_snapshot(rate: ShippingRate, price: int) -> dict[str, Any]:
    """The chosen option as stored on an order (orders.fulfillment_option): as it was when chosen."""
    return option_out(rate, price).model_dump(mode="json")


def messages_out(messages: Sequence[Notice]) -> list[CheckoutMessage]:
    return [CheckoutMessage(severity=m.severity, code=m.code, path=m.path, message=m.message) for m in messages]


def breakdown(priced: Priced) -> dict[str, Any]:
    """The Breakdown and delivery fields a cart view shows for this quote."""
    q = priced.quote
    money = q.currency
    goods = q.subtotal - q.discount_total
    return {
        "subtotal": MoneyOut.minor(q.subtotal, money),
        "discount_total": MoneyOut.minor(q.discount_total, money),
        "shipping_total": MoneyOut.minor(q.shipping_total, money),
        "tax_total": MoneyOut.minor(q.tax_total, money),
        "total": MoneyOut.minor(q.total, money),
        "prices_include_tax": q.prices_include_tax,
        "fulfillment_options": [option_out(rate, rate.charge(goods)) for rate in priced.options],
        "discounts": [AppliedDiscount(code=code, amount=MoneyOut.minor(amount, money)) for code, amount in q.discounts],
        "messages": messages_out(priced.messages),
        "ready": priced.ready,
    }


def describe_total(priced: Priced) -> str:
    return format_money(priced.quote.total, priced.quote.currency, priced.profile.locale)


def delivery_gap(order: Mapping[str, Any] | RowMapping) -> str | None:
    """What an unpaid order that ships still lacks before its total is final: "address", "option" or None."""
    if order["status"] != "pending_payment" or not order["requires_shipping"]:
        return None
    if not order["shipping_address"]:
        return "address"
    return None if order["fulfillment_option"] else "option"


def order_notices(conn: Connection, order: Mapping[str, Any] | RowMapping) -> list[Notice]:
    """What an unpaid order still lacks before it can be paid (the buyer may finish it on the checkout page),
    with the codes a cart in the same state shows: no address, an address no rate serves, or no option."""
    return order_notices_from(order, lambda: pricing_store.active_shipping_rates(conn))


def notices_need_rates(order: Mapping[str, Any] | RowMapping) -> bool:
    """Whether :func:`order_notices_from` asks for the store's shipping rates (an address, but no option yet)."""
    return delivery_gap(order) == "option"


def order_notices_from(
    order: Mapping[str, Any] | RowMapping, rates: Callable[[], Sequence[ShippingRate]]
) -> list[Notice]:
    """:func:`order_notices` with the store's active shipping rates from ``rates`` (called for an order that
    lacks its option only, not on a quote's path)."""
    gap = delivery_gap(order)
    if gap is None:
        return []
    if gap == "address":
        return [
            Notice("error", "shipping_address_required", "shipping_address",
                   "The order ships but has no address: the buyer gives it on the checkout page "
                   "(create_checkout_link), or pass shipping_address to create_order.")
        ]  # fmt: skip
    currency, destination = order["currency"], destination_of(order["shipping_address"])
    assert destination is not None
    if not pricing.rates_for(rates(), destination.country, currency):
        return [
            Notice("error", "address_undeliverable", "shipping_address.country",
                   f"The store does not ship to {destination.country} (in {currency}): the buyer gives another "
                   "address on the checkout page (create_checkout_link).")
        ]  # fmt: skip
    return [
        Notice("error", "fulfillment_option_required", "fulfillment_option_id",
               "The order has no shipping option yet: the buyer picks one on the checkout page "
               "(create_checkout_link), or pass fulfillment_option_id to create_order.")
    ]  # fmt: skip


def shipping_rates_for(config: StoreConfig, currency: str, lines: Sequence[pricing.Line]) -> list[ShippingRate]:
    """The store's active rates in ``currency`` if some line ships; none (nothing ships) otherwise."""
    return config.shipping_rates_in(currency) if any(line.requires_shipping for line in lines) else []


# ---------------------------------------------------------------- destinations
# A cart's shipping address is a full postal address, or a quote destination: the country (region and postal
# code if known) that platforms send before the buyer types a street. A quote destination prices shipping
# options (rates are per country) and tax (per country and region); placing an order that ships needs the full
# address (order_address), and the cart says which parts are missing until then.
_STREET: Final = ("line1", "line2", "city")
_TO_PLACE: Final = ("line1", "city", "postal_code", "name")


def is_quote_destination(address: Mapping[str, Any]) -> bool:
    """Whether ``address`` only says where to quote: no street and no city yet."""
    return not any(isinstance(address.get(part), str) and address[part].strip() for part in _STREET)


def clean_destination(address: Mapping[str, Any], field: str = "shipping_address") -> dict[str, Any]:
    """A cart's shipping address checked: a quote destination (country; region and postal code optional; ISO
    3166 checked as in a full address), or a full address (:func:`clean_address`); InvalidInput names the field."""
    if is_quote_destination(address):
        return dict(rates.check_destination(address, field))
    return clean_address(address, field)


def missing_to_place(address: Mapping[str, Any]) -> list[str]:
    """The parts of a full address that ``address`` lacks (those an order that ships needs)."""
    return [part for part in _TO_PLACE if not (isinstance(address.get(part), str) and address[part].strip())]


def order_address(
    address: Mapping[str, Any] | None, *, ships: bool, field: str = "shipping_address"
) -> dict[str, Any] | None:
    """The shipping address an order keeps: a full address checked (:func:`clean_address`), or None (none
    given, or a quote destination when nothing ships). A quote destination for an order that ships is
    InvalidInput naming the missing parts: an order is never placed for a country alone."""
    if not address:
        return None
    if not is_quote_destination(address):
        return clean_address(address, field)
    if not ships:
        return None
    missing = missing_to_place(address)
    raise InvalidInput(
        f"{field}.{missing[0]} is required to place an order that ships: {field} is only a destination to quote "
        f"({address.get('country')}), without {', '.join(missing)}. Give the full address (update_cart or "
        "create_order), or none (on a cart: shipping_address=null) and the buyer gives it on the checkout page.",
        details={"field": f"{field}.{missing[0]}", "missing": [f"{field}.{part}" for part in missing]},
        next_actions=["update_cart", "get_cart"],
    )


def _full_address_notices(address: Mapping[str, Any]) -> list[Notice]:
    where = address.get("country")
    return [
        Notice(
            "error", "shipping_address_required", f"shipping_address.{part}",
            f"shipping_address.{part} is required to place the order (options and tax are quoted for {where} "
            "until then): set the full address with update_cart(shipping_address=...).",
        )
        for part in missing_to_place(address)
    ]  # fmt: skip


def clean_address(address: Mapping[str, Any], field: str = "shipping_address") -> dict[str, Any]:
    """A buyer's shipping address checked like every postal address (service/rates.check_address: required
    parts, ISO 3166 country and region, bounded text); InvalidInput names the field."""
    return dict(rates.check_address(address, field))


def empty_cart_message() -> CheckoutMessage:
    return CheckoutMessage(
        severity="error", code="cart_empty", path="lines", message="The cart is empty: add items with add_to_cart."
    )


def check_option_exists(config: StoreConfig, option_id: str, currency: str) -> None:
    """InvalidInput naming fulfillment_option_id unless the store has that active rate in ``currency``."""
    rates = config.shipping_rates_in(currency)
    if not any(rate.rate_id == option_id for rate in rates):
        known = ", ".join(rate.rate_id for rate in rates[:10]) or "none yet"
        raise InvalidInput(
            f"fulfillment_option_id {option_id!r} is not one of the store's shipping options in {currency} "
            f"({known}). Set shipping_address first, then pick an option_id from fulfillment_options.",
            details={"field": "fulfillment_option_id", "value": option_id[:64]},
            next_actions=["get_cart"],
        )
