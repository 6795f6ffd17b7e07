"""Quotes from the database (service/quotes.py over store/pricing.py): the rates and codes a cart sees, the
messages that say what is missing, and discount usage taken by a conditional update, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection

from mcp_checkout.domain import utc_now
from mcp_checkout.domain.pricing import Line
from mcp_checkout.domain.store_profile import StoreProfile
from mcp_checkout.service import quotes
from mcp_checkout.service.container import Services
from mcp_checkout.service.store_profile import ConfigCache
from mcp_checkout.store import pricing as pricing_store
from tests.pricing_rows import add_discount_code, add_shipping_rate, add_tax_rate

PROFILE = StoreProfile(name="Shop", default_currency="USD")
LINES = [Line("MUG-01", 1800, 2, category="Kitchen"), Line("EBOOK", 500, 1, requires_shipping=False)]


STREET = {"name": "Ada Buyer", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345"}


def _price(
    conn: Connection, address: dict[str, str] | None, option: str | None, codes: list[str], *, street: bool = True
) -> quotes.Priced:
    """A quote for ``address`` (country, region) completed with a street, unless ``street`` is False: then it
    is a quote destination."""
    if address is not None and street:
        address = {**STREET, **address}
    return quotes.quote(
        conn, config=ConfigCache(PROFILE).get(conn), currency="USD", lines=LINES, shipping_address=address,
        fulfillment_option_id=option, discount_codes=codes, buyer="principal:test", now=utc_now(),
    )  # fmt: skip


def _setup(conn: Connection) -> None:
    add_shipping_rate(conn, "ground", 599, ["US"], free_over=10_000)
    add_shipping_rate(conn, "express", 1999, ["US"], carrier="UPS", min_days=1, max_days=2)
    add_shipping_rate(conn, "world", 2500, ["*"])
    add_shipping_rate(conn, "eu", 900, ["FR"], currency="EUR")
    add_tax_rate(conn, "US", 600)
    add_tax_rate(conn, "US", 725, region="CA", applies_to_shipping=True)
    add_discount_code(conn, "TEN", "percent", 1000)
    add_discount_code(conn, "OLD", "percent", 1000, ends_at=utc_now() - timedelta(days=1))
    add_discount_code(conn, "BIG", "fixed", 1000, currency="USD", min_subtotal=50_000)
    add_discount_code(conn, "GONE", "percent", 1000, max_uses=2, uses=2)
    add_discount_code(conn, "SHIP", "free_shipping", 0)


def codes_of(priced: quotes.Priced) -> list[tuple[str, str | None]]:
    return [(message.code, message.path) for message in priced.messages]


async def test_a_quote_says_what_is_missing_and_prices_what_is_there(seeded: Services) -> None:
    def run(conn: Connection) -> None:
        _setup(conn)
        no_address = _price(conn, None, None, [])
        assert codes_of(no_address) == [("shipping_address_required", "shipping_address")]
        assert not no_address.ready and no_address.quote.shipping_total == 0

        ca = {"country": "US", "region": "CA"}
        unchosen = _price(conn, ca, None, [])
        assert codes_of(unchosen) == [("fulfillment_option_required", "fulfillment_option_id")]
        assert [rate.rate_id for rate in unchosen.options] == ["ground", "express"]  # the US ones, not "world"

        chosen = _price(conn, ca, "express", ["ten"])
        assert chosen.ready and chosen.messages == []
        q = chosen.quote
        assert q.subtotal == 4100 and q.discount_total == 410 and q.shipping_total == 1999
        # 7.25 % on (3600 - 360) and (500 - 50), and on shipping (applies_to_shipping in CA)
        assert [line.tax for line in q.lines] == [235, 33] and q.shipping_tax == 145
        assert q.total == 4100 - 410 + 1999 + 235 + 33 + 145

        abroad = _price(conn, {"country": "DE"}, "world", [])
        assert abroad.ready and abroad.quote.shipping_total == 2500 and abroad.quote.tax_total == 0
        assert codes_of(_price(conn, {"country": "US"}, "world", [])) == [
            ("fulfillment_option_required", "fulfillment_option_id")
        ]

        problems = _price(conn, ca, "ground", ["nope", "old", "big", "gone", "ship"])
        assert codes_of(problems) == [
            ("discount_code_invalid", "discount_codes[0]"),
            ("discount_code_expired", "discount_codes[1]"),
            ("discount_minimum_not_met", "discount_codes[2]"),
            ("discount_code_exhausted", "discount_codes[3]"),
        ]
        assert problems.quote.discounts == (("SHIP", 599),) and problems.quote.shipping_total == 0

        one_only = _price(conn, ca, "ground", ["ten", "ship"])
        assert codes_of(one_only) == [("discount_code_invalid", "discount_codes[1]")]

    await seeded.db.write(run)


async def test_a_quote_destination_prices_options_and_tax_and_names_what_placing_needs(seeded: Services) -> None:
    """A country and region without a street (what platforms send first) gets the same options, shipping and
    tax as the full address, and one message per part an order that ships needs; before, the cart never held
    one (update_cart refused it) and nothing said what was missing."""

    def run(conn: Connection) -> None:
        _setup(conn)
        full = _price(conn, {"country": "US", "region": "CA"}, "express", [])
        quoted = _price(conn, {"country": "US", "region": "CA"}, "express", [], street=False)
        assert [rate.rate_id for rate in quoted.options] == ["ground", "express"]
        assert quoted.quote == full.quote and quoted.option == full.option
        assert codes_of(quoted) == [("shipping_address_required", f"shipping_address.{part}")
                                    for part in ("line1", "city", "postal_code", "name")]  # fmt: skip
        assert not quoted.ready and full.ready
        elsewhere = _price(conn, {"country": "JP"}, None, [], street=False)  # rates per country, or "*"
        assert [rate.rate_id for rate in elsewhere.options] == ["world"]
        assert quotes.order_address({"country": "US"}, ships=False) is None  # nothing ships: no address kept

    await seeded.db.write(run)


async def test_undeliverable_when_no_rate_serves_the_country(seeded: Services) -> None:
    def run(conn: Connection) -> None:
        add_shipping_rate(conn, "ground", 599, ["US"])
        priced = _price(conn, {"country": "FR"}, None, [])
        assert codes_of(priced) == [("address_undeliverable", "shipping_address.country")]

    await seeded.db.write(run)


async def test_a_use_is_taken_only_while_one_is_left(seeded: Services) -> None:
    def run(conn: Connection) -> list[bool]:
        add_discount_code(conn, "THREE", max_uses=3)
        add_discount_code(conn, "ANY")
        taken = [pricing_store.take_use(conn, "THREE") for _ in range(5)]
        assert all(pricing_store.take_use(conn, "ANY") for _ in range(5))
        assert pricing_store.codes(conn, ["three", "any"])["ANY"].uses == 5
        return taken

    assert await seeded.db.write(run) == [True, True, True, False, False]


async def test_a_store_without_shipping_rates_asks_for_no_address(seeded: Services) -> None:
    def run(conn: Connection) -> None:
        priced = _price(conn, None, None, [])
        assert priced.ready and priced.messages == [] and not priced.quote.requires_shipping
        add_shipping_rate(conn, "eu", 900, ["FR"], currency="EUR")  # another currency: still nothing ships in USD
        assert _price(conn, None, None, []).ready
        add_shipping_rate(conn, "ground", 599, ["US"])
        assert codes_of(_price(conn, None, None, [])) == [("shipping_address_required", "shipping_address")]

    await seeded.db.write(run)
