"""Import a merchant's catalog from CSV: validate the whole file, then upsert it in one transaction.

The format is the one merchants already export::

    product_name,sku_code,product_description,product_external_id,sku_name,unit_price,quantity_on_hand,category,currency

- Required columns: ``product_name``, ``sku_code``. Optional: ``product_description``,
  ``product_external_id`` (alias ``product_ref``), ``sku_name``, ``unit_price`` (alias ``price``),
  ``quantity_on_hand`` (alias ``stock_qty``), ``category``, ``currency``. Header names are
  case-insensitive; surrounding spaces are trimmed and inner spaces or hyphens count as ``_``
  (``Product Name`` is ``product_name``). A UTF-8 BOM is fine. Unknown columns are ignored with a
  warning. The delimiter is a comma; a semicolon or tab header (European Excel) is recognised.
- Prices are decimal major units (``19.99``, ``19.9``, ``20``) turned into integer minor units with
  integer arithmetic only. Rejected, with a reason: more decimals than the currency has (2 for USD,
  0 for JPY, 3 for KWD), negatives, thousands separators (``1,000.00`` — write ``1000.00``; a comma
  could just as well be a decimal comma), currency symbols, exponents (``1e3``) and anything else
  that is not ``digits[.digits]``.
- Stock is a whole number ``0..10**9`` (``5.0`` is accepted as 5). Currency is an ISO 4217 code;
  an empty cell means the configured default currency.
- A column that is absent keeps the stored value of an existing SKU (price, stock, texts, external
  id); a new SKU then needs a price. A product's description and category may be given on one of
  its rows only (as exports with variant rows do): its other rows inherit them.
- Every row is checked before anything is written, including the checks that need the database
  (stock below the units reserved by unpaid orders, currency changes). Problems name the physical
  line (the header is line 1; a quoted value with line breaks spans several lines). With problems
  the file is rejected as a whole (:class:`CatalogImportInvalid`) unless ``skip_invalid`` is set.
- The write is one transaction: all rows or none.

The service reads a path or takes CSV text (for the MCP tool), and reports progress through an
optional ``async (done, total)`` callback; ``total`` is first an estimate from the line count.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.to_thread
from sqlalchemy import Connection

from mcp_checkout.domain import CatalogRow, Clock
from mcp_checkout.errors import CatalogImportInvalid
from mcp_checkout.service.views import ImportIssue, ImportReport
from mcp_checkout.store import catalog_write
from mcp_checkout.store.catalog_write import ExistingSku
from mcp_checkout.store.db import Database

ProgressCallback = Callable[[int, int], Awaitable[None]]
"""``await progress(done, total)``: called from the event loop, at most every ~0.2 s and once at the end."""

MAX_FILE_BYTES: Final = 50 * 1024 * 1024
MAX_ROWS: Final = 1_000_000
MAX_LISTED_PROBLEMS: Final = 1_000
"""Problems listed in a report (the counts are always complete)."""
MAX_PROBLEMS_IN_ERROR: Final = 100

MAX_SKU: Final = 64
MAX_NAME: Final = 300
MAX_TITLE: Final = 600
MAX_DESCRIPTION: Final = 5_000
MAX_CATEGORY: Final = 120
MAX_EXTERNAL_ID: Final = 128
MAX_PRICE_MINOR: Final = 10**10
MAX_STOCK: Final = 10**9

# Header name (normalised) → field.
COLUMNS: Final[Mapping[str, str]] = {
    "product_name": "product_name",
    "sku_code": "sku",
    "product_description": "description",
    "product_external_id": "external_id",
    "product_ref": "external_id",
    "sku_name": "sku_name",
    "unit_price": "price",
    "price": "price",
    "quantity_on_hand": "stock",
    "stock_qty": "stock",
    "category": "category",
    "currency": "currency",
}
REQUIRED: Final = ("product_name", "sku_code")
EXAMPLE_HEADER: Final = (
    "product_name,sku_code,product_description,sku_name,unit_price,quantity_on_hand,category,currency"
)

# ISO 4217 active codes (2025), and the ones whose minor unit is not 1/100.
_ISO_4217_CODES = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR "
    "FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES "
    "KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR "
    "MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF "
    "SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD "
    "TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL "
)
ISO_4217: Final = frozenset(_ISO_4217_CODES.split())
_ZERO_DECIMAL = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE_DECIMAL = "BHD IQD JOD KWD LYD OMR TND"
_FOUR_DECIMAL = "CLF UYW"
_EXPONENTS: Final[Mapping[str, int]] = {
    **dict.fromkeys(_ZERO_DECIMAL.split(), 0),
    **dict.fromkeys(_THREE_DECIMAL.split(), 3),
    **dict.fromkeys(_FOUR_DECIMAL.split(), 4),
}

_PRICE = re.compile(r"([0-9]{1,15})(?:\.([0-9]+))?")
_THOUSANDS = re.compile(r"[0-9]{1,3}(?:[,' ][0-9]{3})+(?:\.[0-9]*)?")
_DECIMAL_COMMA = re.compile(r"[0-9]+,[0-9]{1,2}")
_SCIENTIFIC = re.compile(r"[0-9.]+[eE][+-]?[0-9]+")
_SYMBOLS = re.compile(r"[$€£¥₹]|^[A-Za-z]{3}\s*[0-9.,]+$|^[0-9.,]+\s*[A-Za-z]{3}$")
_STOCK = re.compile(r"([0-9]{1,12})(?:\.0+)?")
_CONTROL_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_PROGRESS_EVERY = 2_000
_FIRST_LINE = re.compile(r"[^\r\n]*\S[^\r\n]*")


def minor_unit_exponent(currency: str) -> int:
    """Decimal places of the currency's minor unit (2 for most, 0 for JPY, 3 for KWD)."""
    return int(_EXPONENTS.get(currency, 2))


