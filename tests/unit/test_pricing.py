"""Pricing rules (domain/pricing.py): discount allocation, tax per line (inclusive and exclusive), shipping,
rate look-ups and the totals identities, as examples and as hypothesis properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_checkout.domain.pricing import (
    AppliesTo,
    Destination,
    DiscountCode,
    Line,
    ShippingRate,
    TaxRate,
    allocate,
    discount_problem,
    half_up,
    quote,
    rates_for,
    tax_of,
    tax_rate_for,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
US_CA = Destination("US", "CA")
GROUND = ShippingRate("ground", "Ground", 599, "USD", ("US",), free_over=5000)


def mug(qty: int = 1, price: int = 1800, **kw: object) -> Line:
    return Line("MUG", price, qty, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- examples
def test_exclusive_tax_is_added_on_top_per_line_half_up() -> None:
    lines = [Line("A", 1005, 1), Line("B", 1005, 1)]
    q = quote(lines, currency="USD", prices_include_tax=False, destination=US_CA,
              tax_rates=[TaxRate("US", 725, "CA")])  # fmt: skip
    # 1005 * 7.25 % = 72.8625 -> 73 per line; the order's tax is the lines' sum, not round(2010 * 7.25 %) = 146
    assert [line.tax for line in q.lines] == [73, 73]
    assert q.tax_total == 146 and q.total == 2010 + 146


def test_inclusive_tax_is_contained_in_the_price() -> None:
    q = quote([mug(price=1200)], currency="EUR", prices_include_tax=True, destination=Destination("DE"),
              tax_rates=[TaxRate("DE", 1900)])  # fmt: skip
    assert q.lines[0].tax == 192  # 1200 - 1200/1.19 = 191.6 -> 192
    assert q.total == 1200 and q.tax_total == 192


def test_half_up_rounds_halves_up() -> None:
    assert [half_up(n, 2) for n in (1, 3, 5)] == [1, 2, 3]
    assert tax_of(10, 500, inclusive=False) == 1  # 0.5 -> 1


def test_percent_discount_is_allocated_exactly_and_taxed_after() -> None:
    lines = [Line("A", 333, 1), Line("B", 333, 1), Line("C", 334, 1)]
    code = DiscountCode("TEN", "percent", 1000)
    q = quote(lines, currency="USD", prices_include_tax=False, discounts=[code], destination=US_CA,
              tax_rates=[TaxRate("US", 1000)])  # fmt: skip
    assert q.discount_total == 100 and sum(line.discount for line in q.lines) == 100
    assert q.discounts == (("TEN", 100),)
    assert [line.tax for line in q.lines] == [round((line.amount - line.discount) / 10) for line in q.lines]


def test_fixed_discount_never_exceeds_the_eligible_lines() -> None:
    lines = [Line("A", 500, 1, category="Mugs"), Line("B", 9000, 1, category="Chairs")]
    code = DiscountCode("BIG", "fixed", 10_000, currency="USD", applies_to=AppliesTo(categories=("mugs",)))
    q = quote(lines, currency="USD", prices_include_tax=False, discounts=[code])
    assert [line.discount for line in q.lines] == [500, 0]
    assert q.total == 9000


def test_sku_scoped_code_only_touches_those_skus() -> None:
    lines = [Line("A", 1000, 1), Line("B", 1000, 1)]
    code = DiscountCode("B50", "percent", 5000, applies_to=AppliesTo(skus=("B",)))
    q = quote(lines, currency="USD", prices_include_tax=False, discounts=[code])
    assert [line.discount for line in q.lines] == [0, 500]


def test_shipping_is_free_over_the_threshold_after_discount() -> None:
    assert quote([mug(2)], currency="USD", prices_include_tax=False, shipping=GROUND).shipping_total == 599
    assert quote([mug(3, price=2000)], currency="USD", prices_include_tax=False, shipping=GROUND).shipping_total == 0
    ten = DiscountCode("TEN", "percent", 1000)  # 6000 - 600 = 5400 still over 5000; 5000 - 500 is not
    assert quote([mug(3, price=2000)], currency="USD", prices_include_tax=False, shipping=GROUND,
                 discounts=[ten]).shipping_total == 0  # fmt: skip
    assert quote([mug(1, price=5000)], currency="USD", prices_include_tax=False, shipping=GROUND,
                 discounts=[ten]).shipping_total == 599  # fmt: skip


def test_free_shipping_code_waives_the_charge_and_reports_it() -> None:
    code = DiscountCode("SHIPFREE", "free_shipping")
    q = quote([mug()], currency="USD", prices_include_tax=False, shipping=GROUND, discounts=[code])
    assert q.shipping_total == 0 and q.discount_total == 0 and q.discounts == (("SHIPFREE", 599),)


def test_nothing_to_ship_means_no_shipping_charge() -> None:
    q = quote([mug(requires_shipping=False)], currency="USD", prices_include_tax=False, shipping=GROUND)
    assert q.shipping_total == 0 and not q.requires_shipping and q.shipping_option is None


def test_shipping_tax_only_when_the_rate_applies_to_shipping() -> None:
    taxed = [TaxRate("US", 1000, applies_to_shipping=True)]
    untaxed = [TaxRate("US", 1000)]
    q = quote([mug()], currency="USD", prices_include_tax=False, shipping=GROUND, destination=US_CA, tax_rates=taxed)
    assert q.shipping_tax == 60 and q.tax_total == 180 + 60 and q.total == 1800 + 599 + 240
    q = quote([mug()], currency="USD", prices_include_tax=False, shipping=GROUND, destination=US_CA, tax_rates=untaxed)
    assert q.shipping_tax == 0 and q.tax_total == 180


def test_tax_rate_lookup_most_specific_first_then_standard_and_zero_is_zero() -> None:
    rates = [
        TaxRate("US", 600),
        TaxRate("US", 725, region="CA"),
        TaxRate("US", 100, category="reduced"),
        TaxRate("US", 50, region="CA", category="reduced"),
    ]
    assert tax_rate_for(rates, US_CA, "standard") == rates[1]
    assert tax_rate_for(rates, Destination("US", "NY"), "standard") == rates[0]
    assert tax_rate_for(rates, US_CA, "reduced") == rates[3]
    assert tax_rate_for(rates, Destination("US", "NY"), "reduced") == rates[2]
    assert tax_rate_for(rates, US_CA, "books") == rates[1]  # an unknown category pays the standard rate
    assert tax_rate_for(rates, US_CA, "zero") is None
    assert tax_rate_for(rates, Destination("DE"), "standard") is None


def test_rates_for_prefers_rates_naming_the_country_over_rest_of_world() -> None:
    world = ShippingRate("world", "World", 2500, "USD", ("*",))
    eur = ShippingRate("eu", "EU", 900, "EUR", ("DE",))
    off = ShippingRate("off", "Off", 1, "USD", ("US",), active=False)
    rates = [GROUND, world, eur, off]
    assert rates_for(rates, "US", "USD") == [GROUND]
    assert rates_for(rates, "FR", "USD") == [world]
    assert rates_for(rates, "DE", "USD") == [world]  # the EUR rate is not in the cart's currency
    assert rates_for([GROUND], "FR", "USD") == []


def test_discount_problems_name_the_reason() -> None:
    def problem(code: DiscountCode, subtotal: int = 5000, buyer_uses: int = 0) -> str | None:
        found = discount_problem(code, currency="USD", subtotal=subtotal, now=NOW, buyer_uses=buyer_uses,
                                 path="discount_codes[0]")  # fmt: skip
        return None if found is None else found.code

    assert problem(DiscountCode("OK", "percent", 1000)) is None
    assert problem(DiscountCode("OFF", "percent", 1000, active=False)) == "discount_code_invalid"
    assert problem(DiscountCode("SOON", "percent", 1000, starts_at=NOW + timedelta(days=1))) == "discount_code_invalid"
    assert problem(DiscountCode("OLD", "percent", 1000, ends_at=NOW)) == "discount_code_expired"
    assert problem(DiscountCode("EUR", "fixed", 500, currency="EUR")) == "discount_code_invalid"
    assert problem(DiscountCode("GONE", "percent", 1000, max_uses=3, uses=3)) == "discount_code_exhausted"
    assert problem(DiscountCode("ONCE", "percent", 1000, max_uses_per_buyer=1), buyer_uses=1) == (
        "discount_code_exhausted"
    )
    assert problem(DiscountCode("MIN", "fixed", 500, currency="USD", min_subtotal=6000)) == "discount_minimum_not_met"


def test_allocate_largest_remainder_ties_to_the_first() -> None:
    assert allocate(100, [100, 100, 100]) == [34, 33, 33]
    assert allocate(100, [1, 1, 1]) == [1, 1, 1]  # never more than the lines hold
    assert allocate(2, [1, 1, 1]) == [1, 1, 0]
    assert allocate(0, [5, 5]) == [0, 0]


# ---------------------------------------------------------------- properties
LINES = st.lists(
    st.builds(
        Line,
        sku=st.sampled_from(["A", "B", "C", "D", "E"]),
        unit_price=st.integers(0, 500_000),
        quantity=st.integers(1, 999),
        category=st.sampled_from(["", "mugs", "chairs"]),
        tax_category=st.sampled_from(["standard", "reduced", "zero", "books"]),
        requires_shipping=st.booleans(),
    ),
    min_size=1,
    max_size=8,
)
CODES = st.lists(
    st.one_of(
        st.builds(DiscountCode, code=st.just("P"), kind=st.just("percent"), value=st.integers(0, 10_000),
                  applies_to=st.sampled_from([AppliesTo(), AppliesTo(categories=("mugs",)), AppliesTo(skus=("B",))])),
        st.builds(DiscountCode, code=st.just("F"), kind=st.just("fixed"), value=st.integers(0, 10_000_000),
                  applies_to=st.sampled_from([AppliesTo(), AppliesTo(categories=("chairs",))])),
        st.builds(DiscountCode, code=st.just("S"), kind=st.just("free_shipping")),
    ),
    max_size=3,
    unique_by=lambda code: code.code,
)  # fmt: skip
TAXES = st.lists(
    st.builds(TaxRate, country=st.just("US"), rate_bps=st.integers(0, 5000), region=st.sampled_from(["", "CA"]),
              category=st.sampled_from(["standard", "reduced"]), applies_to_shipping=st.booleans()),
    max_size=4,
)  # fmt: skip
SHIPPING = st.none() | st.builds(
    ShippingRate, rate_id=st.just("r"), name=st.just("R"), price=st.integers(0, 100_000), currency=st.just("USD"),
    countries=st.just(("US",)), free_over=st.none() | st.integers(0, 1_000_000),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(LINES, CODES, TAXES, SHIPPING, st.booleans(), st.sampled_from([None, US_CA, Destination("US", "NY")]))
def test_totals_are_the_sum_of_their_parts(
    lines: list[Line],
    codes: list[DiscountCode],
    taxes: list[TaxRate],
    shipping: ShippingRate | None,
    inclusive: bool,
    destination: Destination | None,
) -> None:
    q = quote(lines, currency="USD", prices_include_tax=inclusive, destination=destination, shipping=shipping,
              tax_rates=taxes, discounts=codes)  # fmt: skip
    assert q.subtotal == sum(line.amount for line in lines)
    assert q.discount_total == sum(line.discount for line in q.lines)
    assert q.discount_total == sum(amount for code, amount in q.discounts if code != "S")
    assert q.tax_total == sum(line.tax for line in q.lines) + q.shipping_tax
    expected = q.subtotal - q.discount_total + q.shipping_total + (0 if inclusive else q.tax_total)
    assert q.total == expected
    for line in q.lines:
        assert 0 <= line.discount <= line.amount
        assert line.tax >= 0
        if inclusive:  # tax is inside what the buyer pays for the line
            assert line.tax <= line.amount - line.discount
    assert q.total >= 0 and q.shipping_total >= 0
    if destination is None:
        assert q.tax_total == 0


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**9), st.integers(1, 10_000))
def test_exclusive_and_inclusive_tax_identities(net: int, bps: int) -> None:
    exclusive = tax_of(net, bps, inclusive=False)
    assert abs(Fraction(exclusive) - Fraction(net * bps, 10_000)) <= Fraction(1, 2)
    gross = net + exclusive
    inclusive = tax_of(gross, bps, inclusive=True)
    # the tax contained in a gross price is round(gross - gross*10000/(10000+bps)): within half a unit of exact
    exact = Fraction(gross) - Fraction(gross * 10_000, 10_000 + bps)
    assert abs(Fraction(inclusive) - exact) <= Fraction(1, 2)
    assert inclusive == half_up(gross * bps, 10_000 + bps)
    # and pulling it back out gives the net within one minor unit
    assert abs((gross - inclusive) - net) <= 1


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**8), st.lists(st.integers(0, 10**7), min_size=1, max_size=20))
def test_allocation_sums_exactly_and_never_exceeds_a_line(amount: int, weights: list[int]) -> None:
    shares = allocate(amount, weights)
    assert sum(shares) == min(amount, sum(weights))
    assert all(0 <= share <= weight for share, weight in zip(shares, weights, strict=True))
    total = sum(weights)
    if total:  # each share is its exact proportion rounded down or up
        for share, weight in zip(shares, weights, strict=True):
            assert abs(Fraction(share) - Fraction(min(amount, total) * weight, total)) < 1


def test_a_tax_category_matches_however_it_is_written() -> None:
    rates = [TaxRate("DE", 700, category="Books"), TaxRate("DE", 1900)]
    found = tax_rate_for(
        rates, Destination("DE"), "\uff22\uff2f\uff2f\uff2b\uff33"
    )  # full-width BOOKS: the same after NFKC
    assert found is not None and found.rate_bps == 700
