"""Shop exports imported as they are: Shopify's and WooCommerce's product CSVs, recognised by their header.

Each export is translated row by row into the catalog's own fields (:data:`FIELDS`), which then obey
the same rules as any catalog CSV (:mod:`catalog_rules`). Messages name the export's own columns.

Shopify (``Handle``, ``Title``, ``Body (HTML)``, ``Option1 Name``/``Option1 Value`` …, ``Variant SKU``,
``Variant Price``, ``Variant Inventory Qty``, ``Image Src``, ``Variant Image`` …): rows with the same
Handle are one product; variant rows leave Title and Body blank and continue the product above; rows
with only an image (``Image Src``) add pictures and are skipped. Option values name the variant
(``Default Title`` means none). A blank ``Variant SKU`` becomes ``handle-option-values``. Negative
inventory (oversold) counts as 0. ``Variant Requires Shipping`` and ``Variant Grams`` are kept;
``Variant Taxable`` FALSE makes the tax category ``zero``.

WooCommerce (``ID``, ``Type``, ``SKU``, ``Name``, ``Parent``, ``Regular price``, ``Sale price``,
``Stock``, ``Categories``, ``Images``, ``Description``, ``Attribute 1 name``/``Attribute 1 value(s)`` …):
``simple`` products are one SKU; a ``variable`` product is the parent of its ``variation`` rows (its
Parent is ``id:<ID>`` or the parent's SKU) and is not sold itself. The sale price wins over the regular
price when both are set; a blank SKU becomes ``woo-<ID>``; the first category (its last level) and the
first image are used. ``Virtual?`` 1 means no shipping; ``Tax status`` none or ``Tax class`` zero-rate
is tax category ``zero``, reduced-rate ``reduced``, another class its own name; ``Weight (kg|g|lbs|oz)``
becomes whole grams.

HTML bodies become plain text for search (:func:`html_to_text`) and are kept as they are in
``description_html`` for display (returned as data, never rendered by this server).
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from html.parser import HTMLParser
from typing import Final, Literal

from mcp_checkout.service.catalog_rules import MAX_DESCRIPTION, MAX_SKU

FIELDS: Final = (
    "product_name",
    "sku",
    "description",
    "external_id",
    "sku_name",
    "category",
    "price",
    "stock",
    "currency",
    "image_url",
    "description_html",
    "requires_shipping",
    "tax_category",
    "weight_grams",
)
"""The catalog's own fields, in the order of a translated row."""
Format = Literal["shopify", "woocommerce"]
_AT: Final = {name: position for position, name in enumerate(FIELDS)}
_GRAMS_PER: Final = {"kg": Decimal(1000), "g": Decimal(1), "lbs": Decimal("453.59237"), "oz": Decimal("28.349523125")}
_NOT: Final = {"1": "false", "yes": "false", "true": "false", "0": "true", "no": "true", "false": "true"}
_BLOCKS: Final = frozenset({"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table"})


@dataclass(frozen=True, slots=True)
class Record:
    """One data row: its first and last physical line and its cells."""

    line: int
    end: int
    cells: list[str]


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(self._skip - 1, 0)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(body: str, limit: int = MAX_DESCRIPTION) -> str:
    """The readable text of an HTML fragment: tags dropped, entities decoded, one line per block,
    at most ``limit`` characters (cut at a word, with "…")."""
    if "<" not in body and "&" not in body:
        text = body
    else:
        parser = _Text()
        parser.feed(body)
        parser.close()
        text = html.unescape("".join(parser.parts))
    lines = (" ".join(line.split()) for line in text.splitlines())
    text = "\n".join(line for line in lines if line)
    if len(text) > limit:
        text = text[: limit - 1].rsplit(" ", 1)[0] + "…"
    return text


def detect(names: Sequence[str]) -> Format | None:
    """The export a normalised header comes from (see ``catalog_csv``), or None."""
    present = set(names)
    if {"handle", "title", "variant_price"} <= present:
        return "shopify"
    if {"type", "sku", "name", "regular_price"} <= present:
        return "woocommerce"
    return None