class RowProblem(ValueError):
    """One value of a row is unusable; the message says which and why."""


def parse_price(text: str, currency: str, column: str = "unit_price") -> int:
    """Decimal major units → integer minor units, exactly (no floats). Raises :class:`RowProblem`."""
    value = text.strip()
    exponent = minor_unit_exponent(currency)
    if not value:
        raise RowProblem(f"{column} is empty; every SKU needs a price, e.g. 19.99")
    if value.startswith("-"):
        raise RowProblem(f"{column} {value!r} is negative; prices are 0 or more")
    if value.startswith("+"):
        value = value[1:]
    match = _PRICE.fullmatch(value)
    if match is None:
        if _THOUSANDS.fullmatch(value):
            plain = re.sub(r"[,' ]", "", value)
            raise RowProblem(f"{column} {value!r} has a thousands separator; write {plain}")
        if _DECIMAL_COMMA.fullmatch(value):
            raise RowProblem(f"{column} {value!r} uses a decimal comma; write {value.replace(',', '.')}")
        if _SCIENTIFIC.fullmatch(value):
            raise RowProblem(f"{column} {value!r} is in exponent notation; write the plain number, e.g. 1000.00")
        if _SYMBOLS.search(value):
            raise RowProblem(
                f"{column} {value!r} contains a currency sign or code; write only the number "
                "and put the ISO code in the currency column"
            )
        raise RowProblem(f"{column} {value!r} is not a price; write it like 19.99")
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > exponent:
        if exponent == 0:
            raise RowProblem(f"{column} {value!r} has decimals; {currency} has no minor unit, write a whole number")
        raise RowProblem(
            f"{column} {value!r} has {len(fraction)} decimal places; {currency} prices have at most {exponent}"
        )
    scale: int = 10**exponent
    minor = int(whole) * scale + int(fraction.ljust(exponent, "0") or "0")
    if minor > MAX_PRICE_MINOR:
        raise RowProblem(f"{column} {value!r} is above the limit of {format_minor(MAX_PRICE_MINOR, currency)}")
    return minor


def format_minor(amount: int, currency: str) -> str:
    """Integer minor units → the decimal text :func:`parse_price` reads back (``1999`` → ``19.99``)."""
    exponent = minor_unit_exponent(currency)
    if exponent == 0:
        return str(amount)
    whole, fraction = divmod(amount, 10**exponent)
    return f"{whole}.{fraction:0{exponent}d}"


