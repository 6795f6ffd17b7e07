"""Pricing rules: which shipping rates serve a destination, which tax rate applies, whether a discount code
can be used, and the priced breakdown (a Quote) of a cart or order. Pure: integer minor units in, out.

Rules (each is tested in tests/unit/test_pricing.py):
- Discounts are applied code by code, in the order given, to what is left of each eligible line; a code's
  amount is spread over its lines in proportion to their amounts, largest remainder first, so the shares sum
  exactly to the amount and never exceed a line (no line, and so no total, goes negative).
  ``percent``: half-up(eligible * bps / 10000). ``fixed``: min(value, eligible). ``free_shipping``: the
  shipping charge becomes 0 (its amount is the charge it waived; it is not in ``discount_total``, which is the
  lines' discounts only).
- Shipping: the chosen rate's price, or 0 when the goods after discount reach its ``free_over``, or when
  nothing needs shipping.
- Tax, per line, on the line after its discount, rounded half-up to the minor unit:
  exclusive (added on top) ``tax = half_up(net * bps / 10000)``; inclusive (contained in the price)
  ``tax = half_up(net * bps / (10000 + bps))`` (= net - net*10000/(10000+bps)). Shipping is taxed the same way
  at the destination's standard rate when that rate ``applies_to_shipping``. The order's tax is the sum of
  its lines' tax plus the shipping tax.
- Tax rate lookup for (country, region, category): the region's rate for the category, else the country's
  (region "") for the category, else the same two for "standard"; no rate at all: 0. Category "zero" is
  always 0 %.
- Totals: exclusive ``total = subtotal - discount_total + shipping_total + tax_total``; inclusive
  ``total = subtotal - discount_total + shipping_total`` (tax_total shown, contained).
- Shipping rates for a country: the active rates in the cart's currency that list the country; only when none
  does, the rest-of-the-world rates (``countries == ["*"]``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from mcp_checkout.domain import category_key, format_money
from mcp_checkout.domain.address import REST_OF_WORLD

STANDARD = "standard"
ZERO = "zero"
BPS = 10_000

DiscountKind = Literal["percent", "fixed", "free_shipping"]
DISCOUNT_KINDS: tuple[DiscountKind, ...] = ("percent", "fixed", "free_shipping")
Severity = Literal["error", "warning", "info"]


def half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up (both >= 0, denominator > 0), in integers: no float error."""
    return (2 * numerator + denominator) // (2 * denominator)


