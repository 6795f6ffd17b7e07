"""Merchant use cases: catalog import and edits, stock adjustments, the order list and sales figures.

Every method is for merchant principals only (``policy.require``; :class:`Forbidden` otherwise). Catalog writes obey
:mod:`catalog_rules`, the rules a CSV import row obeys too (absent fields keep stored values, stock
never below the units reserved by unpaid orders, product text shared between variants).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection

from mcp_checkout import domain
from mcp_checkout.domain import Clock, OrderStatus, Principal
from mcp_checkout.errors import (
    CatalogImportInvalid,
    Forbidden,
    InvalidCursor,
    InvalidInput,
    ProductNotFound,
    SkuNotFound,
)
from mcp_checkout.service import audit, catalog_rules, policy
from mcp_checkout.service.catalog import CatalogService
from mcp_checkout.service.catalog_import import CatalogImportService
from mcp_checkout.service.catalog_rules import RowProblem, SkuInput
from mcp_checkout.service.orders import OrderService
from mcp_checkout.service.progress import ProgressCallback
from mcp_checkout.service.store_profile import default_currency
from mcp_checkout.service.views import (
    CurrencySales,
    DeleteProductOut,
    ImportReport,
    InventoryOut,
    MoneyOut,
    OrderCounts,
    OrderPage,
    OrderSummary,
    ProductSalesOut,
    SalesSummary,
    UpsertProductOut,
)
from mcp_checkout.store import catalog_removal, catalog_write, inventory, reports
from mcp_checkout.store.db import Database
from mcp_checkout.store.reports import OrderFilter

log = logging.getLogger(__name__)

MAX_CSV_TEXT_CHARS: Final = 5_000_000
"""csv_text bound (characters) for import_catalog_csv; larger catalogs go through a file in the import directory."""
MAX_PAGE: Final = 100
TOP_PRODUCTS: Final = 5
DEFAULT_PERIOD: Final = timedelta(hours=24)
MAX_PERIOD: Final = timedelta(days=366)
_LISTED_FILES: Final = 20
_CURSOR_KIND: Final = "list_orders"


@dataclass(frozen=True)
class UpsertProduct:
    """One SKU as upsert_product receives it. ``None``: not given (an existing SKU keeps its value)."""

    product_name: str
    sku: str
    price_minor: int
    currency: str | None = None
    stock: int | None = None
    description: str | None = None
    category: str | None = None
    sku_name: str | None = None
    external_id: str | None = None
    image_url: str | None = None
    requires_shipping: bool | None = None
    tax_category: str | None = None
    weight_grams: int | None = None


def _attributes(source: Any) -> dict[str, Any]:
    """What the audit log keeps of a SKU's shipping and tax attributes and picture."""
    return {name: getattr(source, name) for name in ("requires_shipping", "tax_category", "weight_grams", "image_url")}


def _priced(price_minor: int | None, currency: str, stock_on_hand: int, title: str) -> dict[str, Any]:
    """What the audit log keeps of a SKU: price, stock and title."""
    return {"price_minor": price_minor, "currency": currency, "stock_on_hand": stock_on_hand, "title": title}


def signed_money(amount: int, currency: str) -> MoneyOut:
    """MoneyOut that may be negative (e.g. a day with more refunds than sales)."""
    return MoneyOut.minor(amount, currency)


# ---------------------------------------------------------------- import paths
def resolve_import_path(import_dir: Path, requested: str) -> Path:
    """The file ``requested`` names (relative to ``import_dir``, or absolute), after resolving
    ``..`` and symlinks; refused unless it lies inside ``import_dir``."""
    base = import_dir.resolve()
    if "\x00" in requested or not requested.strip():
        raise InvalidInput("path must name a CSV file in the import directory.", details={"import_dir": str(base)})
    candidate = Path(requested)
    resolved = (candidate if candidate.is_absolute() else base / candidate).resolve()
    if not resolved.is_relative_to(base):
        raise Forbidden(
            f"path {requested!r} is outside the import directory {base} (after resolving '..' and symlinks); "
            "the server reads catalog files only from there. Copy the file into that directory and pass its "
            "name, or pass the CSV content as csv_text.",
            details={"path": requested, "import_dir": str(base), "reason": "outside_import_dir"},
        )
    if not base.is_dir():
        raise InvalidInput(
            f"The import directory {base} does not exist yet. Create it, put the CSV file there and call "
            "import_catalog_csv again with its name, or pass the CSV content as csv_text.",
            details={"import_dir": str(base)},
        )
    if not resolved.is_file():
        listed = _csv_files(base)
        shown = ", ".join(listed) if listed else "none"
        raise InvalidInput(
            f"No file {requested!r} in the import directory {base}. CSV files there: {shown}. Pass one of "
            "those names as path, or the CSV content as csv_text.",
            details={"path": requested, "import_dir": str(base), "files": listed},
        )
    return resolved