def fallback_sku(*parts: str) -> str:
    """A stable SKU code from a product's handle or id and its option values (``classic-tee-m-blue``)."""
    slug = "-".join(filter(None, (re.sub(r"[^a-z0-9]+", "-", part.lower()).strip("-") for part in parts)))
    if len(slug) <= MAX_SKU:
        return slug
    digest = hashlib.sha256(slug.encode()).hexdigest()[:10]
    return f"{slug[: MAX_SKU - 11].rstrip('-')}-{digest}"


class Translator:
    """Rows of one export → rows of :data:`FIELDS`; ``labels`` names each field by the export's column."""

    def __init__(self, kind: Format, names: Sequence[str], header: Sequence[str]) -> None:
        self.kind = kind
        self._at = {name: position for position, name in enumerate(names) if name}
        self._header = [cell.strip() for cell in header]
        self.labels: dict[str, str] = {}
        self.warnings: list[tuple[int, str]] = []
        wanted = _SHOPIFY_LABELS if kind == "shopify" else _WOO_LABELS
        for field, name in wanted.items():
            if name in self._at:
                self.labels[field] = self._header[self._at[name]]

    def get(self, cells: Sequence[str], name: str) -> str:
        position = self._at.get(name)
        return cells[position].strip() if position is not None and position < len(cells) else ""

    def rows(self, records: Iterable[Record]) -> Iterator[tuple[Record, list[str] | None]]:
        """Each record with its translated cells, or None for a row that is no SKU (an image row,
        a variable product's parent row)."""
        if self.kind == "shopify":
            return self._shopify(records)
        return self._woocommerce(list(records))

    # ------------------------------------------------------------ Shopify
    def _shopify(self, records: Iterable[Record]) -> Iterator[tuple[Record, list[str] | None]]:
        product: dict[str, str] = {}
        option_names = ["", "", ""]
        get = self.get
        for record in records:
            cells = record.cells
            handle = get(cells, "handle")
            if handle != product.get("handle"):
                product = {"handle": handle, "image": ""}
                option_names = ["", "", ""]
            title = get(cells, "title")
            if title:
                body = get(cells, "body_(html)")
                category = get(cells, "type") or get(cells, "product_category").rsplit(">", 1)[-1].strip()
                product.update(title=title, body=body, category=category)
            for number in range(3):
                named = get(cells, f"option{number + 1}_name")
                if named:
                    option_names[number] = named
            image = get(cells, "image_src")
            if image and not product["image"]:
                product["image"] = image
            values = [get(cells, f"option{number}_value") for number in (1, 2, 3)]
            sku, price = get(cells, "variant_sku"), get(cells, "variant_price")
            if not (sku or price or any(values)):
                yield record, None  # an extra picture of the product
                continue
            named_values = [value for value in values if value and value != "Default Title"]
            stock = get(cells, "variant_inventory_qty")
            if stock.startswith("-") and stock[1:].isdigit():
                self.warnings.append((record.line, f"Variant Inventory Qty {stock} (oversold) taken as 0"))
                stock = "0"
            row = [""] * len(FIELDS)
            row[_AT["product_name"]] = product.get("title", "")
            row[_AT["sku"]] = sku or fallback_sku(handle, *named_values)
            row[_AT["external_id"]] = f"shopify:{handle}"
            row[_AT["sku_name"]] = " / ".join(named_values)
            row[_AT["price"]] = price
            row[_AT["stock"]] = stock
            row[_AT["image_url"]] = get(cells, "variant_image") or product["image"]
            row[_AT["requires_shipping"]] = get(cells, "variant_requires_shipping")
            row[_AT["weight_grams"]] = get(cells, "variant_grams")
            if get(cells, "variant_taxable").lower() == "false":
                row[_AT["tax_category"]] = "zero"
            if title:  # product text on the product's first row only: its variants inherit it
                row[_AT["description"]] = html_to_text(product["body"])
                row[_AT["description_html"]] = product["body"]
                row[_AT["category"]] = product["category"]
            yield record, row

    # ------------------------------------------------------------ WooCommerce
    def _woocommerce(self, records: list[Record]) -> Iterator[tuple[Record, list[str] | None]]:
        get = self.get
        parents: dict[str, Sequence[str]] = {}
        for record in records:
            if get(record.cells, "type").lower().startswith("variable"):
                ident, sku = get(record.cells, "id"), get(record.cells, "sku")
                if ident:
                    parents[f"id:{ident}"] = record.cells
                if sku:
                    parents[sku] = record.cells
        for record in records:
            cells = record.cells
            kind = get(cells, "type").lower()
            if kind.startswith("variable") or kind in ("grouped", "external"):
                yield record, None  # not sold itself (its variations are), or sold elsewhere
                continue
            parent = parents.get(get(cells, "parent")) if kind == "variation" else None
            owner = parent if parent is not None else cells
            attributes = [
                get(cells, f"attribute_{number}_value(s)").split(",")[0].strip()
                for number in range(1, 10)
                if f"attribute_{number}_value(s)" in self._at
            ]
            ident = get(owner, "id") or get(cells, "id")
            body = get(owner, "description") or get(owner, "short_description")
            category = get(owner, "categories").split(",")[0].rsplit(">", 1)[-1].strip()
            sale, regular = get(cells, "sale_price"), get(cells, "regular_price")
            row = [""] * len(FIELDS)
            row[_AT["product_name"]] = get(owner, "name")
            row[_AT["sku"]] = get(cells, "sku") or fallback_sku("woo", get(cells, "id"))
            row[_AT["external_id"]] = f"woocommerce:{ident}" if ident else ""
            row[_AT["sku_name"]] = " / ".join(value for value in attributes if value) if parent is not None else ""
            row[_AT["price"]] = sale or regular
            row[_AT["stock"]] = get(cells, "stock") or (get(owner, "stock") if parent is not None else "")
            row[_AT["category"]] = category
            images = get(cells, "images") or get(owner, "images")
            row[_AT["image_url"]] = images.split(",")[0].strip()
            row[_AT["description"]] = html_to_text(body)
            row[_AT["description_html"]] = body
            virtual = get(cells, "virtual?")
            row[_AT["requires_shipping"]] = _NOT.get(virtual.lower(), virtual)  # virtual: nothing to ship
            row[_AT["tax_category"]] = self._woo_tax_category(cells, owner)
            row[_AT["weight_grams"]] = self._woo_grams(cells, owner)
            yield record, row

    def _woo_tax_category(self, cells: Sequence[str], owner: Sequence[str]) -> str:
        if (self.get(cells, "tax_status") or self.get(owner, "tax_status")).lower() == "none":
            return "zero"
        tax_class = (self.get(cells, "tax_class") or self.get(owner, "tax_class")).lower()
        if tax_class == "parent":
            tax_class = self.get(owner, "tax_class").lower()
        return {"zero-rate": "zero", "reduced-rate": "reduced"}.get(tax_class, tax_class)

    def _woo_grams(self, cells: Sequence[str], owner: Sequence[str]) -> str:
        """The weight column's value in whole grams (as text); unreadable values pass through for the check."""
        for unit, grams in _GRAMS_PER.items():
            column = f"weight_({unit})"
            if column in self._at:
                value = self.get(cells, column) or self.get(owner, column)
                try:
                    return str((Decimal(value) * grams).quantize(Decimal(1), ROUND_HALF_UP)) if value else ""
                except InvalidOperation:
                    return value
        return ""


_SHOPIFY_LABELS: Final[Mapping[str, str]] = {
    "product_name": "title",
    "sku": "variant_sku",
    "description": "body_(html)",
    "description_html": "body_(html)",
    "external_id": "handle",
    "sku_name": "option1_value",
    "category": "type",
    "price": "variant_price",
    "stock": "variant_inventory_qty",
    "image_url": "variant_image",
    "requires_shipping": "variant_requires_shipping",
    "tax_category": "variant_taxable",
    "weight_grams": "variant_grams",
}
_WOO_LABELS: Final[Mapping[str, str]] = {
    "product_name": "name",
    "sku": "sku",
    "description": "description",
    "description_html": "description",
    "external_id": "id",
    "sku_name": "attribute_1_value(s)",
    "category": "categories",
    "price": "regular_price",
    "stock": "stock",
    "image_url": "images",
    "requires_shipping": "virtual?",
    "tax_category": "tax_class",
    "weight_grams": "weight_(kg)",
}
