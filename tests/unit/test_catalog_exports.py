"""Shopify and WooCommerce product exports imported as they are, and --map for other headers.

The fixtures below use each platform's real export column layout (Shopify's products_export.csv,
WooCommerce's wc-product-export CSV), written out here rather than downloaded."""

from __future__ import annotations

import csv
import io

import pytest

from mcp_checkout.errors import CatalogImportInvalid
from mcp_checkout.service.catalog_csv import ParsedCatalog, parse_catalog_csv, resolve_rows
from mcp_checkout.service.catalog_formats import fallback_sku, html_to_text

SHOPIFY_HEADER = [
    "Handle", "Title", "Body (HTML)", "Vendor", "Product Category", "Type", "Tags", "Published",
    "Option1 Name", "Option1 Value", "Option1 Linked To", "Option2 Name", "Option2 Value", "Option2 Linked To",
    "Option3 Name", "Option3 Value", "Option3 Linked To", "Variant SKU", "Variant Grams",
    "Variant Inventory Tracker", "Variant Inventory Qty", "Variant Inventory Policy", "Variant Fulfillment Service",
    "Variant Price", "Variant Compare At Price", "Variant Requires Shipping", "Variant Taxable",
    "Unit Price Total Measure", "Unit Price Total Measure Unit", "Unit Price Base Measure",
    "Unit Price Base Measure Unit", "Variant Barcode", "Image Src", "Image Position", "Image Alt Text", "Gift Card",
    "SEO Title", "SEO Description", "Google Shopping / Google Product Category", "Google Shopping / Gender",
    "Google Shopping / Age Group", "Google Shopping / MPN", "Google Shopping / Condition",
    "Google Shopping / Custom Product", "Variant Image", "Variant Weight Unit", "Variant Tax Code", "Cost per item",
    "Status",
]  # fmt: skip
TEE_BODY = "<p>Soft <strong>organic</strong> cotton &amp; a relaxed fit.</p><ul><li>180 g/m²</li><li>Unisex</li></ul>"
IMG = "https://cdn.shopify.com/s/files/1/0000/0001/products"
SHOPIFY_ROWS = [
    {"Handle": "classic-tee", "Title": "Classic Tee", "Body (HTML)": TEE_BODY, "Vendor": "Acme",
     "Product Category": "Apparel & Accessories > Clothing > Shirts & Tops", "Type": "T-Shirts",
     "Tags": "cotton, summer", "Published": "true", "Option1 Name": "Size", "Option1 Value": "S",
     "Option2 Name": "Color", "Option2 Value": "Blue", "Variant SKU": "TEE-S-BLU", "Variant Grams": "180",
     "Variant Inventory Tracker": "shopify", "Variant Inventory Qty": "12", "Variant Inventory Policy": "deny",
     "Variant Fulfillment Service": "manual", "Variant Price": "25.00", "Variant Compare At Price": "30.00",
     "Variant Requires Shipping": "true", "Variant Taxable": "true", "Image Src": f"{IMG}/tee-front.jpg",
     "Image Position": "1", "Gift Card": "false", "Variant Image": f"{IMG}/tee-blue.jpg", "Variant Weight Unit": "kg",
     "Status": "active"},
    # A variant row: blank Title and Body, the same Handle, only the option values.
    {"Handle": "classic-tee", "Option1 Value": "M", "Option2 Value": "Blue", "Variant SKU": "TEE-M-BLU",
     "Variant Grams": "190", "Variant Inventory Tracker": "shopify", "Variant Inventory Qty": "-2",
     "Variant Inventory Policy": "continue", "Variant Fulfillment Service": "manual", "Variant Price": "25.00",
     "Variant Requires Shipping": "true", "Variant Taxable": "true", "Image Src": f"{IMG}/tee-back.jpg",
     "Image Position": "2", "Variant Weight Unit": "kg"},
    # A variant without a SKU: a stable one is made from the handle and the option values.
    {"Handle": "classic-tee", "Option1 Value": "L", "Option2 Value": "Red", "Variant SKU": "",
     "Variant Inventory Qty": "3", "Variant Price": "27.50", "Variant Requires Shipping": "true",
     "Variant Weight Unit": "kg"},
    # An image-only row (a third picture): no SKU, skipped.
    {"Handle": "classic-tee", "Image Src": f"{IMG}/tee-detail.jpg", "Image Position": "3"},
    # A single-variant product: Option1 "Title" / "Default Title".
    {"Handle": "ceramic-mug", "Title": "Ceramic Mug", "Body (HTML)": "<p>Holds 350&nbsp;ml.</p>", "Vendor": "Acme",
     "Type": "Mugs", "Published": "true", "Option1 Name": "Title", "Option1 Value": "Default Title",
     "Variant SKU": "MUG-350", "Variant Inventory Qty": "40", "Variant Price": "14.90",
     "Image Src": f"{IMG}/mug.jpg", "Image Position": "1", "Status": "active"},
]  # fmt: skip

