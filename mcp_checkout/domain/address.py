"""Countries and their subdivisions (ISO 3166-1 alpha-2 and ISO 3166-2), from pycountry: the one place
that decides whether a country or region code is real."""

from __future__ import annotations

import functools

import pycountry

from mcp_checkout.errors import InvalidInput

REST_OF_WORLD = "*"


@functools.lru_cache(maxsize=1)
def countries() -> tuple[tuple[str, str], ...]:
    """Every country as (alpha-2 code, common name), sorted by name: for address forms."""
    rows = ((country.alpha_2, getattr(country, "common_name", country.name)) for country in pycountry.countries)
    return tuple(sorted(rows, key=lambda row: row[1]))


@functools.lru_cache(maxsize=1)
def _country_codes() -> frozenset[str]:
    return frozenset(code for code, _ in countries())


@functools.lru_cache(maxsize=512)
def _subdivisions(country: str) -> dict[str, str]:
    """Lookup keys (suffix code, full code, name; upper-case) -> the subdivision's suffix code, e.g. "CA"."""
    keys: dict[str, str] = {}
    for subdivision in pycountry.subdivisions.get(country_code=country) or ():  # type: ignore[no-untyped-call]
        suffix = subdivision.code.split("-", 1)[1]
        for key in (suffix, subdivision.code, subdivision.name):
            keys.setdefault(key.upper(), suffix)
    return keys


def country_name(code: str) -> str:
    return dict(countries()).get(code.upper(), code)


def check_country(value: str, field: str = "country") -> str:
    """``value`` as an upper-case ISO 3166-1 alpha-2 code, or InvalidInput naming ``field``."""
    code = value.strip().upper()
    if code not in _country_codes():
        raise InvalidInput(
            f"{field} must be an ISO 3166-1 alpha-2 country code such as US, DE or JP; got {value!r}.",
            details={"field": field, "value": value[:20]},
        )
    return code


def has_subdivisions(country: str) -> bool:
    return bool(_subdivisions(country.upper()))


def check_region(country: str, value: str, field: str = "region") -> str:
    """A region of ``country`` as its ISO 3166-2 suffix ("CA" for California): accepts "CA", "US-CA" or
    "California". Countries that pycountry lists without subdivisions keep the value as given (trimmed)."""
    keys = _subdivisions(country.upper())
    cleaned = value.strip()
    if not keys:
        return cleaned
    code = keys.get(cleaned.upper())
    if code is None:
        examples = ", ".join(sorted(set(keys.values()))[:5])
        raise InvalidInput(
            f"{field} {value!r} is not a region of {country.upper()}: use its ISO 3166-2 code (e.g. {examples}).",
            details={"field": field, "country": country.upper(), "value": value[:60]},
        )
    return code
