"""Reading a catalog CSV: decoding, the header and its column mapping, and checking every row.

The format is the one merchants already export::

    product_name,sku_code,product_description,product_external_id,sku_name,unit_price,quantity_on_hand,category,currency

- Required columns: ``product_name``, ``sku_code``. Optional: ``product_description``,
  ``product_external_id`` (alias ``product_ref``), ``sku_name``, ``unit_price`` (alias ``price``),
  ``quantity_on_hand`` (alias ``stock_qty``), ``category``, ``currency``. Header names are
  case-insensitive; surrounding spaces are trimmed and inner spaces or hyphens count as ``_``
  (``Product Name`` is ``product_name``). A UTF-8 BOM is fine. Unknown columns are ignored with a
  warning. The delimiter is a comma; a semicolon or tab header (European Excel) is recognised.
- Values obey :mod:`mcp_checkout.service.catalog_rules` (prices, stock, currency, text bounds), the
  same rules ``upsert_product`` applies; a cell that breaks one is a row problem naming the column.
- Problems name the physical line (the header is line 1; a quoted value with line breaks spans
  several lines). File-level problems (encoding, size, header, quoting) raise
  :class:`CatalogImportInvalid`.

Nothing here touches the database: :func:`resolve_rows` applies the rules that need the stored
SKUs to rows the caller looked up in its transaction.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from mcp_checkout.errors import CatalogImportInvalid
from mcp_checkout.service import catalog_formats
from mcp_checkout.service.catalog_rules import (
    MAX_SKU,
    TEXT_FIELDS,
    Resolved,
    RowProblem,
    SkuInput,
    clean_text,
    parse_currency,
    parse_flag,
    parse_price,
    parse_stock,
    parse_tax_category,
    parse_weight,
    resolve,
    title_problem,
)
from mcp_checkout.service.views import ImportIssue
from mcp_checkout.store.catalog_write import ExistingSku

MAX_FILE_BYTES: Final = 50 * 1024 * 1024
MAX_ROWS: Final = 1_000_000

MAX_LISTED_PROBLEMS: Final = 1_000
"""Problems listed in a report (the counts are always complete)."""
MAX_PROBLEMS_IN_ERROR: Final = 100

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
    "image_url": "image_url",
    "description_html": "description_html",
    "requires_shipping": "requires_shipping",
    "shipping_required": "requires_shipping",
    "tax_category": "tax_category",
    "tax_class": "tax_category",
    "weight_grams": "weight_grams",
    "weight_g": "weight_grams",
    "grams": "weight_grams",
}
FIELD_NAMES: Final = frozenset(COLUMNS.values())
"""What a column can be mapped to (``--map COLUMN=field``): the fields, or the header names above."""
REQUIRED: Final = ("product_name", "sku_code")
EXAMPLE_HEADER: Final = (
    "product_name,sku_code,product_description,sku_name,unit_price,quantity_on_hand,category,currency"
)
_PROGRESS_EVERY = 2_000
_FIRST_LINE = re.compile(r"[^\r\n]*\S[^\r\n]*")


# ---------------------------------------------------------------- parsing the file
@dataclass
class ParsedCatalog:
    source: str
    header_line: int
    columns: dict[str, str]
    """Field → the header name the file uses for it."""
    rows: list[SkuInput] = field(default_factory=list)
    problems: list[ImportIssue] = field(default_factory=list)
    """Row errors, in line order, one per bad row."""
    warnings: list[ImportIssue] = field(default_factory=list)
    rows_read: int = 0
    format: str = "csv"
    """csv (the catalog's own columns), shopify or woocommerce."""

    def has(self, name: str) -> bool:
        return name in self.columns


def _reject(source: str, message: str, **details: Any) -> CatalogImportInvalid:
    return CatalogImportInvalid(f"{source}: {message}", details={"source": source, **details})


def _column_map(column_map: Mapping[str, str], source: str) -> dict[str, str]:
    """``--map`` entries as normalised header name → field; an unknown field is refused."""
    mapped: dict[str, str] = {}
    for column, wanted in column_map.items():
        name = _header([wanted])[0]
        field_name = name if name in FIELD_NAMES else COLUMNS.get(name)
        if field_name is None:
            raise _reject(
                source,
                f"--map {column}={wanted}: {wanted!r} is not a catalog field; use one of "
                f"{', '.join(sorted(FIELD_NAMES))}.",
            )
        mapped[_header([column])[0]] = field_name
    return mapped


def _records(reader: Any, position: list[int]) -> Iterator[tuple[int, int, list[str]]]:
    """(first line, last line, cells) of each non-blank row of a ``csv.reader``; ``position[0]``: the
    last physical line read."""
    for cells in reader:
        line, end = position[0] + 1, reader.line_num
        position[0] = end
        if "".join(cells).strip():  # skip blank lines (or only delimiters)
            yield line, end, cells


def _translated(
    translator: catalog_formats.Translator,
    records: Iterator[tuple[int, int, list[str]]],
    width: int,
    problems: list[ImportIssue],
) -> Iterator[tuple[int, int, list[str]]]:
    """An export's rows as catalog rows; rows of the wrong width become problems here (the export's
    own columns), rows that are no SKU (image rows, variable parents) are dropped."""
    good: list[catalog_formats.Record] = []
    for line, end, cells in records:
        if len(cells) != width and (len(cells) < width or "".join(cells[width:]).strip()):
            reason = f"has {len(cells)} values but the header has {width} columns"
            problems.append(ImportIssue(line=line, sku=None, reason=reason))
            continue
        good.append(catalog_formats.Record(line, end, cells))
    for record, row in translator.rows(good):
        if row is not None:
            yield record.line, record.end, row


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
    column_map: Mapping[str, str] | None = None,
) -> ParsedCatalog:
    """Parse and check every row of a catalog CSV (no database). File-level problems (no header,
    missing required column, too many rows, broken quoting) raise :class:`CatalogImportInvalid`;
    row problems are collected with their line numbers. Shopify and WooCommerce product exports are
    recognised by their header (:mod:`catalog_formats`); ``column_map`` maps other headers to fields
    (header name → field, e.g. ``{"Artikelnummer": "sku"}``)."""
    mapped = _column_map(column_map or {}, source)
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
        target = mapped.get(name) or COLUMNS.get(name)
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
    export = catalog_formats.detect(names) if missing else None
    translator: catalog_formats.Translator | None = None
    if export is not None:
        translator = catalog_formats.Translator(export, names, header_cells)
        parsed.columns = {field: translator.labels.get(field, field) for field in catalog_formats.FIELDS}
        parsed.format = export
        index = {field: position for position, field in enumerate(catalog_formats.FIELDS)}
        missing, unknown = [], []
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
    read_to = [header_end]
    records = _records(reader, read_to)
    if translator is not None:
        records = _translated(translator, records, width, problems)
        width = len(catalog_formats.FIELDS)
    try:
        for line, end, cells in records:
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
            f"line {read_to[0] + 1} cannot be read as CSV ({exc}). A value that contains quotes must be in "
            'double quotes with its quotes doubled, e.g. "12"" ruler".',
            line=read_to[0] + 1,
        ) from None
    if translator is not None:
        parsed.warnings.extend(
            ImportIssue(line=line, sku=None, reason=f"warning: {why}") for line, why in translator.warnings
        )
    parsed.rows_read = rows_read
    if on_row is not None:
        on_row(rows_read)
    return parsed