WOO_HEADER = [
    "ID", "Type", "SKU", "Name", "Published", "Is featured?", "Visibility in catalog", "Short description",
    "Description", "Date sale price starts", "Date sale price ends", "Tax status", "Tax class", "In stock?", "Stock",
    "Low stock amount", "Backorders allowed?", "Sold individually?", "Weight (kg)", "Length (cm)", "Width (cm)",
    "Height (cm)", "Allow customer reviews?", "Purchase note", "Sale price", "Regular price", "Categories", "Tags",
    "Shipping class", "Images", "Download limit", "Download expiry days", "Parent", "Grouped products", "Upsells",
    "Cross-sells", "External URL", "Button text", "Position", "Attribute 1 name", "Attribute 1 value(s)",
    "Attribute 1 visible", "Attribute 1 global", "Attribute 2 name", "Attribute 2 value(s)", "Attribute 2 visible",
    "Attribute 2 global",
]  # fmt: skip
WOO_IMG = "https://shop.example/wp-content/uploads/2026/01"
WOO_ROWS = [
    {"ID": "15", "Type": "simple", "SKU": "woo-beanie", "Name": "Beanie", "Published": "1",
     "Visibility in catalog": "visible", "Short description": "Warm.",
     "Description": "<p>A warm <em>merino</em> beanie.</p>", "Tax status": "taxable", "In stock?": "1",
     "Stock": "30", "Regular price": "20", "Sale price": "18", "Categories": "Clothing > Accessories",
     "Images": f"{WOO_IMG}/beanie.jpg, {WOO_IMG}/beanie-2.jpg", "Position": "0"},
    {"ID": "22", "Type": "variable", "SKU": "woo-hoodie", "Name": "Hoodie", "Published": "1",
     "Description": "<p>Fleece-lined hoodie.</p>", "In stock?": "1", "Categories": "Clothing > Hoodies",
     "Images": f"{WOO_IMG}/hoodie.jpg", "Attribute 1 name": "Color", "Attribute 1 value(s)": "Blue, Red",
     "Attribute 1 visible": "1", "Attribute 1 global": "1", "Attribute 2 name": "Size",
     "Attribute 2 value(s)": "M, L", "Attribute 2 visible": "1", "Attribute 2 global": "1"},
    {"ID": "23", "Type": "variation", "SKU": "woo-hoodie-blue-m", "Name": "Hoodie - Blue, M", "Published": "1",
     "In stock?": "1", "Stock": "5", "Regular price": "45", "Parent": "id:22", "Position": "1",
     "Attribute 1 name": "Color", "Attribute 1 value(s)": "Blue", "Attribute 2 name": "Size",
     "Attribute 2 value(s)": "M"},
    {"ID": "24", "Type": "variation", "SKU": "", "Name": "Hoodie - Red, L", "Published": "1", "In stock?": "1",
     "Stock": "2", "Regular price": "45.00", "Parent": "woo-hoodie", "Position": "2", "Attribute 1 name": "Color",
     "Attribute 1 value(s)": "Red", "Attribute 2 name": "Size", "Attribute 2 value(s)": "L",
     "Images": f"{WOO_IMG}/hoodie-red.jpg"},
]  # fmt: skip