def parse_stock(text: str, column: str = "quantity_on_hand") -> int:
    value = text.strip()
    if not value:
        raise RowProblem(f"{column} is empty; write 0 for an item that is out of stock")
    if value.startswith("-"):
        raise RowProblem(f"{column} {value!r} is negative; stock is 0 or more")
    match = _STOCK.fullmatch(value)
    if match is None:
        raise RowProblem(f"{column} {value!r} is not a whole number of units")
    stock = int(match.group(1))
    if stock > MAX_STOCK:
        raise RowProblem(f"{column} {value!r} is above the limit of {MAX_STOCK:,}")
    return stock


def parse_currency(text: str, default: str, column: str = "currency") -> str:
    value = text.strip().upper()
    if not value:
        return default
    if value not in ISO_4217:
        raise RowProblem(f"{column} {text.strip()!r} is not an ISO 4217 currency code (e.g. USD, EUR, GBP)")
    return value


def clean_text(text: str, column: str, limit: int, *, multiline: bool = False, required: bool = False) -> str:
    value = text.strip()
    if multiline:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    if required and not value:
        raise RowProblem(f"{column} is empty")
    if len(value) > limit:
        raise RowProblem(f"{column} is {len(value):,} characters long; the limit is {limit:,}")
    pattern = _CONTROL_MULTILINE if multiline else _CONTROL_ONE_LINE
    bad = pattern.search(value)
    if bad is not None:
        kind = "a line break" if bad.group() in "\r\n" else f"the control character U+{ord(bad.group()):04X}"
        raise RowProblem(f"{column} contains {kind}; remove it")
    return value


# ---------------------------------------------------------------- parsing the file
@dataclass(slots=True)
class CsvRow:
    """A row that passed every check that needs no database. ``None``: that column is absent."""

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


@dataclass
class ParsedCatalog:
    source: str
    header_line: int
    columns: dict[str, str]
    """Field → the header name the file uses for it."""
    rows: list[CsvRow] = field(default_factory=list)
    problems: list[ImportIssue] = field(default_factory=list)
    """Row errors, in line order, one per bad row."""
    warnings: list[ImportIssue] = field(default_factory=list)
    rows_read: int = 0

    def has(self, name: str) -> bool:
        return name in self.columns


def _reject(source: str, message: str, **details: Any) -> CatalogImportInvalid:
    return CatalogImportInvalid(f"{source}: {message}", details={"source": source, **details})


def _header(cells: Sequence[str]) -> list[str]:
    return [re.sub(r"[\s\-]+", "_", cell.strip().lower()) for cell in cells]


def _pick_delimiter(first_line: str) -> str:
    for delimiter in (",", ";", "\t"):
        names = _header(next(csv.reader([first_line], delimiter=delimiter), []))
        if all(required in names for required in REQUIRED):
            return delimiter
    return ","


def _first_line(text: str) -> str:
    found = _FIRST_LINE.search(text)
    return found.group() if found else ""


def estimate_rows(text: str) -> int:
    """Data rows in a CSV text, counting physical lines (an upper bound with multi-line values)."""
    breaks = text.count("\n") or text.count("\r")  # old Mac files end lines with CR alone
    return max(breaks + (0 if text.endswith(("\n", "\r")) else 1) - 1, 0)


