"""Catalog rules, in one place for the CSV import and ``upsert_product``.

- Bounds of SKU codes, names, descriptions, categories, external ids, prices and stock.
- Prices: decimal major units (``19.99``) to integer minor units with integer arithmetic only; the
  currency's decimal places come from CLDR through ``babel`` (2 for USD, 0 for JPY, 3 for KWD).
- Currencies: ISO 4217 codes that are legal tender somewhere today (CLDR territory data).
- Texts: trimmed, no control characters (descriptions may span lines).
- Against the stored SKU (:func:`resolve`): a value not given keeps the stored one, a new SKU needs a
  price, stock never below the units reserved by unpaid orders, no silent currency change, and a
  product's description and category given on one of its rows are shared by its other rows.

Every check raises or reports a :class:`RowProblem` whose message names the field and says what
to write instead. The parsers take the common valid case first: the CSV import calls them for
every cell of files with 100,000 rows.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from babel.core import get_global

from mcp_checkout.domain import CatalogRow, currency_exponent
from mcp_checkout.service.views import ImportIssue
from mcp_checkout.store.catalog_write import ExistingSku, product_key

MAX_SKU: Final = 64
MAX_NAME: Final = 300
MAX_TITLE: Final = 600
MAX_DESCRIPTION: Final = 5_000
MAX_CATEGORY: Final = 120
MAX_EXTERNAL_ID: Final = 128
MAX_PRICE_MINOR: Final = 10**10
MAX_STOCK: Final = 10**9
MAX_IMAGE_URL: Final = 2048
MAX_DESCRIPTION_HTML: Final = 100_000
MAX_WEIGHT_GRAMS: Final = 10**8
STANDARD_TAX: Final = "standard"


def _tender_today() -> frozenset[str]:
    """ISO 4217 codes some territory uses as legal tender today, per CLDR (no end date)."""
    return frozenset(
        code
        for currencies in get_global("territory_currencies").values()
        for code, _start, end, tender in currencies
        if end is None and tender
    )


CURRENCIES: Final = _tender_today()
_SCALE: Final = (1, 10, 100, 1_000, 10_000)

_PRICE = re.compile(r"\+?([0-9]{1,15})(?:\.([0-9]+))?")
_THOUSANDS = re.compile(r"[0-9]{1,3}(?:[,' ][0-9]{3})+(?:\.[0-9]*)?")
_DECIMAL_COMMA = re.compile(r"[0-9]+,[0-9]{1,2}")
_SCIENTIFIC = re.compile(r"[0-9.]+[eE][+-]?[0-9]+")
_SYMBOLS = re.compile(r"[$€£¥₹]|^[A-Za-z]{3}\s*[0-9.,]+$|^[0-9.,]+\s*[A-Za-z]{3}$")
_STOCK = re.compile(r"([0-9]{1,12})(?:\.0+)?")
_TAX_CATEGORY = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_YES: Final = frozenset({"true", "yes", "y", "1", "t"})
_NO: Final = frozenset({"false", "no", "n", "0", "f"})
_CONTROL_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class RowProblem(ValueError):
    """One value is unusable; the message says which and why."""


# ---------------------------------------------------------------- money
_exponents: dict[str, int] = {}
"""minor_unit_exponent's answers: parse_price runs once per CSV row, a dict look-up is its cheapest form."""


def minor_unit_exponent(currency: str) -> int:
    """Decimal places of the currency's minor unit, from CLDR (2 for most, 0 for JPY, 3 for KWD)."""
    exponent = _exponents.get(currency)
    if exponent is None:
        exponent = _exponents[currency] = min(currency_exponent(currency), len(_SCALE) - 1)
    return exponent


def parse_price(text: str, currency: str, column: str = "unit_price") -> int:
    """Decimal major units → integer minor units, exactly (no floats). Raises :class:`RowProblem`."""
    value = text.strip()
    exponent = _exponents.get(currency)
    if exponent is None:
        exponent = minor_unit_exponent(currency)
    match = _PRICE.fullmatch(value)
    if match is not None:
        fraction = match.group(2)
        if fraction is None:
            minor = int(match.group(1)) * _SCALE[exponent]
        elif len(fraction) <= exponent:
            minor = int(match.group(1)) * _SCALE[exponent] + int(fraction) * _SCALE[exponent - len(fraction)]
        else:
            if exponent == 0:
                raise RowProblem(f"{column} {value!r} has decimals; {currency} has no minor unit, write a whole number")
            raise RowProblem(
                f"{column} {value!r} has {len(fraction)} decimal places; {currency} prices have at most {exponent}"
            )
        if minor > MAX_PRICE_MINOR:
            raise RowProblem(f"{column} {value!r} is above the limit of {format_minor(MAX_PRICE_MINOR, currency)}")
        return minor
    raise RowProblem(_price_problem(value, column))


