"""Checks of the merchant's store settings (profile, shipping and tax rates, discount codes): one place
that turns a value the merchant typed into the stored form, or into an ``InvalidInput`` naming the field
and saying what to write instead. Countries and regions are checked by ``domain.address``."""

from __future__ import annotations

import re
from typing import Final

from babel import Locale, UnknownLocaleError

from mcp_checkout.errors import InvalidInput
from mcp_checkout.service import catalog_rules

MAX_URL: Final = 2048
MAX_AMOUNT_MINOR: Final = catalog_rules.MAX_PRICE_MINOR
_URL = re.compile(r"https?://[^\s/?#]+[^\s]*", re.IGNORECASE)
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")


def text(value: str, field: str, limit: int, *, required: bool = False) -> str:
    """One line of text, trimmed; no control characters."""
    try:
        return catalog_rules.clean_text(value, field, limit, required=required)
    except catalog_rules.RowProblem as problem:
        raise InvalidInput(f"{problem}.", details={"field": field}) from None


def optional_text(value: str, field: str, limit: int) -> str | None:
    """Like :func:`text`; an empty value means none (clears the field)."""
    return text(value, field, limit) or None


def url(value: str, field: str) -> str | None:
    """An absolute http(s) URL, or None for "" (clears the field)."""
    cleaned = value.strip()
    if not cleaned:
        return None
    if len(cleaned) > MAX_URL or not _URL.fullmatch(cleaned):
        raise InvalidInput(
            f"{field} must be an absolute http(s) URL of at most {MAX_URL} characters, e.g. "
            f'https://shop.example/{field.removesuffix("_url")}; "" clears it.',
            details={"field": field, "value": cleaned[:80]},
        )
    return cleaned


def email(value: str, field: str) -> str | None:
    cleaned = value.strip()
    if not cleaned:
        return None
    if len(cleaned) > 254 or not _EMAIL.fullmatch(cleaned):
        raise InvalidInput(
            f'{field} must be an email address such as help@shop.example; "" clears it.',
            details={"field": field},
        )
    return cleaned


def currency(value: str, field: str = "currency") -> str:
    try:
        return catalog_rules.parse_currency(value, "", field) or _no_currency(field)
    except catalog_rules.RowProblem as problem:
        raise InvalidInput(f"{problem}.", details={"field": field, "value": value[:10]}) from None


def _no_currency(field: str) -> str:
    raise InvalidInput(f"{field} is empty; write an ISO 4217 code such as USD or EUR.", details={"field": field})


def locale(value: str, field: str = "locale") -> str:
    """A CLDR locale identifier as babel knows it ("de_DE", "en_US", "ja"); accepts "de-DE" too."""
    cleaned = value.strip()
    try:
        return str(Locale.parse(cleaned.replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        raise InvalidInput(
            f"{field} {cleaned[:35]!r} is not a known locale; write a language and territory such as en_US, "
            "de_DE, fr_CA or ja_JP.",
            details={"field": field, "value": cleaned[:35]},
        ) from None


def amount(value: int, field: str, *, minimum: int = 0, maximum: int = MAX_AMOUNT_MINOR) -> int:
    """An integer amount (minor units, days, counts) from ``minimum`` to ``maximum``."""
    if isinstance(value, bool) or not minimum <= value <= maximum:
        raise InvalidInput(
            f"{field} must be a whole number from {minimum} to {maximum}; got {value!r}.",
            details={"field": field},
        )
    return value


def tax_category(value: str, field: str = "category") -> str:
    """A tax category (catalog_rules.check_tax_category: the same rule as a SKU's tax_category)."""
    try:
        return catalog_rules.check_tax_category(value, field)
    except catalog_rules.RowProblem as problem:
        raise InvalidInput(f"{problem}.", details={"field": field, "value": value[:40]}) from None