def parse_catalog_csv(
    text: str,
    *,
    default_currency: str,
    source: str = "CSV",
    max_rows: int = MAX_ROWS,
    on_row: Callable[[int], None] | None = None,
) -> ParsedCatalog:
    """Parse and check every row of a catalog CSV (no database). File-level problems (no header,
    missing required column, too many rows, broken quoting) raise :class:`CatalogImportInvalid`;
    row problems are collected with their line numbers."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise _reject(source, f"the file is empty. The first line must be the header, e.g. {EXAMPLE_HEADER}")
    delimiter = _pick_delimiter(_first_line(text))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header_line, header_end, header_cells = 0, 0, []
    try:
        for cells in reader:
            if "".join(cells).strip():
                header_line, header_end, header_cells = header_end + 1, reader.line_num, cells
                break
            header_end = reader.line_num
    except csv.Error as exc:
        raise _reject(source, f"the header cannot be read as CSV ({exc}).") from None
    names = _header(header_cells)
    parsed = ParsedCatalog(source=source, header_line=header_line, columns={})
    index: dict[str, int] = {}
    unknown: list[str] = []
    last_named = max((position for position, name in enumerate(names) if name), default=-1)
    for position, (name, raw) in enumerate(zip(names, header_cells, strict=True)):
        if not name:
            if position < last_named:  # trailing nameless columns (a trailing comma) are harmless
                unknown.append(f"column {position + 1} (no name)")
            continue
        target = COLUMNS.get(name)
        if target is None:
            unknown.append(repr(raw.strip()))
            continue
        if target in parsed.columns:
            raise _reject(
                source,
                f"the header has both {parsed.columns[target]!r} and {raw.strip()!r}, which mean the same "
                "column; keep one of them.",
            )
        parsed.columns[target] = name
        index[target] = position
    missing = [name for name in REQUIRED if COLUMNS[name] not in parsed.columns]
    if missing:
        found = ", ".join(repr(cell.strip()) for cell in header_cells) or "nothing"
        raise _reject(
            source,
            f"missing required column {' and '.join(missing)} in the header (line {header_line}; found {found}). "
            f"The header must name at least product_name and sku_code, e.g. {EXAMPLE_HEADER}",
            missing_columns=missing,
        )
    if unknown:
        known = ", ".join(sorted(COLUMNS))
        parsed.warnings.append(
            ImportIssue(
                line=header_line,
                sku=None,
                reason=f"warning: unknown column(s) {', '.join(unknown)} ignored (known columns: {known})",
            )
        )

    width = len(names)
    checker = _RowChecker(index, parsed.columns, default_currency)
    seen: dict[str, int] = {}
    sku_position = index["sku"]
    rows, problems = parsed.rows, parsed.problems
    rows_read = 0
    previous = header_end
    try:
        for cells in reader:
            line, end = previous + 1, reader.line_num
            previous = end
            if not "".join(cells).strip():
                continue  # a blank line (or only delimiters)
            rows_read += 1
            if rows_read > max_rows:
                raise _reject(
                    source,
                    f"more than {max_rows:,} rows; split the file into several files (each with the header) "
                    "and import them one after the other.",
                    max_rows=max_rows,
                )
            if on_row is not None and rows_read % _PROGRESS_EVERY == 0:
                on_row(rows_read)
            sku_cell = cells[sku_position].strip() if sku_position < len(cells) else ""
            sku = sku_cell[:MAX_SKU] or None
            if len(cells) != width and (len(cells) < width or "".join(cells[width:]).strip()):
                reason = f"has {len(cells)} values but the header has {width} columns"
                if end > line:
                    reason += f" (the row runs from line {line} to {end}: check for an unclosed quote)"
                elif len(cells) > width:
                    reason += " (a value with a comma must be in double quotes)"
                problems.append(ImportIssue(line=line, sku=sku, reason=reason))
                continue
            row, reasons = checker.check(cells, line)
            if sku_cell:
                first = seen.setdefault(sku_cell, line)
                if first != line:
                    reasons.append(f"sku_code {sku_cell!r} already appears on line {first}; each SKU may appear once")
            if reasons or row is None:
                if end > line:
                    reasons.append(f"the row runs from line {line} to {end}: check for an unclosed quote")
                problems.append(ImportIssue(line=line, sku=sku, reason="; ".join(reasons)))
            else:
                rows.append(row)
    except csv.Error as exc:
        raise _reject(
            source,
            f"line {previous + 1} cannot be read as CSV ({exc}). A value that contains quotes must be in "
            'double quotes with its quotes doubled, e.g. "12"" ruler".',
            line=previous + 1,
        ) from None
    parsed.rows_read = rows_read
    if on_row is not None:
        on_row(rows_read)
    return parsed


class _RowChecker:
    """Checks the cells of one row; the common (valid) case takes a fast path, and a bad value is
    handed to the public parse/clean function that explains what is wrong with it."""

    def __init__(self, index: Mapping[str, int], columns: Mapping[str, str], default_currency: str) -> None:
        def spec(name: str, limit: int, multiline: bool = False, required: bool = False) -> _TextSpec:
            return (columns.get(name, name), index.get(name, -1), limit, multiline, required)

        self._texts: tuple[_TextSpec, ...] = (
            spec("product_name", MAX_NAME, required=True),
            spec("sku", MAX_SKU, required=True),
            spec("description", MAX_DESCRIPTION, multiline=True),
            spec("external_id", MAX_EXTERNAL_ID),
            spec("sku_name", MAX_NAME),
            spec("category", MAX_CATEGORY),
        )
        self._price = index.get("price", -1)
        self._stock = index.get("stock", -1)
        self._currency = index.get("currency", -1)
        self._columns = columns
        self._default_currency = default_currency

    def check(self, cells: Sequence[str], line: int) -> tuple[CsvRow | None, list[str]]:
        reasons: list[str] = []
        texts: list[str | None] = []
        for column, position, limit, multiline, required in self._texts:
            if position < 0:
                texts.append(None)
                continue
            value = cells[position].strip()
            if multiline and "\r" in value:
                value = value.replace("\r\n", "\n").replace("\r", "\n")
            control = _CONTROL_MULTILINE if multiline else _CONTROL_ONE_LINE
            if (required and not value) or len(value) > limit or control.search(value) is not None:
                try:
                    clean_text(cells[position], column, limit, multiline=multiline, required=required)
                except RowProblem as exc:
                    reasons.append(str(exc))
                texts.append(None)
                continue
            texts.append(value)
        product_name, sku, description, external_id, sku_name, category = texts

        currency: str | None = self._default_currency
        if self._currency >= 0:
            raw = cells[self._currency].strip()
            if raw:
                currency = raw.upper()
                if currency not in ISO_4217:
                    reasons.append(
                        str(_problem(parse_currency, raw, self._default_currency, self._columns["currency"]))
                    )
                    currency = None
        price: int | None = None
        if self._price >= 0 and currency is not None:
            raw = cells[self._price].strip()
            match = _PRICE.fullmatch(raw)
            exponent = _EXPONENTS.get(currency, 2)
            if match is not None and len(match.group(2) or "") <= exponent:
                fraction = match.group(2) or ""
                price = int(match.group(1)) * _SCALE[exponent] + (
                    int(fraction) * _SCALE[exponent - len(fraction)] if fraction else 0
                )
            if price is None or price > MAX_PRICE_MINOR:
                try:
                    price = parse_price(raw, currency, self._columns["price"])
                except RowProblem as exc:
                    reasons.append(str(exc))
                    price = None
        stock: int | None = None
        if self._stock >= 0:
            raw = cells[self._stock].strip()
            if raw.isascii() and raw.isdigit() and len(raw) <= 10 and int(raw) <= MAX_STOCK:
                stock = int(raw)
            else:
                try:
                    stock = parse_stock(raw, self._columns["stock"])
                except RowProblem as exc:
                    reasons.append(str(exc))
        if product_name and sku_name and len(product_name) + 3 + len(sku_name) > MAX_TITLE:
            reasons.append(
                f"product_name and sku_name together are too long for a title "
                f"({len(product_name) + 3 + len(sku_name)} characters; the limit is {MAX_TITLE})"
            )
        if reasons or product_name is None or sku is None or currency is None:
            return None, reasons
        return (
            CsvRow(
                line=line,
                product_name=product_name,
                sku=sku,
                description=description,
                external_id=external_id,
                sku_name=sku_name,
                category=category,
                price_minor=price,
                stock=stock,
                currency=currency,
            ),
            reasons,
        )


_TextSpec = tuple[str, int, int, bool, bool]
_SCALE: Final = (1, 10, 100, 1_000, 10_000)


def _problem(parse: Callable[..., object], *args: object) -> RowProblem:
    try:
        parse(*args)
    except RowProblem as exc:
        return exc
    raise AssertionError(f"{parse.__name__}{args!r} did not find a problem")


# ---------------------------------------------------------------- rows against the database
@dataclass
class Resolved:
    rows: list[CatalogRow]
    problems: list[ImportIssue]
    product_fields: frozenset[str]
    created: int
    updated: int


def resolve_rows(parsed: ParsedCatalog, existing: Mapping[str, ExistingSku]) -> Resolved:
    """Turn checked CSV rows into catalog rows against what is stored: absent columns keep stored
    values, product text is shared between a product's rows, and the checks that need the stored
    SKU (reservations, currency) run here. Pure: ``existing`` comes from the caller's transaction."""
    problems: list[ImportIssue] = []
    has_currency, has_external_id = parsed.has("currency"), parsed.has("external_id")
    share_description, share_category = parsed.has("description"), parsed.has("category")
    stock_column = parsed.columns.get("stock", "quantity_on_hand")
    # (row, price, stock, external id, product key, description, category)
    ready: list[tuple[CsvRow, int, int, str | None, str, str, str]] = []
    shared: dict[str, tuple[str, str]] = {}
    for row in parsed.rows:
        old = existing.get(row.sku)
        price = row.price_minor
        stock = row.stock
        if old is None:
            if price is None:
                problems.append(
                    ImportIssue(line=row.line, sku=row.sku, reason="new SKU without a price: add a unit_price column")
                )
                continue
            ready_row = (row, price, stock or 0, row.external_id or None, row.description or "", row.category or "")
        else:
            price = old.price_minor if price is None else price
            stock = old.stock_on_hand if stock is None else stock
            reasons: list[str] = []
            if not has_currency and old.currency != row.currency:
                reasons.append(
                    f"SKU {row.sku} is priced in {old.currency} but the file has no currency column "
                    f"(the default is {row.currency}); add a currency column"
                )
            if stock < old.reserved:
                reasons.append(
                    f"{stock_column} {stock} is below the {old.reserved} unit(s) reserved by unpaid orders; "
                    f"set at least {old.reserved}, or wait until those orders are paid, canceled or expired"
                )
            if reasons:
                problems.append(ImportIssue(line=row.line, sku=row.sku, reason="; ".join(reasons)))
                continue
            ready_row = (
                row,
                price,
                stock,
                (row.external_id if has_external_id else old.product_external_id) or None,
                old.search_text if row.description is None else row.description,
                old.category if row.category is None else row.category,
            )
        _row, price, stock, external_id, description, category = ready_row
        key = catalog_write.product_key(external_id, row.product_name)
        ready.append((row, price, stock, external_id, key, description, category))
        # A product's description and category may be written on one of its rows only.
        first_description, first_category = shared.get(key, ("", ""))
        if not (first_description and first_category):
            shared[key] = (first_description or description, first_category or category)

    rows: list[CatalogRow] = []
    for row, price, stock, external_id, key, description, category in ready:
        product_description, product_category = shared[key]
        rows.append(
            CatalogRow(
                product_name=row.product_name,
                sku=row.sku,
                price_minor=price,
                currency=row.currency,
                stock=stock,
                description=description or product_description if share_description else description,
                external_id=external_id,
                sku_name=(_stored_variant_name(existing, row) if row.sku_name is None else row.sku_name),
                category=category or product_category if share_category else category,
            )
        )
    fields = {"name"} | {name for name in ("description", "category") if parsed.has(name)}
    created = sum(1 for row in rows if row.sku not in existing)
    return Resolved(
        rows, sorted(problems, key=lambda issue: issue.line), frozenset(fields), created, len(rows) - created
    )