def _price_problem(value: str, column: str) -> str:
    if not value:
        return f"{column} is empty; every SKU needs a price, e.g. 19.99"
    if value.startswith("-"):
        return f"{column} {value!r} is negative; prices are 0 or more"
    if _THOUSANDS.fullmatch(value):
        plain = re.sub(r"[,' ]", "", value)
        return f"{column} {value!r} has a thousands separator; write {plain}"
    if _DECIMAL_COMMA.fullmatch(value):
        return f"{column} {value!r} uses a decimal comma; write {value.replace(',', '.')}"
    if _SCIENTIFIC.fullmatch(value):
        return f"{column} {value!r} is in exponent notation; write the plain number, e.g. 1000.00"
    if _SYMBOLS.search(value):
        return (
            f"{column} {value!r} contains a currency sign or code; write only the number "
            "and put the ISO code in the currency column"
        )
    return f"{column} {value!r} is not a price; write it like 19.99"


def format_minor(amount: int, currency: str) -> str:
    """Integer minor units → the decimal text :func:`parse_price` reads back (``1999`` → ``19.99``)."""
    exponent = minor_unit_exponent(currency)
    if exponent == 0:
        return str(amount)
    whole, fraction = divmod(amount, 10**exponent)
    return f"{whole}.{fraction:0{exponent}d}"


def check_price_minor(amount: int) -> int:
    if not 0 <= amount <= MAX_PRICE_MINOR:
        raise RowProblem(f"price must be 0 to {MAX_PRICE_MINOR} minor units; got {amount}")
    return amount


def parse_currency(text: str, default: str, column: str = "currency") -> str:
    value = text.strip().upper()
    if not value:
        return default
    if value not in CURRENCIES:
        raise RowProblem(f"{column} {text.strip()!r} is not an ISO 4217 currency code (e.g. USD, EUR, GBP)")
    return value


# ---------------------------------------------------------------- stock
def parse_stock(text: str, column: str = "quantity_on_hand") -> int:
    value = text.strip()
    if value.isascii() and value.isdigit() and len(value) <= 10:
        units = int(value)
        if units <= MAX_STOCK:
            return units
    match = _STOCK.fullmatch(value)
    if match is not None:
        return check_stock(int(match.group(1)), column, value)
    if not value:
        raise RowProblem(f"{column} is empty; write 0 for an item that is out of stock")
    if value.startswith("-"):
        raise RowProblem(f"{column} {value!r} is negative; stock is 0 or more")
    raise RowProblem(f"{column} {value!r} is not a whole number of units")


def check_stock(units: int, column: str = "stock", shown: object = None) -> int:
    if not 0 <= units <= MAX_STOCK:
        raise RowProblem(f"{column} {shown if shown is not None else units!r} is above the limit of {MAX_STOCK:,}")
    return units


def stock_below_reserved(column: str, stock: int, reserved: int) -> str | None:
    """The reason a stock level is refused, or None: stock on hand never goes below reserved units."""
    if stock >= reserved:
        return None
    return (
        f"{column} {stock} is below the {reserved} unit(s) reserved by unpaid orders; "
        f"set at least {reserved}, or wait until those orders are paid, canceled or expired"
    )


# ---------------------------------------------------------------- shipping and tax attributes
def parse_flag(text: str, column: str) -> bool | None:
    """yes/no, true/false, 1/0 (any case); empty: not given."""
    value = text.strip().lower()
    if not value:
        return None
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise RowProblem(f"{column} {text.strip()[:20]!r} is not yes or no; write true or false")


def check_tax_category(text: str, column: str = "tax_category") -> str:
    """A tax category: standard, reduced, zero or the merchant's own short name (1-40 of a-z 0-9 _ -)."""
    value = text.strip().lower()
    if not _TAX_CATEGORY.fullmatch(value):
        raise RowProblem(
            f"{column} {text.strip()[:40]!r} must be standard, reduced, zero or your own name of 1-40 a-z 0-9 _ -"
        )
    return value


def parse_tax_category(text: str, column: str = "tax_category") -> str | None:
    return check_tax_category(text, column) if text.strip() else None


