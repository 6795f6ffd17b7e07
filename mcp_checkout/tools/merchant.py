"""Merchant tools: catalog import and edits, stock, the order list and sales figures (merchant principals only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import BeforeValidator, Field

from mcp_checkout.service import catalog_rules
from mcp_checkout.service.golive import ReadinessReport, go_live_report
from mcp_checkout.service.merchant import MAX_CSV_TEXT_CHARS, UpsertProduct
from mcp_checkout.service.views import (
    DeleteProductOut,
    ImportReport,
    InventoryOut,
    OrderPage,
    SalesSummary,
    UpsertProductOut,
)
from mcp_checkout.tools.annotations import OVERWRITES, READ_ONLY
from mcp_checkout.tools.context import principal, services
from mcp_checkout.tools.types import Currency, Cursor, Flag, MerchantReference, PageSize, ProductId, Reason, Sku

# Moves stock by a delta: a retry moves it again, so not idempotent (set_to is, but the hint is per tool).
ADJUSTS = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)

_MAX_TIMESTAMP_CHARS = 40


def _short_timestamp(value: object) -> object:
    if isinstance(value, str) and len(value) > _MAX_TIMESTAMP_CHARS:
        raise ValueError(f"at most {_MAX_TIMESTAMP_CHARS} characters, e.g. 2026-05-01T00:00:00Z")
    return value


CsvText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_CSV_TEXT_CHARS,
        description="The CSV content itself, header row first (at most 5,000,000 characters).",
    ),
]
ImportPath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1024,
        description="A CSV file in the server's import directory: its name (relative to that directory) or its "
        "absolute path there. Files elsewhere are refused.",
    ),
]
ColumnMap = Annotated[
    dict[Annotated[str, Field(max_length=200)], Annotated[str, Field(max_length=40)]],
    Field(max_length=30, description="Header of your file → catalog field (product_name, sku_code, unit_price, …)."),
]
ProductName = Annotated[str, Field(min_length=1, max_length=catalog_rules.MAX_NAME)]
SkuCode = Annotated[
    str,
    Field(min_length=1, max_length=catalog_rules.MAX_SKU, description="The SKU code; it identifies the variant."),
]
PriceMinor = Annotated[
    int,
    Field(
        strict=True,
        ge=0,
        le=catalog_rules.MAX_PRICE_MINOR,
        description="Unit price in integer minor units (cents): 1999 means 19.99.",
    ),
]
StockLevel = Annotated[
    int, Field(strict=True, ge=0, le=catalog_rules.MAX_STOCK, description="Units on hand, 0 to 1,000,000,000.")
]
StockDelta = Annotated[
    int,
    Field(
        strict=True,
        ge=-catalog_rules.MAX_STOCK,
        le=catalog_rules.MAX_STOCK,
        description="Units to add (positive) or remove (negative), e.g. 12 for a delivery of 12.",
    ),
]
Description = Annotated[str, Field(max_length=catalog_rules.MAX_DESCRIPTION)]
CategoryName = Annotated[str, Field(max_length=catalog_rules.MAX_CATEGORY)]
VariantName = Annotated[
    str, Field(max_length=catalog_rules.MAX_NAME, description="Variant name, e.g. 'Large / Blue'; empty for none.")
]
ExternalId = Annotated[
    str,
    Field(
        max_length=catalog_rules.MAX_EXTERNAL_ID,
        description="Your own product id; SKUs with the same external_id are variants of one product.",
    ),
]
Timestamp = Annotated[
    datetime,
    BeforeValidator(_short_timestamp),
    Field(
        json_schema_extra={"maxLength": _MAX_TIMESTAMP_CHARS},
        description="ISO 8601, e.g. 2026-05-01T00:00:00Z or 2026-05-01 (no zone: UTC).",
    ),
]
OrderStatusName = Literal[
    "pending_payment", "paid", "partially_fulfilled", "fulfilled", "canceled", "expired", "refunded"
]


def register(server: MCPServer[Any]) -> None:
    @server.tool(title="Import the catalog from CSV (merchant)", annotations=OVERWRITES)
    async def import_catalog_csv(
        ctx: Context[Any],
        csv_text: CsvText | None = None,
        path: ImportPath | None = None,
        skip_invalid: Flag = False,
        dry_run: Flag = False,
        column_map: ColumnMap | None = None,
    ) -> ImportReport:
        """Create or update many products and SKUs at once from a CSV file. Merchant only.

        Pass exactly one of csv_text (the CSV content) or path (a file in the server's import
        directory; other locations are refused with `forbidden`). Header: product_name,sku_code and
        optionally product_description, product_external_id, sku_name, unit_price (decimal, e.g. 19.99),
        quantity_on_hand, category, currency, image_url. Shopify and WooCommerce product exports are
        imported as they are (recognised by their header). column_map maps other headers to those
        fields, e.g. {"Artikelnummer": "sku_code"}. The SKU code is the identity: an existing SKU is updated,
        a new one created; absent columns keep stored values. Importing the same file again changes
        nothing. Use dry_run=true first to see what would change. All rows or none are written: with
        problems the call fails with `catalog_import_invalid` listing the lines, unless skip_invalid=true
        (then valid rows are written and the report lists the skipped ones). Large files send progress
        notifications. Returns rows_read, created, updated, skipped and problems (line, sku, reason).
        """

        async def progress(done: int, total: int) -> None:
            await ctx.report_progress(done, total)

        return await services(ctx).merchant.import_csv(
            principal(ctx), csv_text=csv_text, path=path, skip_invalid=skip_invalid, dry_run=dry_run,
            progress=progress, column_map=column_map,
        )  # fmt: skip

    @server.tool(title="Create or update one product SKU (merchant)", annotations=OVERWRITES)
    async def upsert_product(
        ctx: Context[Any],
        product_name: ProductName,
        sku: SkuCode,
        price: PriceMinor,
        currency: Currency | None = None,
        stock: StockLevel | None = None,
        description: Description | None = None,
        category: CategoryName | None = None,
        sku_name: VariantName | None = None,
        external_id: ExternalId | None = None,
    ) -> UpsertProductOut:
        """Create a SKU, or update it if the SKU code exists, with the same rules as one CSV import row. Merchant only.

        price is in integer minor units (1999 = 19.99) of currency (default: the SKU's current currency,
        or the store's default for a new SKU). Arguments you leave out keep their stored values on an
        existing SKU (stock of a new SKU: 0). stock sets units on hand absolutely; to add or remove
        units use adjust_inventory. Safe to retry: the same arguments give the same result.
        Variants: SKUs with the same external_id (or, without one, the same product_name) are one product.
        Returns `created`, the product with all its variants, and the SKU's stock/reserved/available.
        Errors: `invalid_input` when stock is below the units reserved by unpaid orders (the message says
        how many) or a value is unusable (the message says which).
        """
        command = UpsertProduct(
            product_name=product_name, sku=sku, price_minor=price, currency=currency, stock=stock,
            description=description, category=category, sku_name=sku_name, external_id=external_id,
        )  # fmt: skip
        return await services(ctx).merchant.upsert_product(principal(ctx), command)

    @server.tool(title="Delete a product or one of its SKUs (merchant)", annotations=OVERWRITES)
    async def delete_product(
        ctx: Context[Any], product_id: ProductId | None = None, sku: Sku | None = None
    ) -> DeleteProductOut:
        """Take a product (all its variants) or one SKU out of the catalog. Merchant only.

        Pass exactly one of product_id or sku. SKUs that were never ordered are deleted; SKUs that
        orders reference are archived: no longer found by search or get_product and no longer
        sellable, kept for those orders (upsert_product with the same SKU code lists one again).
        Open carts lose the removed SKUs. Safe to retry. Returns deleted, archived and
        products_deleted. Errors: `sku_not_found`, `product_not_found`.
        """
        return await services(ctx).merchant.delete_product(principal(ctx), product_id=product_id, sku=sku)

    @server.tool(title="Adjust stock of a SKU (merchant)", annotations=ADJUSTS)
    async def adjust_inventory(
        ctx: Context[Any],
        sku: SkuCode,
        set_to: StockLevel | None = None,
        delta: StockDelta | None = None,
        reason: Reason | None = None,
    ) -> InventoryOut:
        """Change a SKU's stock on hand: set_to an absolute count (e.g. after a stocktake; safe to retry)
        or delta units (+12 for a delivery, -2 for breakage; NOT safe to blindly retry: each call moves
        stock again, so check the returned stock_on_hand first). Pass exactly one. Merchant only.

        Stock never goes below the units reserved by unpaid orders. Returns stock_on_hand, reserved,
        available and previous_stock_on_hand. Errors: `invalid_input` if the result would be below the
        reserved units (the message says how many are reserved) or above 1,000,000,000;
        `sku_not_found` (create it with upsert_product).
        """
        return await services(ctx).merchant.adjust_inventory(
            principal(ctx), sku, set_to=set_to, delta=delta, reason=reason
        )

    @server.tool(title="List orders (merchant)", annotations=READ_ONLY)
    async def list_orders(
        ctx: Context[Any],
        status: OrderStatusName | None = None,
        created_from: Timestamp | None = None,
        created_to: Timestamp | None = None,
        merchant_reference_id: MerchantReference | None = None,
        limit: PageSize = 20,
        cursor: Cursor | None = None,
    ) -> OrderPage:
        """List orders, latest first, optionally filtered by status, creation time and reference. Merchant only.

        created_from is inclusive, created_to exclusive (ISO 8601; no zone means UTC).
        merchant_reference_id matches the order's reference or one of its checkout links'.
        Each item has order_id, number, status, total, item_count, reference, created_at and expires_at
        (unpaid orders). For details of one order call get_order. When next_cursor is not null, call
        again with the SAME filters plus cursor=next_cursor for the next page.
        Errors: `invalid_cursor` (filters changed: start again without cursor), `invalid_input`.
        """
        return await services(ctx).merchant.list_orders(
            principal(ctx), status=status, created_from=created_from, created_to=created_to,
            merchant_reference_id=merchant_reference_id, limit=limit, cursor=cursor,
        )  # fmt: skip

    @server.tool(title="Sales summary (merchant)", annotations=READ_ONLY)
    async def sales_summary(
        ctx: Context[Any], period_start: Timestamp | None = None, period_end: Timestamp | None = None
    ) -> SalesSummary:
        """Sales figures for a period: orders by status, paid revenue, refunds and top products. Merchant only.

        Default period: the last 24 hours; with only period_start, from then until now. Start is
        inclusive, end exclusive, at most 366 days (ISO 8601; no zone means UTC).
        orders_created counts orders created in the period by their status now. Per currency: revenue
        of orders paid in the period, refunds made in the period, net = revenue - refunded, and the top 5
        SKUs by units and by revenue among the orders paid in the period. Amounts are integer minor
        units with a display string.
        """
        return await services(ctx).merchant.sales_summary(principal(ctx), period_start, period_end)

    @server.tool(title="Go-live readiness check (merchant)", annotations=READ_ONLY)
    async def readiness_check(ctx: Context[Any]) -> ReadinessReport:
        """Check whether this store is ready to sell: the go-live checklist. Merchant only; read-only.

        Call it when the merchant asks "can I go live?", after changing settings, or when orders or
        payments behave oddly. Checks: database reachable and migrated, catalog non-empty with stock,
        payment mode (offline / stripe_test / stripe_live) and Stripe key shapes (test and live keys
        must not be mixed), Stripe webhook secret, https public base URL, and the share of outbound
        webhook deliveries that succeeded in the last 24 hours. Returns ready (nothing failed
        in the current mode), mode, ready_for_live, checks (name, status ok|warn|fail, detail saying
        exactly what to set or run) and live_missing (each environment variable live payments still
        need). Secret values are never shown, only their kind (e.g. sk_test_…). Settings are changed
        by the merchant in the server's environment or Claude Desktop's extension settings, not by a tool.
        """
        return await go_live_report(services(ctx), principal(ctx))
