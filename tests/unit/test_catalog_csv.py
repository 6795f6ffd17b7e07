"""CSV catalog parsing and validation: no database (file-level checks use an unopened one)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_checkout.domain import utc_now
from mcp_checkout.errors import CatalogImportInvalid
from mcp_checkout.service.catalog_csv import ParsedCatalog, parse_catalog_csv, resolve_rows
from mcp_checkout.service.catalog_import import CatalogImportService
from mcp_checkout.service.catalog_rules import (
    MAX_PRICE_MINOR,
    MAX_STOCK,
    RowProblem,
    checked_input,
    format_minor,
    minor_unit_exponent,
    parse_currency,
    parse_price,
    parse_stock,
)
from mcp_checkout.store.catalog_write import ExistingSku
from mcp_checkout.store.db import Database

HEADER = "product_name,sku_code,product_description,product_external_id,sku_name,unit_price,quantity_on_hand,category,currency"


def parse(text: str, **kwargs: object) -> ParsedCatalog:
    return parse_catalog_csv(text, default_currency="USD", **kwargs)  # type: ignore[arg-type]


def problems(parsed: ParsedCatalog) -> dict[int, str]:
    return {issue.line: issue.reason for issue in parsed.problems}


# ---------------------------------------------------------------- prices
@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("19.99", 1999),
        ("19.9", 1990),  # one decimal means tenths
        ("20", 2000),
        ("20.", None),  # a dangling point is not a price
        ("0.07", 7),
        ("0", 0),
        (" 19.99 ", 1999),
        ("+5.50", 550),
        ("007.10", 710),
        ("100000000.00", MAX_PRICE_MINOR),
    ],
)
def test_price_is_exact_integer_minor_units(text: str, minor: int | None) -> None:
    if minor is None:
        with pytest.raises(RowProblem):
            parse_price(text, "USD")
    else:
        assert parse_price(text, "USD") == minor


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1,000.00", "thousands separator; write 1000.00"),
        ("1 000.00", "thousands separator; write 1000.00"),
        ("19,99", "decimal comma; write 19.99"),
        ("-1", "negative"),
        ("-0.01", "negative"),
        ("abc", "not a price"),
        ("1e3", "exponent notation"),
        ("1.5E2", "exponent notation"),
        ("19.999", "3 decimal places; USD prices have at most 2"),
        ("$19.99", "currency sign or code"),
        ("19.99 USD", "currency sign or code"),
        ("", "empty"),
        ("1.2.3", "not a price"),
        ("١٢", "not a price"),  # Arabic-Indic digits are digits to Python's int(), not to us
        ("NaN", "not a price"),
        ("100000000.01", "above the limit of 100000000.00"),
    ],
)
def test_bad_prices_are_rejected_with_a_reason(text: str, fragment: str) -> None:
    with pytest.raises(RowProblem) as caught:
        parse_price(text, "USD")
    assert fragment in str(caught.value)
    assert str(caught.value).startswith("unit_price")


def test_price_follows_the_currency_minor_unit() -> None:
    assert parse_price("1500", "JPY") == 1500
    with pytest.raises(RowProblem, match="JPY has no minor unit"):
        parse_price("1500.50", "JPY")
    assert parse_price("1.234", "KWD") == 1234
    assert parse_price("1.2", "KWD") == 1200
    assert format_minor(1500, "JPY") == "1500" and format_minor(1234, "KWD") == "1.234"


@given(
    amount=st.integers(min_value=0, max_value=MAX_PRICE_MINOR), currency=st.sampled_from(["USD", "EUR", "JPY", "KWD"])
)
def test_price_round_trip(amount: int, currency: str) -> None:
    assert parse_price(format_minor(amount, currency), currency) == amount


@given(
    whole=st.integers(min_value=0, max_value=99_999_999),
    fraction=st.text(alphabet="0123456789", min_size=0, max_size=2),
)
def test_price_agrees_with_decimal_arithmetic(whole: int, fraction: str) -> None:
    text = f"{whole}.{fraction}" if fraction else str(whole)
    assert parse_price(text, "USD") == int(Decimal(text) * 100)


@given(value=st.floats(min_value=0, max_value=1e6, allow_nan=False).map(lambda f: f"{f:.3f}"))
def test_three_decimals_are_always_rejected_for_usd(value: str) -> None:
    with pytest.raises(RowProblem, match="decimal places"):
        parse_price(value, "USD")


# ---------------------------------------------------------------- stock and currency
@pytest.mark.parametrize(("text", "stock"), [("5", 5), ("0", 0), (" 12 ", 12), ("5.0", 5), ("1000000000", 10**9)])
def test_stock_parses(text: str, stock: int) -> None:
    assert parse_stock(text) == stock


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("-1", "negative"), ("2.5", "whole number"), ("abc", "whole number"), ("1e3", "whole number"),
     ("1000000001", "above the limit"), ("", "empty; write 0")],
)  # fmt: skip
def test_bad_stock_is_rejected(text: str, fragment: str) -> None:
    with pytest.raises(RowProblem, match=fragment):
        parse_stock(text)


def test_currency_codes() -> None:
    assert parse_currency("usd", "EUR") == "USD"
    assert parse_currency(" ", "EUR") == "EUR"
    for bad in ("XYZ", "US", "DOLLAR"):
        with pytest.raises(RowProblem, match="ISO 4217"):
            parse_currency(bad, "USD")


# ---------------------------------------------------------------- the header
def test_header_aliases_case_spaces_and_bom() -> None:
    text = (
        "\ufeff Product Name ,SKU_CODE,Product-Ref, price ,STOCK_QTY,Category\n"
        "Stoneware Mug,MUG-1,P-1,18.50,4,Kitchen\n"
    )
    parsed = parse(text)
    assert parsed.warnings == [] and parsed.problems == []
    [row] = parsed.rows
    assert (row.product_name, row.sku, row.external_id, row.price_minor, row.stock, row.category) == (
        "Stoneware Mug", "MUG-1", "P-1", 1850, 4, "Kitchen",
    )  # fmt: skip
    assert row.currency == "USD"  # the default
    assert row.description is None and row.sku_name is None  # absent columns, not empty ones


def test_unknown_columns_are_a_warning_not_an_error() -> None:
    parsed = parse("product_name,sku_code,unit_price,colour,weight_kg\nMug,M-1,5,red,0.3\n")
    assert len(parsed.rows) == 1 and parsed.problems == []
    [warning] = parsed.warnings
    assert warning.line == 1 and "'colour'" in warning.reason and "'weight_kg'" in warning.reason


@pytest.mark.parametrize(
    ("header", "missing"),
    [("sku_code,unit_price", "product_name"), ("product_name,price", "sku_code"),
     ("name,sku,price", "product_name and sku_code")],
)  # fmt: skip
def test_missing_required_column_is_named(header: str, missing: str) -> None:
    with pytest.raises(CatalogImportInvalid) as caught:
        parse(f"{header}\nx,y,1\n", source="cat.csv")
    assert f"missing required column {missing}" in caught.value.message
    assert caught.value.message.startswith("cat.csv:")


def test_two_aliases_of_one_column_are_rejected() -> None:
    with pytest.raises(CatalogImportInvalid, match="both 'unit_price' and 'price'"):
        parse("product_name,sku_code,unit_price,price\nMug,M,1,2\n")


def test_semicolon_files_from_european_excel_are_read() -> None:
    parsed = parse("product_name;sku_code;unit_price\nMug;M-1;4.20\n")
    assert [(row.sku, row.price_minor) for row in parsed.rows] == [("M-1", 420)]


def test_tab_separated_files_and_old_mac_line_endings() -> None:
    parsed = parse("product_name\tsku_code\tunit_price\rMug\tM-1\t1\rJar\tJ-1\tx\r")
    assert [row.sku for row in parsed.rows] == ["M-1"]
    assert problems(parsed) == {3: "unit_price 'x' is not a price; write it like 19.99"}


@pytest.mark.parametrize("text", ["", "   \n\n", "\ufeff"])
def test_empty_file_is_rejected(text: str) -> None:
    with pytest.raises(CatalogImportInvalid, match="empty"):
        parse(text)


def test_header_only_file_has_no_rows() -> None:
    parsed = parse(HEADER + "\n")
    assert parsed.rows_read == 0 and parsed.rows == [] and parsed.problems == []


# ---------------------------------------------------------------- rows and line numbers
def test_line_numbers_count_physical_lines_including_quoted_line_breaks() -> None:
    text = (
        HEADER + "\r\n"  # line 1
        'Mug,MUG-1,"Twelve ounces.\r\nDishwasher safe.\r\nMade in Portugal.",P-1,Blue,18.00,3,Kitchen,USD\r\n'  # 2-4
        "\r\n"  # 5: blank, skipped
        "Mug,MUG-2,,P-1,Red,18.999,3,Kitchen,USD\r\n"  # 6: bad price
        'Towel,TOWEL-1,"Linen, stonewashed",,,9.50,abc,Kitchen,EUR\r\n'  # 7: bad stock
        "Jar,JAR-1,,,,4.00,1,Kitchen,usd\r\n"  # 8: fine
    )
    parsed = parse(text)
    assert problems(parsed) == {
        6: "unit_price '18.999' has 3 decimal places; USD prices have at most 2",
        7: "quantity_on_hand 'abc' is not a whole number of units",
    }
    assert [(row.line, row.sku) for row in parsed.rows] == [(2, "MUG-1"), (8, "JAR-1")]
    assert parsed.rows[0].description == "Twelve ounces.\nDishwasher safe.\nMade in Portugal."
    assert parsed.rows_read == 4


def test_every_problem_of_a_row_is_reported_together() -> None:
    parsed = parse(HEADER + "\n,,,,,-3,-1,,XYZ\n")
    reason = problems(parsed)[2]
    for fragment in ("product_name is empty", "sku_code is empty", "quantity_on_hand '-1' is negative",
                     "currency 'XYZ' is not an ISO 4217"):  # fmt: skip
        assert fragment in reason


def test_duplicate_sku_is_an_error_on_the_later_line() -> None:
    text = HEADER + "\nMug,M-1,,,,1,1,,\nJar,J-1,,,,1,1,,\nMug again,M-1,,,,2,2,,\n"
    parsed = parse(text)
    assert problems(parsed) == {4: "sku_code 'M-1' already appears on line 2; each SKU may appear once"}
    assert [row.sku for row in parsed.rows] == ["M-1", "J-1"]


def test_bounds_on_every_text_field() -> None:
    rows = [
        f"Mug,{'S' * 65},,,,1,1,,",
        f"{'N' * 301},S-2,,,,1,1,,",
        f"Mug,S-3,{'d' * 5001},,,1,1,,",
        f"Mug,S-4,,{'e' * 129},,1,1,,",
        f"Mug,S-5,,,{'v' * 301},1,1,,",
        f"Mug,S-6,,,,1,1,{'c' * 121},",
        f"{'N' * 300},S-7,,,{'v' * 298},1,1,,",  # each fits, the title "name - variant" does not
        f"Mug,S-8,,,,1,1,{'c' * 120},",  # at the limit: fine
    ]
    parsed = parse(HEADER + "\n" + "\n".join(rows) + "\n")
    found = problems(parsed)
    assert "sku_code is 65 characters long; the limit is 64" in found[2]
    assert "product_name is 301 characters long; the limit is 300" in found[3]
    assert "product_description is 5,001 characters long; the limit is 5,000" in found[4]
    assert "product_external_id is 129 characters long" in found[5]
    assert "sku_name is 301 characters long" in found[6]
    assert "category is 121 characters long; the limit is 120" in found[7]
    assert "too long for a title (601 characters; the limit is 600)" in found[8]
    assert [row.sku for row in parsed.rows] == ["S-8"]


def test_control_characters_and_line_breaks_in_names_are_rejected() -> None:
    text = HEADER + '\n"Mug\nTwo",M-1,,,,1,1,,\nMug\x00,M-2,,,,1,1,,\nMug,M-3,"ok\ttabbed\nlines",,,1,1,,\n'
    parsed = parse(text)
    assert problems(parsed) == {
        2: "product_name contains a line break; remove it; the row runs from line 2 to 3: check for an unclosed quote",
        4: "product_name contains the control character U+0000; remove it",
    }
    assert parsed.rows[0].description == "ok\ttabbed\nlines"


def test_rows_with_the_wrong_number_of_values() -> None:
    text = (
        "product_name,sku_code,unit_price\n"
        "Mug,M-1,1,extra\n"  # unquoted comma
        "Mug,M-2\n"  # too few
        "Mug,M-3,1,,\n"  # trailing empty cells (Excel) are fine
        'Mug,M-4,"1\n'  # an unclosed quote swallows the rest of the file
        "Jar,J-1,2\n"
    )
    parsed = parse(text)
    found = problems(parsed)
    assert found[2] == "has 4 values but the header has 3 columns (a value with a comma must be in double quotes)"
    assert found[3] == "has 2 values but the header has 3 columns"
    assert "runs from line 5 to 6: check for an unclosed quote" in found[5]
    assert [row.sku for row in parsed.rows] == ["M-3"]


def test_row_limit() -> None:
    text = "product_name,sku_code,unit_price\n" + "".join(f"P,S-{n},1\n" for n in range(11))
    assert parse(text, max_rows=11).rows_read == 11
    with pytest.raises(CatalogImportInvalid, match="more than 10 rows"):
        parse(text, max_rows=10)


# ---------------------------------------------------------------- against stored SKUs (pure)
def stored(sku: str, *, reserved: int = 0, currency: str = "USD", **overrides: object) -> ExistingSku:
    values: dict[str, object] = {
        "id": 1, "sku": sku, "product_id": "prod_1", "name": "Blue", "title": "Mug - Blue", "category": "Kitchen",
        "search_text": "Old text.", "price_minor": 1800, "currency": currency, "stock_on_hand": 10,
        "reserved": reserved, "product_name": "Mug", "product_external_id": "P-1", "product_description": "Old text.",
        "product_category": "Kitchen",
    }  # fmt: skip
    values.update(overrides)
    return ExistingSku(**values)  # type: ignore[arg-type]


def test_product_text_given_on_one_row_is_shared_by_its_variants() -> None:
    text = HEADER + "\nTee,T-S,Soft organic cotton.,P-T,S,29,3,Apparel,\nTee,T-M,,P-T,M,29,3,,\nTee,T-L,,P-T,L,29,3,,\n"
    resolved = resolve_rows(parse(text), {})
    assert {(row.sku, row.description, row.category) for row in resolved.rows} == {
        ("T-S", "Soft organic cotton.", "Apparel"),
        ("T-M", "Soft organic cotton.", "Apparel"),
        ("T-L", "Soft organic cotton.", "Apparel"),
    }
    assert resolved.product_fields == {"name", "description", "category"}
    assert (resolved.created, resolved.updated) == (3, 0)


def test_stock_below_reserved_and_currency_change_are_row_errors() -> None:
    parsed = parse("product_name,sku_code,unit_price,quantity_on_hand\nMug,M-1,18,2\nMug,M-2,18,5\nJar,J-1,3,1\n")
    existing = {"M-1": stored("M-1", reserved=3), "M-2": stored("M-2", currency="EUR")}
    resolved = resolve_rows(parsed, existing)
    found = {issue.line: issue.reason for issue in resolved.problems}
    assert found[2].startswith("quantity_on_hand 2 is below the 3 unit(s) reserved by unpaid orders; set at least 3")
    assert "priced in EUR but the file has no currency column" in found[3]
    assert [row.sku for row in resolved.rows] == ["J-1"]


def test_absent_columns_keep_stored_values_and_new_skus_need_a_price() -> None:
    parsed = parse("product_name,sku_code,quantity_on_hand\nMug,M-1,7\nNew thing,N-1,3\n")
    resolved = resolve_rows(parsed, {"M-1": stored("M-1")})
    [row] = resolved.rows
    assert (row.price_minor, row.stock, row.description, row.sku_name, row.category, row.external_id) == (
        1800, 7, "Old text.", "Blue", "Kitchen", "P-1",
    )  # fmt: skip
    assert [(issue.line, issue.reason) for issue in resolved.problems] == [
        (3, "new SKU without a price: add a unit_price column")
    ]
    assert resolved.product_fields == {"name"}


# ---------------------------------------------------------------- reading files
@pytest.fixture
def importer(tmp_path: Path) -> CatalogImportService:
    # File-level problems are found before the database is touched.
    return CatalogImportService(Database(f"sqlite:///{tmp_path / 'unused.db'}"), utc_now, "USD", max_bytes=1_000)


async def test_non_utf8_file_is_rejected_with_the_line(importer: CatalogImportService, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("product_name,sku_code,unit_price\nMug,M-1,1\nCafé Crème,C-1,2\n".encode("latin-1"))
    with pytest.raises(CatalogImportInvalid) as caught:
        await importer.import_path(path)
    assert "not UTF-8 text (byte 0xE9 on line 3)" in caught.value.message
    assert "iconv -f WINDOWS-1252 -t UTF-8" in caught.value.message


async def test_utf16_file_is_rejected(importer: CatalogImportService, tmp_path: Path) -> None:
    path = tmp_path / "utf16.csv"
    path.write_bytes("product_name,sku_code\nMug,M\n".encode("utf-16"))
    with pytest.raises(CatalogImportInvalid, match="UTF-16"):
        await importer.import_path(path)


async def test_size_limit_and_missing_file(importer: CatalogImportService, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("product_name,sku_code\n" + "Mug,M\n" * 200)
    with pytest.raises(CatalogImportInvalid, match=r"the limit is 0 MB\. Split it"):
        await importer.import_path(path)
    with pytest.raises(CatalogImportInvalid, match="the limit is"):
        await importer.import_text(path.read_text())
    with pytest.raises(CatalogImportInvalid, match="no such file"):
        await importer.import_path(tmp_path / "nope.csv")
    with pytest.raises(CatalogImportInvalid, match="not a file"):
        await importer.import_path(tmp_path)


# ---------------------------------------------------------------- one rule set for CSV rows and upsert_product
def test_currency_exponents_and_codes_come_from_cldr() -> None:
    assert [minor_unit_exponent(code) for code in ("USD", "EUR", "JPY", "KRW", "KWD", "BHD")] == [2, 2, 0, 0, 3, 3]
    assert parse_currency("chf", "USD") == "CHF"
    for retired in ("DEM", "FRF", "XXX"):  # no longer (or never) legal tender anywhere
        with pytest.raises(RowProblem, match="ISO 4217"):
            parse_currency(retired, "USD")


def test_upsert_arguments_and_csv_rows_fail_the_same_rules() -> None:
    long_variant = "V" * 300
    parsed = parse(f"product_name,sku_code,sku_name,unit_price\n{'P' * 300},S-1,{long_variant},1\nMug,\tM-1,,1\n")
    csv_reasons = problems(parsed)
    with pytest.raises(RowProblem) as title:
        checked_input(
            product_name="P" * 300, sku="S-1", price_minor=100, currency=None, default_currency="USD",
            sku_name=long_variant,
        )  # fmt: skip
    assert str(title.value) == csv_reasons[2]
    row = checked_input(product_name=" Mug ", sku="M-1\t", price_minor=100, currency="eur", default_currency="USD")
    assert (row.product_name, row.sku, row.currency, row.stock, row.description) == ("Mug", "M-1", "EUR", None, None)
    with pytest.raises(RowProblem, match="description contains the control character U\\+0007"):
        checked_input(product_name="Mug", sku="M-2", price_minor=1, currency=None, default_currency="USD",
                      description="bell\x07")  # fmt: skip
    with pytest.raises(RowProblem, match="above the limit of 1,000,000,000"):
        checked_input(product_name="Mug", sku="M-2", price_minor=1, currency=None, default_currency="USD",
                      stock=MAX_STOCK + 1)  # fmt: skip


def test_shipping_and_tax_columns_are_read_with_their_aliases_and_checked() -> None:
    text = (
        "product_name,sku_code,unit_price,Shipping Required,Tax Class,Grams\n"
        "Mug,MUG-1,9.00,yes,Reduced,350\n"
        "E-book,BOOK-1,5.00,FALSE,zero,\n"
        "Gift card,GIFT-1,25.00,,,\n"
        "Bad,BAD-1,1.00,maybe,VAT 7%,-5\n"
    )
    parsed = parse(text)
    rows = {row.sku: row for row in parsed.rows}
    assert (rows["MUG-1"].requires_shipping, rows["MUG-1"].tax_category, rows["MUG-1"].weight_grams) == (
        True,
        "reduced",
        350,
    )
    assert (rows["BOOK-1"].requires_shipping, rows["BOOK-1"].tax_category, rows["BOOK-1"].weight_grams) == (
        False,
        "zero",
        None,
    )
    assert (rows["GIFT-1"].requires_shipping, rows["GIFT-1"].tax_category) == (None, None)  # blank: not given
    reason = problems(parsed)[5]
    assert "shipping_required 'maybe' is not yes or no" in reason  # named by the file's own column
    assert "tax_class 'VAT 7%' must be standard, reduced, zero" in reason and "grams '-5'" in reason
    resolved = resolve_rows(parsed, {})
    gift = next(row for row in resolved.rows if row.sku == "GIFT-1")
    assert (gift.requires_shipping, gift.tax_category, gift.weight_grams) == (True, "standard", None)  # new SKU