def check_weight(grams: int, column: str = "weight_grams") -> int:
    if isinstance(grams, bool) or not 0 <= grams <= MAX_WEIGHT_GRAMS:
        raise RowProblem(f"{column} must be whole grams from 0 to {MAX_WEIGHT_GRAMS:,}; got {grams!r}")
    return grams


def parse_weight(text: str, column: str = "weight_grams") -> int | None:
    """Whole grams ("250", "250.0"); empty: not given."""
    value = text.strip()
    if not value:
        return None
    match = _STOCK.fullmatch(value)
    if match is None:
        raise RowProblem(f"{column} {value[:20]!r} is not a whole number of grams, e.g. 250")
    return check_weight(int(match.group(1)), column)


# ---------------------------------------------------------------- texts
def clean_text(text: str, column: str, limit: int, multiline: bool = False, required: bool = False) -> str:
    """``text`` trimmed (line breaks as ``\\n`` when ``multiline``); raises :class:`RowProblem` if it is
    empty but ``required``, longer than ``limit`` or holds control characters."""
    value = text.strip()
    if multiline and "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    bad = (_CONTROL_MULTILINE if multiline else _CONTROL_ONE_LINE).search(value)
    if bad is None and len(value) <= limit and (value or not required):
        return value
    if required and not value:
        raise RowProblem(f"{column} is empty")
    if len(value) > limit:
        raise RowProblem(f"{column} is {len(value):,} characters long; the limit is {limit:,}")
    assert bad is not None
    kind = "a line break" if bad.group() in "\r\n" else f"the control character U+{ord(bad.group()):04X}"
    raise RowProblem(f"{column} contains {kind}; remove it")


TEXT_FIELDS: Final[Mapping[str, tuple[int, bool, bool]]] = {
    "product_name": (MAX_NAME, False, True),
    "sku": (MAX_SKU, False, True),
    "description": (MAX_DESCRIPTION, True, False),
    "external_id": (MAX_EXTERNAL_ID, False, False),
    "sku_name": (MAX_NAME, False, False),
    "category": (MAX_CATEGORY, False, False),
    "image_url": (MAX_IMAGE_URL, False, False),
    "description_html": (MAX_DESCRIPTION_HTML, True, False),
}
"""Text field → (length limit, may span lines, required)."""


def title_problem(product_name: str, sku_name: str | None) -> str | None:
    """A SKU's title is ``product - variant``; the reason it is too long, or None."""
    if sku_name and len(product_name) + 3 + len(sku_name) > MAX_TITLE:
        return (
            f"product_name and sku_name together are too long for a title "
            f"({len(product_name) + 3 + len(sku_name)} characters; the limit is {MAX_TITLE})"
        )
    return None


# ---------------------------------------------------------------- one SKU, checked
@dataclass(slots=True)
class SkuInput:
    """One SKU's values after the checks that need no database. ``None``: not given."""

    line: int
    product_name: str
    sku: str
    description: str | None
    external_id: str | None
    sku_name: str | None
    category: str | None
    price_minor: int | None
    stock: int | None
    currency: str
    image_url: str | None = None
    description_html: str | None = None
    requires_shipping: bool | None = None
    tax_category: str | None = None
    weight_grams: int | None = None


def checked_input(
    *,
    product_name: str,
    sku: str,
    price_minor: int | None,
    currency: str | None,
    default_currency: str,
    stock: int | None = None,
    description: str | None = None,
    category: str | None = None,
    sku_name: str | None = None,
    external_id: str | None = None,
    image_url: str | None = None,
    requires_shipping: bool | None = None,
    tax_category: str | None = None,
    weight_grams: int | None = None,
    line: int = 1,
) -> SkuInput:
    """The same checks as a CSV row, for values given as arguments. Raises :class:`RowProblem`."""
    given = {
        "description": description, "category": category, "sku_name": sku_name, "external_id": external_id,
        "image_url": image_url,
    }  # fmt: skip
    texts: dict[str, str | None] = {
        name: None if value is None else clean_text(value, name, TEXT_FIELDS[name][0], multiline=TEXT_FIELDS[name][1])
        for name, value in given.items()
    }
    name = clean_text(product_name, "product_name", MAX_NAME, required=True)
    problem = title_problem(name, texts["sku_name"])
    if problem is not None:
        raise RowProblem(problem)
    return SkuInput(
        line=line,
        product_name=name,
        sku=clean_text(sku, "sku", MAX_SKU, required=True),
        description=texts["description"],
        external_id=texts["external_id"],
        sku_name=texts["sku_name"],
        category=texts["category"],
        price_minor=None if price_minor is None else check_price_minor(price_minor),
        stock=None if stock is None else check_stock(stock),
        currency=parse_currency(currency, default_currency) if currency is not None else default_currency,
        image_url=texts["image_url"],
        requires_shipping=requires_shipping,
        tax_category=None if tax_category is None else check_tax_category(tax_category),
        weight_grams=None if weight_grams is None else check_weight(weight_grams),
    )