def export(header: list[str], rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def parse(text: str, **options: object) -> ParsedCatalog:
    return parse_catalog_csv(text, default_currency="USD", **options)  # type: ignore[arg-type]


def test_a_shopify_export_is_recognised_and_its_variant_rows_join_their_product() -> None:
    parsed = parse(export(SHOPIFY_HEADER, SHOPIFY_ROWS))
    assert parsed.format == "shopify" and parsed.problems == []
    assert parsed.rows_read == 4  # the image-only row adds a picture, not a SKU
    rows = {row.sku: row for row in resolve_rows(parsed, {}).rows}
    assert set(rows) == {"TEE-S-BLU", "TEE-M-BLU", "classic-tee-l-red", "MUG-350"}
    for sku in ("TEE-S-BLU", "TEE-M-BLU", "classic-tee-l-red"):
        row = rows[sku]
        assert (row.product_name, row.external_id, row.category) == ("Classic Tee", "shopify:classic-tee", "T-Shirts")
        assert row.description == "Soft organic cotton & a relaxed fit.\n180 g/m²\nUnisex"
        assert row.currency == "USD"
    assert (rows["TEE-S-BLU"].sku_name, rows["TEE-S-BLU"].price_minor, rows["TEE-S-BLU"].stock) == (
        "S / Blue",
        2500,
        12,
    )
    assert (rows["TEE-M-BLU"].sku_name, rows["TEE-M-BLU"].stock) == ("M / Blue", 0)  # oversold (-2) → 0
    assert (rows["classic-tee-l-red"].sku_name, rows["classic-tee-l-red"].price_minor) == ("L / Red", 2750)
    assert (rows["MUG-350"].sku_name, rows["MUG-350"].description) == ("", "Holds 350 ml.")
    # Pictures: the variant's own image, else the product's first; the HTML body kept as it came for display.
    assert rows["TEE-S-BLU"].image_url == f"{IMG}/tee-blue.jpg"
    assert rows["TEE-M-BLU"].image_url == rows["classic-tee-l-red"].image_url == f"{IMG}/tee-front.jpg"
    assert {rows[sku].description_html for sku in ("TEE-S-BLU", "TEE-M-BLU", "classic-tee-l-red")} == {TEE_BODY}
    assert any("Variant Inventory Qty -2" in issue.reason for issue in parsed.warnings)


def test_a_shopify_row_with_a_bad_price_names_the_shopify_column() -> None:
    rows = [dict(SHOPIFY_ROWS[0], **{"Variant Price": "25,00"})]
    parsed = parse(export(SHOPIFY_HEADER, rows))
    [issue] = parsed.problems
    assert issue.line == 2 and issue.reason.startswith("Variant Price '25,00' uses a decimal comma")


def test_a_woocommerce_export_sells_simple_products_and_variations_not_their_parent() -> None:
    parsed = parse(export(WOO_HEADER, WOO_ROWS))
    assert parsed.format == "woocommerce" and parsed.problems == []
    rows = {row.sku: row for row in resolve_rows(parsed, {}).rows}
    assert set(rows) == {"woo-beanie", "woo-hoodie-blue-m", "woo-24"}
    beanie = rows["woo-beanie"]
    assert (beanie.product_name, beanie.price_minor, beanie.stock, beanie.category) == (
        "Beanie",
        1800,
        30,
        "Accessories",
    )
    assert beanie.description == "A warm merino beanie." and beanie.sku_name == ""
    assert (
        beanie.image_url == f"{WOO_IMG}/beanie.jpg"
        and beanie.description_html == "<p>A warm <em>merino</em> beanie.</p>"
    )
    assert rows["woo-24"].image_url == f"{WOO_IMG}/hoodie-red.jpg"
    assert rows["woo-hoodie-blue-m"].image_url == f"{WOO_IMG}/hoodie.jpg"
    for sku, variant, stock in (("woo-hoodie-blue-m", "Blue / M", 5), ("woo-24", "Red / L", 2)):
        row = rows[sku]
        assert (row.product_name, row.external_id, row.sku_name, row.stock) == (
            "Hoodie",
            "woocommerce:22",
            variant,
            stock,
        )
        assert (row.price_minor, row.category, row.description) == (4500, "Hoodies", "Fleece-lined hoodie.")


def test_html_becomes_readable_text_and_fallback_skus_are_stable_and_bounded() -> None:
    assert html_to_text("<h2>Care</h2><p>Wash &lt;30&deg;C</p><script>alert(1)</script>") == "Care\nWash <30°C"
    assert html_to_text("plain text, no tags") == "plain text, no tags"
    assert len(html_to_text("<p>" + "word " * 2000 + "</p>")) <= 5000
    assert fallback_sku("classic-tee", "L", "Red") == "classic-tee-l-red"
    long = fallback_sku("x" * 80, "Extra Large")
    assert len(long) == 64 and long == fallback_sku("x" * 80, "Extra Large") != fallback_sku("x" * 80, "Small")


def test_map_reads_other_headers_as_catalog_fields() -> None:
    text = "Artikelnummer;Bezeichnung;Preis;Bestand\nA-1;Kaffeebecher;12.50;7\n"
    with pytest.raises(CatalogImportInvalid, match="missing required column"):
        parse(text)
    parsed = parse(
        text.replace(";", ","),
        column_map={"Artikelnummer": "sku_code", "Bezeichnung": "product_name", "Preis": "price", "Bestand": "stock"},
    )
    [row] = parsed.rows
    assert (row.sku, row.product_name, row.price_minor, row.stock) == ("A-1", "Kaffeebecher", 1250, 7)
    with pytest.raises(CatalogImportInvalid, match="'colour' is not a catalog field"):
        parse(text, column_map={"Farbe": "colour"})


def test_shipping_and_tax_attributes_come_from_shopify_and_woocommerce_columns() -> None:
    shopify_rows = [dict(row) for row in SHOPIFY_ROWS]
    shopify_rows[1] |= {"Variant Requires Shipping": "false", "Variant Taxable": "false"}
    shopify = {row.sku: row for row in parse(export(SHOPIFY_HEADER, shopify_rows)).rows}
    tee = shopify["TEE-S-BLU"]
    assert (tee.requires_shipping, tee.tax_category, tee.weight_grams) == (True, None, 180)  # taxable: not given
    digital = shopify["TEE-M-BLU"]
    assert (digital.requires_shipping, digital.tax_category, digital.weight_grams) == (False, "zero", 190)
    assert shopify["MUG-350"].requires_shipping is None and shopify["MUG-350"].weight_grams is None  # blank: kept
    woo_rows = [dict(row) for row in WOO_ROWS]
    woo_rows[0] |= {"Weight (kg)": "0.125", "Tax class": "reduced-rate"}
    beanie = next(row for row in parse(export(WOO_HEADER, woo_rows)).rows if row.sku == "woo-beanie")
    assert (beanie.weight_grams, beanie.tax_category) == (125, "reduced")
    woo_rows[0] |= {"Tax status": "none"}
    beanie = next(row for row in parse(export(WOO_HEADER, woo_rows)).rows if row.sku == "woo-beanie")
    assert beanie.tax_category == "zero"
