"""Money: minor-unit exponents and display come from CLDR (babel), for every currency alike."""

from __future__ import annotations

import random

import pytest

from mcp_checkout.domain import Money, _cldr_money, currency_exponent, format_money


@pytest.mark.parametrize(
    ("currency", "exponent"), [("USD", 2), ("EUR", 2), ("JPY", 0), ("KRW", 0), ("BHD", 3), ("KWD", 3), ("usd", 2)]
)
def test_minor_unit_exponent_per_currency(currency: str, exponent: int) -> None:
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (3600, "USD", "$36.00"),
        (5, "USD", "$0.05"),
        (1500, "JPY", "¥1,500"),  # yen have no minor unit: 1500 is fifteen hundred yen, not 15.00
        (123456789, "USD", "$1,234,567.89"),
        (-1000, "EUR", "-€10.00"),
        (2700, "GBP", "£27.00"),
    ],
)
def test_display_in_the_default_locale(amount: int, currency: str, shown: str) -> None:
    assert Money(amount, currency).display() == shown


def test_display_follows_the_locale() -> None:
    assert format_money(150000, "EUR", "de_DE") == "1.500,00\xa0€"
    assert format_money(1500, "JPY", "ja_JP") == "￥1,500"


@pytest.mark.parametrize(
    ("currency", "locale"),
    [("USD", "en_US"), ("EUR", "de_DE"), ("EUR", "fr_FR"), ("JPY", "ja_JP"), ("BHD", "ar_BH"), ("USD", "he_IL"),
     ("INR", "en_IN"), ("CHF", "de_CH"), ("EUR", "pl_PL"), ("CLF", "es_CL")],
)  # fmt: skip
def test_display_is_babels_for_every_amount_whether_templated_or_not(currency: str, locale: str) -> None:
    # format_money formats from a template derived from babel's output when babel's rules for this currency and
    # locale are one (en_IN's 2-digit groups and de_CH's ungrouped CHF are not): the answer is babel's either way.
    rng = random.Random(f"{currency}{locale}")
    amounts = [0, 1, -1, 999, 1000, -1000, 123456, 10**15 - 1, *(rng.randint(-(10**13), 10**13) for _ in range(300))]
    for amount in amounts:
        assert format_money(amount, currency, locale) == _cldr_money(amount, currency, locale), amount