def _stored_variant_name(existing: Mapping[str, ExistingSku], row: CsvRow) -> str:
    old = existing.get(row.sku)
    return old.name if old is not None else ""


# ---------------------------------------------------------------- the service
class _Progress:
    """Written by the parser and the database work (worker thread or greenlet), read by the pump."""

    def __init__(self) -> None:
        self.done = 0
        self.total = 0
        self._sent = (-1, -1)

    async def send(self, callback: ProgressCallback) -> None:
        current = (self.done, self.total)
        if current != self._sent and current[1] > 0:
            self._sent = current
            await callback(*current)

    async def pump(self, callback: ProgressCallback, interval: float) -> None:
        while True:
            await anyio.sleep(interval)
            try:
                await self.send(callback)
            except Exception:  # a progress consumer that fails must not fail the import
                return


class CatalogImportService:
    """CSV catalog import for the CLI and the ``import_catalog_csv`` tool."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        default_currency: str,
        *,
        max_bytes: int = MAX_FILE_BYTES,
        max_rows: int = MAX_ROWS,
        progress_interval: float = 0.2,
    ) -> None:
        self._db = db
        self._clock = clock
        self._default_currency = default_currency
        self._max_bytes = max_bytes
        self._max_rows = max_rows
        self._progress_interval = progress_interval

    async def import_path(
        self,
        path: Path | str,
        *,
        skip_invalid: bool = False,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
    ) -> ImportReport:
        """Import a CSV file from disk (read and parsed in a worker thread)."""
        file = Path(path)
        tracker = _Progress()

        async def parse() -> ParsedCatalog:
            return await anyio.to_thread.run_sync(self._parse_file, file, tracker)

        return await self._run(parse, tracker, skip_invalid=skip_invalid, dry_run=dry_run, progress=progress)

    async def import_text(
        self,
        text: str,
        *,
        source: str = "CSV text",
        skip_invalid: bool = False,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
    ) -> ImportReport:
        """Import CSV given as text (e.g. a tool argument)."""
        tracker = _Progress()

        async def parse() -> ParsedCatalog:
            return await anyio.to_thread.run_sync(self._parse_text, text, source, tracker)

        return await self._run(parse, tracker, skip_invalid=skip_invalid, dry_run=dry_run, progress=progress)

    # -- reading
    def _too_large(self, source: str, size: int) -> CatalogImportInvalid:
        return _reject(
            source,
            f"the file is {size / 1_048_576:.1f} MB; the limit is {self._max_bytes / 1_048_576:.0f} MB. Split it "
            "into several files (each with the header row) and import them one after the other.",
            size_bytes=size,
            max_bytes=self._max_bytes,
        )

    def _parse_file(self, path: Path, tracker: _Progress) -> ParsedCatalog:
        source = path.name or str(path)
        try:
            size = path.stat().st_size
            if not path.is_file():
                raise _reject(str(path), "not a file. Pass the path of a .csv file.")
            if size > self._max_bytes:
                raise self._too_large(source, size)
            with path.open("rb") as handle:
                data = handle.read(self._max_bytes + 1)
        except FileNotFoundError:
            raise _reject(
                str(path), "no such file. Check the path (relative paths start in the current directory)."
            ) from None
        except PermissionError:
            raise _reject(str(path), "permission denied; make the file readable for this user.") from None
        except IsADirectoryError:
            raise _reject(str(path), "not a file. Pass the path of a .csv file.") from None
        if len(data) > self._max_bytes:
            raise self._too_large(source, len(data))
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise _reject(
                source,
                "the file is UTF-16 (Excel's 'Unicode Text'). Save it as 'CSV UTF-8 (Comma delimited)' "
                "and import again.",
            )
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise _reject(
                source,
                f"the file is not UTF-8 text (byte 0x{data[exc.start]:02X} on line {line}). Save it as "
                "'CSV UTF-8' (Excel: Save As > CSV UTF-8; Google Sheets exports UTF-8), or convert it, e.g. "
                f"iconv -f WINDOWS-1252 -t UTF-8 {path.name} > utf8-{path.name}",
                line=line,
            ) from None
        return self._parse(text, source, tracker)

    def _parse_text(self, text: str, source: str, tracker: _Progress) -> ParsedCatalog:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self._max_bytes:
            raise self._too_large(source, size)
        return self._parse(text, source, tracker)

    def _parse(self, text: str, source: str, tracker: _Progress) -> ParsedCatalog:
        estimate = estimate_rows(text)
        tracker.total = 2 * estimate

        def on_row(done: int) -> None:
            tracker.done = done

        return parse_catalog_csv(
            text, default_currency=self._default_currency, source=source, max_rows=self._max_rows, on_row=on_row
        )

    # -- importing
    async def _run(
        self,
        parse: Callable[[], Awaitable[ParsedCatalog]],
        tracker: _Progress,
        *,
        skip_invalid: bool,
        dry_run: bool,
        progress: ProgressCallback | None,
    ) -> ImportReport:
        async def work() -> ImportReport:
            parsed = await parse()
            tracker.done = parsed.rows_read
            tracker.total = parsed.rows_read + len(parsed.rows)
            return await self._apply(parsed, tracker, skip_invalid=skip_invalid, dry_run=dry_run)

        if progress is None:
            return await work()
        outcome: list[ImportReport] = []
        failure: list[Exception] = []
        async with anyio.create_task_group() as group:
            group.start_soon(tracker.pump, progress, self._progress_interval)
            try:
                outcome.append(await work())
            except Exception as exc:
                failure.append(exc)
            finally:
                group.cancel_scope.cancel()
        if failure:
            raise failure[0]
        tracker.done = tracker.total
        await tracker.send(progress)
        return outcome[0]

    async def _apply(
        self, parsed: ParsedCatalog, tracker: _Progress, *, skip_invalid: bool, dry_run: bool
    ) -> ImportReport:
        now = self._clock()
        base = parsed.rows_read

        def check(conn: Connection) -> Resolved:
            existing = catalog_write.existing_skus(conn, [row.sku for row in parsed.rows])
            return resolve_rows(parsed, existing)

        def write(conn: Connection) -> Resolved:
            existing = catalog_write.existing_skus(conn, [row.sku for row in parsed.rows], lock=True)
            resolved = resolve_rows(parsed, existing)
            if resolved.problems and not skip_invalid:
                raise self._rejection(parsed, resolved)

            def on_chunk(done: int) -> None:
                tracker.done = base + done

            catalog_write.upsert_catalog(
                conn,
                resolved.rows,
                now,
                existing=existing,
                product_fields=resolved.product_fields,
                progress=on_chunk,
            )
            return resolved

        if dry_run or not parsed.rows or (parsed.problems and not skip_invalid):
            # Nothing will be written: check against a snapshot, without taking the write lock.
            resolved = await self._db.read(check)
            if (parsed.problems or resolved.problems) and not skip_invalid:
                raise self._rejection(parsed, resolved)
        else:
            resolved = await self._db.write(write)
        problems = sorted(parsed.problems + resolved.problems, key=lambda issue: issue.line)
        return ImportReport(
            rows_read=parsed.rows_read,
            created=resolved.created,
            updated=resolved.updated,
            skipped=len(problems),
            problems=parsed.warnings + problems[:MAX_LISTED_PROBLEMS],
            dry_run=dry_run,
        )

    @staticmethod
    def _rejection(parsed: ParsedCatalog, resolved: Resolved) -> CatalogImportInvalid:
        problems = sorted(parsed.problems + resolved.problems, key=lambda issue: issue.line)
        first = problems[0]
        valid = parsed.rows_read - len(problems)
        return CatalogImportInvalid(
            f"{parsed.source} was not imported: {len(problems):,} of {parsed.rows_read:,} rows have problems "
            f"(first: line {first.line}: {first.reason}). Nothing was changed. Fix those rows and import the file "
            f"again, or import with skip_invalid (CLI: --skip-invalid) to load the {valid:,} valid rows and skip "
            "the rest.",
            details={
                "source": parsed.source,
                "rows_read": parsed.rows_read,
                "invalid_rows": len(problems),
                "valid_rows": valid,
                "problems": [issue.model_dump() for issue in problems[:MAX_PROBLEMS_IN_ERROR]],
                "warnings": [issue.model_dump() for issue in parsed.warnings],
            },
        )