class _RowChecker:
    """Checks the cells of one row with the catalog rules; a bad value becomes a reason naming its column."""

    def __init__(self, index: Mapping[str, int], columns: Mapping[str, str], default_currency: str) -> None:
        # Only the text columns the file has are checked; the others stay None (not given).
        self._texts = tuple(
            (slot, columns.get(name, name), index[name], limit, multiline, required)
            for slot, (name, (limit, multiline, required)) in enumerate(TEXT_FIELDS.items())
            if index.get(name, -1) >= 0
        )
        self._absent: list[str | None] = [None] * len(TEXT_FIELDS)
        self._price = index.get("price", -1)
        self._stock = index.get("stock", -1)
        self._currency = index.get("currency", -1)
        self._price_column = columns.get("price", "unit_price")
        self._stock_column = columns.get("stock", "quantity_on_hand")
        self._currency_column = columns.get("currency", "currency")
        self._default_currency = default_currency
        # Shipping and tax attributes: (field, column label, position, parser) for the columns the file has.
        self._attributes = tuple(
            (name, columns.get(name, name), index[name], parse)
            for name, parse in (
                ("requires_shipping", parse_flag),
                ("tax_category", parse_tax_category),
                ("weight_grams", parse_weight),
            )
            if index.get(name, -1) >= 0
        )

    def check(self, cells: Sequence[str], line: int) -> tuple[SkuInput | None, list[str]]:
        reasons: list[str] = []
        texts = self._absent.copy()
        for slot, column, position, limit, multiline, required in self._texts:
            try:
                texts[slot] = clean_text(cells[position], column, limit, multiline, required)
            except RowProblem as exc:
                reasons.append(str(exc))
        product_name, sku, description, external_id, sku_name, category, image_url, description_html = texts
        currency: str | None = self._default_currency
        if self._currency >= 0:
            try:
                currency = parse_currency(cells[self._currency], self._default_currency, self._currency_column)
            except RowProblem as exc:
                reasons.append(str(exc))
                currency = None
        price: int | None = None
        if self._price >= 0 and currency is not None:
            try:
                price = parse_price(cells[self._price], currency, self._price_column)
            except RowProblem as exc:
                reasons.append(str(exc))
        stock: int | None = None
        if self._stock >= 0:
            try:
                stock = parse_stock(cells[self._stock], self._stock_column)
            except RowProblem as exc:
                reasons.append(str(exc))
        attributes: dict[str, Any] | None = None
        if self._attributes:  # only files with these columns pay for them
            attributes = {}
            for name, column, position, parse in self._attributes:
                try:
                    attributes[name] = parse(cells[position], column)
                except RowProblem as exc:
                    reasons.append(str(exc))
        if product_name and sku_name:
            too_long = title_problem(product_name, sku_name)
            if too_long is not None:
                reasons.append(too_long)
        if reasons or product_name is None or sku is None or currency is None:
            return None, reasons
        row = SkuInput(
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
            image_url=image_url,
            description_html=description_html,
        )
        if attributes:
            for name, value in attributes.items():
                setattr(row, name, value)
        return row, reasons