def _csv_files(base: Path) -> list[str]:
    try:
        names = sorted(entry.name for entry in os.scandir(base) if entry.name.lower().endswith(".csv"))
    except OSError:
        return []
    return names[:_LISTED_FILES]


# ---------------------------------------------------------------- cursors
def _scope(filters: OrderFilter) -> str:
    shape = {
        "st": filters.status,
        "from": filters.created_from.isoformat() if filters.created_from else None,
        "to": filters.created_to.isoformat() if filters.created_to else None,
        "ref": filters.merchant_reference_id,
    }
    return domain.cursor_scope(shape)


def encode_order_cursor(created_at: datetime, seq: int, filters: OrderFilter) -> str:
    """An opaque keyset cursor: the last order's (created_at, seq) and the filters it belongs to."""
    moment = domain.utc_moment(created_at, "created_at")
    return domain.pack_cursor({"k": _CURSOR_KIND, "t": moment.isoformat(), "q": seq, "s": _scope(filters)})


def decode_order_cursor(cursor: str, filters: OrderFilter) -> tuple[datetime, int]:
    bad = InvalidCursor(
        "The cursor is not valid for these list_orders filters. Pass next_cursor back exactly as it was "
        "returned, with the same filters, or call list_orders without cursor to start over.",
        next_actions=["list_orders"],
    )
    data = domain.unpack_cursor(cursor, bad)
    if data.get("k") != _CURSOR_KIND or data.get("s") != _scope(filters):
        raise bad
    seq, moment = data.get("q"), data.get("t")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0 or not isinstance(moment, str):
        raise bad
    try:
        return domain.utc_moment(datetime.fromisoformat(moment), "cursor"), seq
    except (ValueError, InvalidInput):
        raise bad from None