# ---------------------------------------------------------------- against what is stored
@dataclass
class Resolved:
    rows: list[CatalogRow]
    problems: list[ImportIssue]
    product_fields: frozenset[str]
    created: int
    updated: int


def resolve(
    inputs: Iterable[SkuInput],
    existing: Mapping[str, ExistingSku],
    given: Collection[str],
    labels: Mapping[str, str] | None = None,
) -> Resolved:
    """Turn checked inputs into catalog rows against what is stored: fields not in ``given`` keep
    stored values, product text is shared between a product's rows, and the checks that need the
    stored SKU (reservations, currency) run here. ``labels`` names fields in messages (a CSV's own
    column names). Pure: ``existing`` comes from the caller's transaction."""
    names = labels or {}
    problems: list[ImportIssue] = []
    has_currency, has_external_id = "currency" in given, "external_id" in given
    share_description, share_category = "description" in given, "category" in given
    stock_label = names.get("stock", "quantity_on_hand")
    price_label = names.get("price", "unit_price")
    share_html = "description_html" in given
    # (input, price, stock, external id, product key, description, category)
    ready: list[tuple[SkuInput, int, int, str | None, str, str, str]] = []
    shared: dict[str, tuple[str, str]] = {}
    html_of: dict[str, str] = {}
    for row in inputs:
        old = existing.get(row.sku)
        price, stock = row.price_minor, row.stock
        if old is None:
            if price is None:
                problems.append(
                    ImportIssue(
                        line=row.line, sku=row.sku, reason=f"new SKU without a price: add a {price_label} column"
                    )
                )
                continue
            stock = stock or 0
            external_id = row.external_id or None
            description, category = row.description or "", row.category or ""
        else:
            price = old.price_minor if price is None else price
            stock = old.stock_on_hand if stock is None else stock
            reasons: list[str] = []
            if not has_currency and old.currency != row.currency:
                reasons.append(
                    f"SKU {row.sku} is priced in {old.currency} but the file has no currency column "
                    f"(the default is {row.currency}); add a currency column"
                )
            short = stock_below_reserved(stock_label, stock, old.reserved)
            if short is not None:
                reasons.append(short)
            if reasons:
                problems.append(ImportIssue(line=row.line, sku=row.sku, reason="; ".join(reasons)))
                continue
            external_id = (row.external_id if has_external_id else old.product_external_id) or None
            description = old.search_text if row.description is None else row.description
            category = old.category if row.category is None else row.category
        key = product_key(external_id, row.product_name)
        ready.append((row, price, stock, external_id, key, description, category))
        body = row.description_html or (old.product_description_html if old is not None and not share_html else "")
        if body and key not in html_of:
            html_of[key] = body
        # A product's description and category may be written on one of its rows only.
        first_description, first_category = shared.get(key, ("", ""))
        if not (first_description and first_category):
            shared[key] = (first_description or description, first_category or category)

    rows: list[CatalogRow] = []
    for row, price, stock, external_id, key, description, category in ready:
        product_description, product_category = shared[key]
        old = existing.get(row.sku)
        rows.append(
            CatalogRow(
                product_name=row.product_name,
                sku=row.sku,
                price_minor=price,
                currency=row.currency,
                stock=stock,
                description=description or product_description if share_description else description,
                external_id=external_id,
                sku_name=(old.name if old is not None else "") if row.sku_name is None else row.sku_name,
                category=category or product_category if share_category else category,
                image_url=(old.image_url if old is not None else "") if row.image_url is None else row.image_url,
                description_html=html_of.get(key, ""),
                requires_shipping=(old.requires_shipping if old is not None else True)
                if row.requires_shipping is None
                else row.requires_shipping,
                tax_category=(old.tax_category if old is not None else STANDARD_TAX)
                if row.tax_category is None
                else row.tax_category,
                weight_grams=(old.weight_grams if old is not None else None)
                if row.weight_grams is None
                else row.weight_grams,
            )
        )
    fields = {"name"} | {name for name in ("description", "category", "description_html") if name in given}
    created = sum(1 for row in rows if row.sku not in existing)
    return Resolved(
        rows, sorted(problems, key=lambda issue: issue.line), frozenset(fields), created, len(rows) - created
    )