def resolve_rows(parsed: ParsedCatalog, existing: Mapping[str, ExistingSku]) -> Resolved:
    """The file's checked rows against the stored SKUs (:func:`catalog_rules.resolve`): the columns
    the file has are the fields it gives."""
    return resolve(parsed.rows, existing, frozenset(parsed.columns), parsed.columns)


# ---------------------------------------------------------------- reading files
def too_large(source: str, size: int, max_bytes: int) -> CatalogImportInvalid:
    return _reject(
        source,
        f"the file is {size / 1_048_576:.1f} MB; the limit is {max_bytes / 1_048_576:.0f} MB. Split it "
        "into several files (each with the header row) and import them one after the other.",
        size_bytes=size,
        max_bytes=max_bytes,
    )


def read_csv_file(path: Path, max_bytes: int) -> str:
    """A CSV file's text (UTF-8, BOM dropped); unreadable, too large or not UTF-8 → :class:`CatalogImportInvalid`."""
    source = path.name or str(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise _reject(str(path), "not a file. Pass the path of a .csv file.")
        if size > max_bytes:
            raise too_large(source, size, max_bytes)
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise _reject(
            str(path), "no such file. Check the path (relative paths start in the current directory)."
        ) from None
    except PermissionError:
        raise _reject(str(path), "permission denied; make the file readable for this user.") from None
    except IsADirectoryError:
        raise _reject(str(path), "not a file. Pass the path of a .csv file.") from None
    if len(data) > max_bytes:
        raise too_large(source, len(data), max_bytes)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _reject(
            source,
            "the file is UTF-16 (Excel's 'Unicode Text'). Save it as 'CSV UTF-8 (Comma delimited)' and import again.",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _reject(
            source,
            f"the file is not UTF-8 text (byte 0x{data[exc.start]:02X} on line {line}). Save it as "
            "'CSV UTF-8' (Excel: Save As > CSV UTF-8; Google Sheets exports UTF-8), or convert it, e.g. "
            f"iconv -f WINDOWS-1252 -t UTF-8 {path.name} > utf8-{path.name}",
            line=line,
        ) from None