# ---------------------------------------------------------------- the service
class MerchantService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        orders: OrderService,
        catalog: CatalogService,
        default_currency: str,
        import_dir: Path,
        progress_interval: float = 0.2,
    ) -> None:
        self._db = db
        self._clock = clock
        self._orders = orders
        self._catalog = catalog
        self._default_currency = default_currency
        self._import_dir = import_dir
        self._importer = CatalogImportService(db, clock, default_currency, progress_interval=progress_interval)

    # ------------------------------------------------------------ catalog
    async def import_csv(
        self,
        principal: Principal,
        *,
        csv_text: str | None = None,
        path: str | None = None,
        skip_invalid: bool = False,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        column_map: Mapping[str, str] | None = None,
    ) -> ImportReport:
        policy.require(principal, "import_catalog_csv")
        if (csv_text is None) == (path is None):
            raise InvalidInput(
                "Pass exactly one of csv_text (the CSV content, up to 5 MB) or path (a file in the server's "
                f"import directory {self._import_dir}).",
                details={"import_dir": str(self._import_dir)},
            )
        options: dict[str, Any] = {
            "skip_invalid": skip_invalid,
            "dry_run": dry_run,
            "progress": progress,
            "by": principal,
            "column_map": column_map,
        }
        if csv_text is not None:
            if len(csv_text) > MAX_CSV_TEXT_CHARS:
                raise CatalogImportInvalid(
                    f"csv_text is {len(csv_text):,} characters; the limit is {MAX_CSV_TEXT_CHARS:,}. Put the file "
                    f"in the import directory {self._import_dir} and pass path, or split it.",
                    details={"chars": len(csv_text), "max_chars": MAX_CSV_TEXT_CHARS},
                )
            report = await self._importer.import_text(csv_text, source="csv_text", **options)
        else:
            assert path is not None
            report = await self._importer.import_path(resolve_import_path(self._import_dir, path), **options)
        log.info(
            "catalog import by %s: %d rows, %d created, %d updated, %d skipped%s",
            principal.id, report.rows_read, report.created, report.updated, report.skipped,
            " (dry run)" if dry_run else "",
        )  # fmt: skip
        return report

    async def upsert_product(self, principal: Principal, cmd: UpsertProduct) -> UpsertProductOut:
        policy.require(principal, "upsert_product")
        row = self._checked_row(cmd)
        now = self._clock()

        given = {"product_name", "sku", "price"} | {
            name
            for name, value in (
                ("currency", cmd.currency),
                ("stock", cmd.stock),
                ("description", cmd.description),
                ("category", cmd.category),
                ("sku_name", cmd.sku_name),
                ("external_id", cmd.external_id),
            )
            if value is not None
        }

        def run(conn: Connection) -> tuple[bool, InventoryOut]:
            existing = catalog_write.existing_skus(conn, [row.sku], lock=True)
            old = existing.get(row.sku)
            if cmd.currency is None:  # an existing SKU keeps its currency; a new one takes the store's
                row.currency = old.currency if old is not None else default_currency(conn, self._default_currency)
            resolved = catalog_rules.resolve([row], existing, given, {"stock": "stock", "price": "price"})
            if resolved.problems:
                reason = resolved.problems[0].reason
                raise InvalidInput(
                    f"SKU {row.sku} was not saved: {reason}. Nothing was changed.",
                    details={
                        "sku": row.sku,
                        "reason": reason,
                        "reserved": old.reserved if old is not None else 0,
                        "stock_on_hand": old.stock_on_hand if old is not None else None,
                    },
                    next_actions=["list_orders", "upsert_product"],
                )
            catalog_write.upsert_catalog(
                conn, resolved.rows, now, existing=existing, product_fields=resolved.product_fields
            )
            stored = inventory.stock_of(conn, row.sku)
            assert stored is not None
            before = _priced(old.price_minor, old.currency, old.stock_on_hand, old.title) if old else None
            after = _priced(row.price_minor, row.currency, stored["stock_on_hand"], stored["title"])
            if before is not None and old is not None:
                before |= _attributes(old)
            after |= _attributes(resolved.rows[0])
            audit.record(conn, principal, "product.upsert", row.sku, before=before, after=after, at=now)
            return old is None, _inventory(stored, old.stock_on_hand if old is not None else None)

        created, stock = await self._db.write(run)
        product = await self._catalog.get_product(sku=row.sku)
        return UpsertProductOut(created=created, product=product, inventory=stock)

    def _checked_row(self, cmd: UpsertProduct) -> SkuInput:
        try:
            return catalog_rules.checked_input(
                product_name=cmd.product_name, sku=cmd.sku, price_minor=cmd.price_minor, currency=cmd.currency,
                default_currency=self._default_currency, stock=cmd.stock, description=cmd.description,
                category=cmd.category, sku_name=cmd.sku_name, external_id=cmd.external_id, image_url=cmd.image_url,
                requires_shipping=cmd.requires_shipping, tax_category=cmd.tax_category,
                weight_grams=cmd.weight_grams,
            )  # fmt: skip
        except RowProblem as exc:
            raise InvalidInput(f"{exc}. Fix it and call upsert_product again.", details={"sku": cmd.sku}) from None

    async def delete_product(
        self, principal: Principal, *, product_id: str | None = None, sku: str | None = None
    ) -> DeleteProductOut:
        """Remove one SKU, or every SKU of a product: deleted if never ordered, archived otherwise."""
        policy.require(principal, "delete_product")
        if (product_id is None) == (sku is None):
            raise InvalidInput(
                "Pass exactly one of sku (one variant) or product_id (the product with all its variants).",
                next_actions=["search_catalog"],
            )
        now = self._clock()

        def run(conn: Connection) -> catalog_removal.Removal:
            if sku is not None:
                codes = [sku] if catalog_write.existing_skus(conn, [sku], lock=True) else []
            else:
                codes = catalog_removal.sku_codes_of_product(conn, product_id or "")
            if not codes:
                raise (
                    SkuNotFound(
                        f"No SKU {sku!r} in the catalog. Find SKUs with search_catalog.",
                        details={"sku": sku},
                        next_actions=["search_catalog"],
                    )
                    if sku is not None
                    else ProductNotFound(
                        f"No product {product_id!r}. Find products with search_catalog.",
                        details={"product_id": product_id},
                        next_actions=["search_catalog"],
                    )
                )
            removal = catalog_removal.remove_skus(conn, codes, now)
            after = {
                "deleted": removal.deleted,
                "archived": removal.archived,
                "products_deleted": removal.products_deleted,
            }
            audit.record(conn, principal, "product.delete", sku or product_id or "", after=after, at=now)
            return removal

        removal = await self._db.write(run)
        log.info(
            "catalog removal by %s: %d SKU(s) deleted, %d archived, %d product(s) deleted",
            principal.id, len(removal.deleted), len(removal.archived), len(removal.products_deleted),
        )  # fmt: skip
        return DeleteProductOut(
            deleted=removal.deleted, archived=removal.archived, products_deleted=removal.products_deleted
        )

    # ------------------------------------------------------------ stock
    async def adjust_inventory(
        self,
        principal: Principal,
        sku: str,
        *,
        set_to: int | None = None,
        delta: int | None = None,
        reason: str | None = None,
    ) -> InventoryOut:
        policy.require(principal, "adjust_inventory")
        if (set_to is None) == (delta is None):
            raise InvalidInput(
                "Pass exactly one of set_to (the new stock on hand, e.g. after a count) or delta (units to add, "
                "or remove with a negative number, e.g. a delivery of 12 is delta=12).",
                details={"sku": sku},
            )
        now = self._clock()

        def run(conn: Connection) -> InventoryOut:
            before = inventory.stock_of(conn, sku, lock=True)
            if before is None:
                raise SkuNotFound(
                    f"No SKU {sku!r} in the catalog. Check the code with search_catalog, or create it with "
                    "upsert_product.",
                    details={"sku": sku},
                    next_actions=["search_catalog", "upsert_product"],
                )
            after = inventory.set_stock(
                conn, sku, set_to=set_to, delta=delta, max_stock=catalog_rules.MAX_STOCK, now=now
            )
            if after is None:
                raise _refused_adjustment(before, set_to, delta)
            change = {"stock_on_hand": after["stock_on_hand"], "reason": reason}
            was = {"stock_on_hand": before["stock_on_hand"]}
            audit.record(conn, principal, "inventory.adjust", sku, before=was, after=change, at=now)
            return _inventory(after, before["stock_on_hand"])

        result = await self._db.write(run)
        log.info(
            "stock of %s set %d -> %d by %s (%s)",
            sku, result.previous_stock_on_hand, result.stock_on_hand, principal.id, (reason or "no reason")[:200],
        )  # fmt: skip
        return result

    # ------------------------------------------------------------ orders
    async def list_orders(
        self,
        principal: Principal,
        *,
        status: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        merchant_reference_id: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> OrderPage:
        """Orders latest first; ``created_from`` inclusive, ``created_to`` exclusive (naive = UTC)."""
        policy.require(principal, "list_orders")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be 1 to {MAX_PAGE}; got {limit}.")
        if status is not None and status not in {state.value for state in OrderStatus}:
            raise InvalidInput(f"status must be one of {', '.join(state.value for state in OrderStatus)}.")
        filters = OrderFilter(
            status=status,
            created_from=domain.utc_moment(created_from, "created_from") if created_from else None,
            created_to=domain.utc_moment(created_to, "created_to") if created_to else None,
            merchant_reference_id=merchant_reference_id,
        )
        if filters.created_from and filters.created_to and filters.created_from >= filters.created_to:
            raise InvalidInput(
                "created_from must be before created_to (created_from is inclusive, created_to exclusive).",
                details={
                    "created_from": filters.created_from.isoformat(),
                    "created_to": filters.created_to.isoformat(),
                },
            )
        after = decode_order_cursor(cursor, filters) if cursor else None

        def run(conn: Connection) -> list[Any]:
            return list(reports.order_page(conn, filters, after=after, limit=limit + 1))

        rows = await self._db.read(run)
        now = self._clock()
        if any(row["status"] == OrderStatus.PENDING_PAYMENT.value and row["expires_at"] <= now for row in rows):
            await self._orders.expire_due()  # show expired as expired, not as still payable
            rows = await self._db.read(run)
        page = rows[:limit]
        next_cursor = (
            encode_order_cursor(page[-1]["created_at"], page[-1]["seq"], filters) if len(rows) > limit else None
        )
        return OrderPage(orders=[_summary(row) for row in page], next_cursor=next_cursor)

    async def sales_summary(
        self, principal: Principal, period_start: datetime | None = None, period_end: datetime | None = None
    ) -> SalesSummary:
        policy.require(principal, "sales_summary")
        end = domain.utc_moment(period_end, "period_end") if period_end else None
        start = domain.utc_moment(period_start, "period_start") if period_start else None
        if end is None:
            end = self._clock()
        if start is None:
            start = end - DEFAULT_PERIOD
        if start >= end:
            raise InvalidInput(
                "period_start must be before period_end (start inclusive, end exclusive, UTC).",
                details={"period_start": start.isoformat(), "period_end": end.isoformat()},
            )
        if end - start > MAX_PERIOD:
            raise InvalidInput(
                f"The period is {(end - start).days} days; sales_summary covers at most {MAX_PERIOD.days} days. "
                "Ask for one year or less at a time.",
                details={"period_start": start.isoformat(), "period_end": end.isoformat()},
            )
        period_start_, period_end_ = start, end

        def run(conn: Connection) -> SalesSummary:
            return _summarise(conn, period_start_, period_end_)

        return await self._db.read(run)


def _inventory(row: Any, previous: int | None) -> InventoryOut:
    return InventoryOut(
        sku=row["sku"],
        title=row["title"],
        stock_on_hand=row["stock_on_hand"],
        reserved=row["reserved"],
        available=domain.available_units(row["stock_on_hand"], row["reserved"]),
        previous_stock_on_hand=previous,
    )


def _refused_adjustment(before: Any, set_to: int | None, delta: int | None) -> InvalidInput:
    on_hand, reserved = before["stock_on_hand"], before["reserved"]
    wanted = set_to if set_to is not None else on_hand + (delta or 0)
    details = {
        "sku": before["sku"],
        "stock_on_hand": on_hand,
        "reserved": reserved,
        "requested_stock_on_hand": wanted,
    }
    if wanted > catalog_rules.MAX_STOCK:
        return InvalidInput(
            f"Stock on hand of SKU {before['sku']} would be {wanted:,}; the limit is {catalog_rules.MAX_STOCK:,}.",
            details=details,
        )
    lowest_delta = reserved - on_hand
    return InvalidInput(
        f"Stock on hand of SKU {before['sku']} would be {wanted}, below the {reserved} unit(s) reserved by unpaid "
        f"orders (now {on_hand} on hand). Set at least {reserved} (set_to={reserved}, or delta={lowest_delta}), or "
        "wait until those orders are paid, canceled or expired (see list_orders status=pending_payment). Nothing "
        "was changed.",
        details=details,
        next_actions=["list_orders", "adjust_inventory"],
    )


def _summary(row: Any) -> OrderSummary:
    pending = row["status"] == OrderStatus.PENDING_PAYMENT.value
    return OrderSummary(
        order_id=row["id"],
        number=row["number"],
        status=row["status"],
        total=MoneyOut.minor(row["total_minor"], row["currency"]),
        item_count=int(row["item_count"]),
        merchant_reference_id=row["reference"],
        created_at=row["created_at"],
        expires_at=row["expires_at"] if pending else None,
    )


def _summarise(conn: Connection, start: datetime, end: datetime) -> SalesSummary:
    counts = reports.status_counts(conn, start, end)
    paid = {total.currency: total for total in reports.paid_totals(conn, start, end)}
    refunded = {total.currency: total for total in reports.refund_totals(conn, start, end)}
    by_units = reports.top_products(conn, start, end, by="units", limit=TOP_PRODUCTS)
    by_revenue = reports.top_products(conn, start, end, by="revenue", limit=TOP_PRODUCTS)

    def top(rows: list[reports.ProductSales], currency: str) -> list[ProductSalesOut]:
        return [
            ProductSalesOut(
                sku=row.sku, title=row.title, units=row.units, revenue=MoneyOut.minor(row.revenue_minor, currency)
            )
            for row in rows
            if row.currency == currency
        ]

    sales: list[CurrencySales] = []
    for currency in sorted(set(paid) | set(refunded)):
        gross = paid[currency].amount_minor if currency in paid else 0
        back = refunded[currency].amount_minor if currency in refunded else 0
        sales.append(
            CurrencySales(
                currency=currency,
                paid_orders=paid[currency].count if currency in paid else 0,
                revenue=MoneyOut.minor(gross, currency),
                refunds=refunded[currency].count if currency in refunded else 0,
                refunded=MoneyOut.minor(back, currency),
                net=signed_money(gross - back, currency),
                top_by_units=top(by_units, currency),
                top_by_revenue=top(by_revenue, currency),
            )
        )
    statuses = {status.value: counts.get(status.value, 0) for status in OrderStatus}
    return SalesSummary(
        period_start=start,
        period_end=end,
        orders_created=OrderCounts(total=sum(counts.values()), **statuses),
        sales=sales,
    )