# ---------------------------------------------------------------- inputs
@dataclass(frozen=True, slots=True)
class Line:
    """One priced line: unit price in minor units of the quote's currency."""

    sku: str
    unit_price: int
    quantity: int
    category: str = ""
    tax_category: str = STANDARD
    requires_shipping: bool = True

    @property
    def amount(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class Destination:
    country: str
    region: str = ""


@dataclass(frozen=True, slots=True)
class ShippingRate:
    rate_id: str
    name: str
    price: int
    currency: str
    countries: tuple[str, ...]
    kind: Literal["shipping", "pickup"] = "shipping"
    free_over: int | None = None
    carrier: str | None = None
    min_days: int | None = None
    max_days: int | None = None
    active: bool = True
    pickup_address: Mapping[str, str] | None = None

    def charge(self, goods_after_discount: int) -> int:
        """What this rate costs an order whose goods come to ``goods_after_discount``."""
        if self.free_over is not None and goods_after_discount >= self.free_over:
            return 0
        return self.price


@dataclass(frozen=True, slots=True)
class TaxRate:
    country: str
    rate_bps: int
    region: str = ""
    category: str = STANDARD
    applies_to_shipping: bool = False


@dataclass(frozen=True, slots=True)
class AppliesTo:
    """Which lines a code discounts: all (both tuples empty), or those in these categories or with these SKUs."""

    categories: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()

    @property
    def everything(self) -> bool:
        return not self.categories and not self.skus

    def covers(self, line: Line) -> bool:
        if self.everything:
            return True
        return line.sku in self.skus or category_key(line.category) in {category_key(c) for c in self.categories}


@dataclass(frozen=True, slots=True)
class DiscountCode:
    code: str
    kind: DiscountKind
    value: int = 0  # bps for percent, minor units for fixed
    currency: str | None = None  # the currency of a fixed value and of min_subtotal
    min_subtotal: int | None = None
    applies_to: AppliesTo = field(default_factory=AppliesTo)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_uses: int | None = None
    uses: int = 0
    max_uses_per_buyer: int | None = None
    active: bool = True


def normalize_code(code: str) -> str:
    """Discount codes are stored upper-case and matched case-insensitively."""
    return code.strip().upper()


# ---------------------------------------------------------------- messages
@dataclass(frozen=True, slots=True)
class Notice:
    """Something still missing or wrong, for a cart's or order's ``messages``."""

    severity: Severity
    code: str
    path: str | None
    message: str


def discount_problem(
    code: DiscountCode, *, currency: str, subtotal: int, now: datetime, buyer_uses: int, path: str
) -> Notice | None:
    """Why ``code`` cannot be used on this cart or order now, or None. ``buyer_uses``: how many placed
    orders of this buyer already used it."""

    def error(kind: str, message: str) -> Notice:
        return Notice("error", kind, path, message)

    remove = "Remove it with update_cart(discount_codes=[...]) or ask the buyer for another code."
    if not code.active or (code.starts_at is not None and now < code.starts_at):
        return error("discount_code_invalid", f"Discount code {code.code} is not active. {remove}")
    if code.ends_at is not None and now >= code.ends_at:
        return error("discount_code_expired", f"Discount code {code.code} has expired. {remove}")
    if code.currency is not None and code.currency != currency and (code.kind == "fixed" or code.min_subtotal):
        return error(
            "discount_code_invalid",
            f"Discount code {code.code} is for {code.currency} orders, not {currency}. {remove}",
        )
    if code.max_uses is not None and code.uses >= code.max_uses:
        return error("discount_code_exhausted", f"Discount code {code.code} has been used up. {remove}")
    if code.max_uses_per_buyer is not None and buyer_uses >= code.max_uses_per_buyer:
        return error(
            "discount_code_exhausted",
            f"This buyer has already used discount code {code.code} the most times allowed. {remove}",
        )
    if code.min_subtotal is not None and subtotal < code.min_subtotal:
        missing = format_money(code.min_subtotal - subtotal, currency)
        return error(
            "discount_minimum_not_met",
            f"Discount code {code.code} needs a subtotal of at least {format_money(code.min_subtotal, currency)}; "
            f"add {missing} more, or remove the code.",
        )
    return None


# ---------------------------------------------------------------- rates
def rates_for(rates: Sequence[ShippingRate], country: str, currency: str) -> list[ShippingRate]:
    """The active rates in ``currency`` that serve ``country``: those listing it, else rest-of-world ones."""
    usable = [rate for rate in rates if rate.active and rate.currency == currency]
    specific = [rate for rate in usable if country in rate.countries]
    if specific:
        return specific
    return [rate for rate in usable if REST_OF_WORLD in rate.countries]


class TaxTable:
    """Tax rates indexed for the module's lookup rule (build it once for a set of rates, e.g. per country
    of a store's configuration, not per line)."""

    __slots__ = ("_by_key",)

    def __init__(self, rates: Iterable[TaxRate]) -> None:
        self._by_key = {(rate.country, rate.region, category_key(rate.category)): rate for rate in rates}

    def rate_for(self, destination: Destination, category: str) -> TaxRate | None:
        """The rate for ``category`` at ``destination`` (see the module's lookup rule), or None (no tax)."""
        wanted = category_key(category) or STANDARD
        if wanted == ZERO:
            return None
        for cat in (wanted, STANDARD) if wanted != STANDARD else (STANDARD,):
            for region in (destination.region, "") if destination.region else ("",):
                found = self._by_key.get((destination.country, region, cat))
                if found is not None:
                    return found
        return None


def tax_rate_for(rates: Sequence[TaxRate] | TaxTable, destination: Destination, category: str) -> TaxRate | None:
    """The rate for ``category`` at ``destination`` (see the module's lookup rule), or None (no tax)."""
    return (rates if isinstance(rates, TaxTable) else TaxTable(rates)).rate_for(destination, category)


def tax_of(amount: int, rate_bps: int, *, inclusive: bool) -> int:
    """The tax on ``amount`` at ``rate_bps``: added on top (exclusive) or contained in it (inclusive)."""
    if amount <= 0 or rate_bps <= 0:
        return 0
    return half_up(amount * rate_bps, BPS + rate_bps) if inclusive else half_up(amount * rate_bps, BPS)


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split ``amount`` (0 <= amount <= sum(weights)) over ``weights`` in proportion, largest remainder first
    (ties to the earlier line): the shares sum to ``amount`` and no share exceeds its weight."""
    total = sum(weights)
    if amount <= 0 or total <= 0:
        return [0] * len(weights)
    amount = min(amount, total)
    shares = [amount * weight // total for weight in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    for index in remainders[: amount - sum(shares)]:
        shares[index] += 1
    return shares


# ---------------------------------------------------------------- the quote
@dataclass(frozen=True, slots=True)
class QuotedLine:
    sku: str
    amount: int  # unit price x quantity
    discount: int
    tax: int


@dataclass(frozen=True, slots=True)
class Quote:
    currency: str
    prices_include_tax: bool
    lines: tuple[QuotedLine, ...]
    subtotal: int
    discount_total: int  # the lines' discounts (free shipping shows as shipping_total 0)
    shipping_total: int
    shipping_tax: int
    tax_total: int  # lines' tax + shipping tax
    total: int
    discounts: tuple[tuple[str, int], ...]  # (code, amount) for each applied code
    requires_shipping: bool
    shipping_option: ShippingRate | None


def quote(
    lines: Sequence[Line],
    *,
    currency: str,
    prices_include_tax: bool,
    destination: Destination | None = None,
    shipping: ShippingRate | None = None,
    tax_rates: Sequence[TaxRate] | TaxTable = (),
    discounts: Sequence[DiscountCode] = (),
    frozen_discounts: Sequence[int] | None = None,
) -> Quote:
    """Price ``lines``: ``discounts`` are codes already checked usable (see discount_problem); ``shipping``
    is the chosen rate (None: no shipping charge yet); ``destination`` None: no tax yet. ``frozen_discounts``:
    the lines' discounts as an order froze them (then only free_shipping codes of ``discounts`` apply)."""
    amounts = [line.amount for line in lines]
    frozen = [min(max(d, 0), a) for d, a in zip(frozen_discounts, amounts, strict=True)] if frozen_discounts else None
    left = [a - d for a, d in zip(amounts, frozen, strict=True)] if frozen else list(amounts)
    line_discounts: list[int] = list(frozen) if frozen else [0] * len(lines)
    applied: dict[str, int] = {}
    free_shipping: list[str] = []
    for code in discounts:
        if code.kind == "free_shipping":
            free_shipping.append(code.code)
            continue
        if frozen is not None:  # already in the frozen line discounts
            applied[code.code] = 0
            continue
        eligible = [left[i] if code.applies_to.covers(line) else 0 for i, line in enumerate(lines)]
        base = sum(eligible)
        wanted = half_up(base * min(code.value, BPS), BPS) if code.kind == "percent" else min(code.value, base)
        shares = allocate(wanted, eligible)
        for i, share in enumerate(shares):
            left[i] -= share
            line_discounts[i] += share
        applied[code.code] = sum(shares)

    subtotal = sum(amounts)
    discount_total = sum(line_discounts)
    requires_shipping = any(line.requires_shipping for line in lines)
    charge = shipping.charge(subtotal - discount_total) if (shipping is not None and requires_shipping) else 0
    for index, code_name in enumerate(free_shipping):
        applied[code_name] = charge if index == 0 else 0
    shipping_total = 0 if free_shipping else charge

    line_taxes = [0] * len(lines)
    shipping_tax = 0
    if destination is not None:
        table = tax_rates if isinstance(tax_rates, TaxTable) else TaxTable(tax_rates)
        for i, line in enumerate(lines):
            rate = table.rate_for(destination, line.tax_category)
            line_taxes[i] = tax_of(left[i], rate.rate_bps, inclusive=prices_include_tax) if rate else 0
        standard = table.rate_for(destination, STANDARD)
        if standard is not None and standard.applies_to_shipping:
            shipping_tax = tax_of(shipping_total, standard.rate_bps, inclusive=prices_include_tax)
    tax_total = sum(line_taxes) + shipping_tax
    total = subtotal - discount_total + shipping_total + (0 if prices_include_tax else tax_total)
    return Quote(
        currency=currency,
        prices_include_tax=prices_include_tax,
        lines=tuple(QuotedLine(line.sku, amounts[i], line_discounts[i], line_taxes[i]) for i, line in enumerate(lines)),
        subtotal=subtotal,
        discount_total=discount_total,
        shipping_total=shipping_total,
        shipping_tax=shipping_tax,
        tax_total=tax_total,
        total=total,
        discounts=tuple((code.code, applied[code.code]) for code in discounts),
        requires_shipping=requires_shipping,
        shipping_option=shipping if requires_shipping else None,
    )
