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
        description="The CSV itself, header row first.",
    ),
]
ImportPath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1024,
        description="A file in the server's import directory (name or absolute path); others are refused.",
    ),
]
ColumnMap = Annotated[
    dict[Annotated[str, Field(max_length=200)], Annotated[str, Field(max_length=40)]],
    Field(max_length=30, description='Your header → a column above, e.g. {"Item": "sku_code"}.'),
]
ProductName = Annotated[str, Field(min_length=1, max_length=catalog_rules.MAX_NAME)]
SkuCode = Annotated[
    str,
    Field(min_length=1, max_length=catalog_rules.MAX_SKU, description="Identifies the variant."),
]
PriceMinor = Annotated[
    int,
    Field(
        strict=True,
        ge=0,
        le=catalog_rules.MAX_PRICE_MINOR,
        description="Minor units: 1999 = 19.99.",
    ),
]
StockLevel = Annotated[int, Field(strict=True, ge=0, le=catalog_rules.MAX_STOCK, description="Units on hand.")]
StockDelta = Annotated[
    int,
    Field(
        strict=True,
        ge=-catalog_rules.MAX_STOCK,
        le=catalog_rules.MAX_STOCK,
        description="Units to add (12) or remove (-2).",
    ),
]
Description = Annotated[str, Field(max_length=catalog_rules.MAX_DESCRIPTION)]
CategoryName = Annotated[str, Field(max_length=catalog_rules.MAX_CATEGORY)]
VariantName = Annotated[
    str, Field(max_length=catalog_rules.MAX_NAME, description="e.g. 'Large / Blue'; empty for none.")
]
ExternalId = Annotated[
    str,
    Field(
        max_length=catalog_rules.MAX_EXTERNAL_ID,
        description="Your own product id.",
    ),
]
ImageUrl = Annotated[str, Field(max_length=catalog_rules.MAX_IMAGE_URL, description='"" removes it.')]
TaxCategory = Annotated[str, Field(max_length=40, description="standard (new SKUs), reduced, zero or your own.")]
WeightGrams = Annotated[int, Field(strict=True, ge=0, le=catalog_rules.MAX_WEIGHT_GRAMS)]
Timestamp = Annotated[
    datetime,
    BeforeValidator(_short_timestamp),
    Field(
        json_schema_extra={"maxLength": _MAX_TIMESTAMP_CHARS},
        description="e.g. 2026-05-01 (UTC)",
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
        """Create or update products and SKUs from a CSV (csv_text or path); returns counts and problems.

        Columns: product_name, sku_code; optional product_description, product_external_id, sku_name,
        unit_price (19.99), quantity_on_hand, category, currency, image_url, requires_shipping, tax_category,
        weight_grams; Shopify and WooCommerce exports as they are. Absent columns keep stored values. Try
        dry_run=true first. All rows or none (`catalog_import_invalid` lists bad lines) unless skip_invalid.
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
        image_url: ImageUrl | None = None,
        requires_shipping: Flag | None = None,
        tax_category: TaxCategory | None = None,
        weight_grams: WeightGrams | None = None,
    ) -> UpsertProductOut:
        """Create or update one SKU by its code; safe to retry. Left-out arguments keep stored values (new
        SKU: stock 0); stock is absolute (adjust_inventory adds). Same external_id (else product_name): one
        product's variants. `invalid_input` says which value is unusable.
        """
        command = UpsertProduct(
            product_name=product_name, sku=sku, price_minor=price, currency=currency, stock=stock,
            description=description, category=category, sku_name=sku_name, external_id=external_id,
            image_url=image_url, requires_shipping=requires_shipping, tax_category=tax_category,
            weight_grams=weight_grams,
        )  # fmt: skip
        return await services(ctx).merchant.upsert_product(principal(ctx), command)

    @server.tool(title="Delete a product or one of its SKUs (merchant)", annotations=OVERWRITES)
    async def delete_product(
        ctx: Context[Any], product_id: ProductId | None = None, sku: Sku | None = None
    ) -> DeleteProductOut:
        """Take a product (product_id) or one SKU (sku) out of the catalog; safe to retry.

        Never-ordered SKUs are deleted, ordered ones archived (unsellable; upsert_product lists one again).
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
        """Change a SKU's stock: set_to a count (safe to retry) or by delta (moves again on every call: check
        stock_on_hand before retrying). Never below what unpaid orders reserve (`invalid_input` says how many).
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
        """Orders, latest first, by status, creation time (created_to exclusive) or reference; get_order for
        details. Next page: same filters, cursor=next_cursor.
        """
        return await services(ctx).merchant.list_orders(
            principal(ctx), status=status, created_from=created_from, created_to=created_to,
            merchant_reference_id=merchant_reference_id, limit=limit, cursor=cursor,
        )  # fmt: skip

    @server.tool(title="Sales summary (merchant)", annotations=READ_ONLY)
    async def sales_summary(
        ctx: Context[Any], period_start: Timestamp | None = None, period_end: Timestamp | None = None
    ) -> SalesSummary:
        """Sales for a period (default: last 24 hours; at most 366 days; end exclusive): orders by status;
        per currency revenue, refunds, net and top 5 SKUs.
        """
        return await services(ctx).merchant.sales_summary(principal(ctx), period_start, period_end)

    @server.tool(title="Go-live readiness check (merchant)", annotations=READ_ONLY)
    async def readiness_check(ctx: Context[Any]) -> ReadinessReport:
        """Is the store ready to sell? Use it when asked "can I go live?" or when orders or payments behave
        oddly. Each check says which server setting to change or what to run; live_missing: what live
        payments still need.
        """
        return await go_live_report(services(ctx), principal(ctx))
