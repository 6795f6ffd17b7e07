"""The store's schema and contents: ``migrate``, ``import-catalog``, ``seed-demo``, ``reset``, ``delete-product``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio

from mcp_checkout.cli.base import Commands, Context, add_command, describe_database


def _mapping(text: str) -> tuple[str, str]:
    import argparse

    column, equals, field = text.partition("=")
    if not equals or not column.strip() or not field.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: write COLUMN=field, e.g. Artikelnummer=sku_code")
    return column.strip(), field.strip()


def _migrate(context: Context) -> int:
    from mcp_checkout.service.container import open_database
    from mcp_checkout.store import migrate

    settings = context.settings

    async def run() -> str | None:
        db = open_database(settings)
        try:
            await migrate.upgrade(db)
            return await migrate.current_revision(db)
        finally:
            await db.dispose()

    revision = anyio.run(run)
    print(f"database at revision {revision}", file=sys.stderr)
    return 0


def _import_catalog(context: Context) -> int:
    import logging

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from mcp_checkout.domain import utc_now
    from mcp_checkout.errors import CheckoutError
    from mcp_checkout.service.catalog_import import CatalogImportService
    from mcp_checkout.service.container import open_database
    from mcp_checkout.service.views import ImportIssue, ImportReport
    from mcp_checkout.store import migrate

    args = context.args
    settings = context.settings
    path: Path = args.path
    max_listed = 50
    # A large import is one long write transaction by design; the store's "slow write" warning is noise here.
    logging.getLogger("mcp_checkout.store.db").setLevel(logging.ERROR)
    try:
        large = path.stat().st_size >= 512 * 1024
    except OSError:
        large = False  # the service reports a missing or unreadable file
    show_bar = large and sys.stderr.isatty()

    async def run() -> ImportReport:
        db = open_database(settings)
        try:
            await migrate.upgrade(db)
            service = CatalogImportService(db, utc_now, settings.default_currency)
            options: dict[str, Any] = {
                "skip_invalid": args.skip_invalid,
                "dry_run": args.dry_run,
                "column_map": dict(args.map or []),
            }
            if not show_bar:
                return await service.import_path(path, **options)
            columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
            with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task(f"{'checking' if args.dry_run else 'importing'} {path.name}", total=None)

                async def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                return await service.import_path(path, progress=progress, **options)
        finally:
            await db.dispose()

    def show(problems: list[ImportIssue], total: int) -> None:
        for issue in problems[:max_listed]:
            where = f"line {issue.line}" + (f" (SKU {issue.sku})" if issue.sku else "")
            print(f"  {where}: {issue.reason}", file=sys.stderr)
        shown = min(len(problems), max_listed)
        if total > shown:
            print(f"  ... and {total - shown:,} more", file=sys.stderr)

    try:
        report = anyio.run(run)
    except CheckoutError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        listed = [ImportIssue(**issue) for issue in exc.details.get("warnings", []) + exc.details.get("problems", [])]
        if listed:
            total = len(exc.details.get("warnings", [])) + int(exc.details.get("invalid_rows", 0))
            print("Problems:", file=sys.stderr)
            show(listed, total)
        return 1

    verb = "Checked (dry run, nothing was changed)" if report.dry_run else "Imported"
    would = "would be " if report.dry_run else ""
    print(
        f"{verb} {path.name}: {report.rows_read:,} rows read; {report.created:,} SKUs {would}created, "
        f"{report.updated:,} {would}updated, {report.skipped:,} invalid rows {would}skipped.",
        file=sys.stderr,
    )
    if report.problems:
        row_problems = sum(1 for issue in report.problems if not issue.reason.startswith("warning:"))
        print("Problems:", file=sys.stderr)
        show(report.problems, len(report.problems) - row_problems + report.skipped)
    return 0


def _seed_demo(context: Context) -> int:
    from mcp_checkout.domain import utc_now
    from mcp_checkout.service.container import open_database
    from mcp_checkout.store import migrate
    from mcp_checkout.store.catalog_write import UpsertCounts
    from mcp_checkout.store.demo_catalog import DEMO_ROWS, seed_demo_catalog

    settings = context.settings

    async def run() -> UpsertCounts:
        db = open_database(settings)
        try:
            await migrate.upgrade(db)
            return await seed_demo_catalog(db, utc_now())
        finally:
            await db.dispose()

    counts = anyio.run(run)
    products = len({row.product_key for row in DEMO_ROWS})
    print(
        f"Demo catalog ready: {products} products, {len(DEMO_ROWS)} SKUs "
        f"({counts.created} created, {counts.updated} updated).",
        file=sys.stderr,
    )
    return 0


def _reset(context: Context) -> int:
    from mcp_checkout.domain import utc_now
    from mcp_checkout.service.container import open_database
    from mcp_checkout.service.maintenance import reset_store
    from mcp_checkout.service.policy import OPERATOR
    from mcp_checkout.store import migrate

    settings = context.settings
    store = describe_database(settings)
    if not context.args.yes:
        print(
            f"error: reset deletes every product, order, cart, payment record and webhook endpoint of the store "
            f"({store}); API keys and the audit log stay. Nothing was deleted. To confirm, run: "
            "mcp-checkout reset --yes",
            file=sys.stderr,
        )
        return 2

    async def run() -> dict[str, int]:
        db = open_database(settings)
        try:
            await migrate.upgrade(db)
            return await reset_store(db, OPERATOR, utc_now())
        finally:
            await db.dispose()

    deleted = anyio.run(run)
    counts = ", ".join(f"{deleted[name]} {name}" for name in ("products", "skus", "orders", "webhook_endpoints"))
    print(
        f"Store reset ({store}): {sum(deleted.values())} rows deleted ({counts}); API keys and the audit log kept.",
        file=sys.stderr,
    )
    return 0


def _delete_product(context: Context) -> int:
    from mcp_checkout.service.container import Services
    from mcp_checkout.service.policy import OPERATOR
    from mcp_checkout.service.views import DeleteProductOut

    args = context.args

    async def run(services: Services) -> DeleteProductOut:
        return await services.merchant.delete_product(OPERATOR, product_id=args.product_id, sku=args.sku)

    removal = context.with_services(run)
    print(
        f"deleted: {', '.join(removal.deleted) or 'none'}; archived (kept for their orders, no longer sold): "
        f"{', '.join(removal.archived) or 'none'}; products deleted: {len(removal.products_deleted)}",
        file=sys.stderr,
    )
    return 0


def register(commands: Commands) -> None:
    add_command(
        commands,
        "migrate",
        help="create or upgrade the database schema",
        description="Create the database (SQLite file in the data directory, or the PostgreSQL database of "
        "MCP_CHECKOUT_DATABASE_URL) or upgrade its schema to this version. serve, import-catalog and the other "
        "commands that write do this themselves; run it on its own before starting several servers.",
        examples=["mcp-checkout migrate", "mcp-checkout migrate --database-url postgresql+asyncpg://shop@db:5432/shop"],
        handler=_migrate,
    )
    importer = add_command(
        commands,
        "import-catalog",
        help="import products and SKUs from a CSV file",
        description="Import products and SKUs from a CSV file with a header row; rows are upserted by sku_code. "
        "All or nothing by default: bad rows are listed and nothing is imported. Columns are listed in the "
        "README (Import your catalog).",
        examples=[
            "mcp-checkout import-catalog catalog.csv",
            "mcp-checkout import-catalog catalog.csv --dry-run        # validate only",
            "mcp-checkout import-catalog catalog.csv --skip-invalid   # import the good rows, list the bad",
            "mcp-checkout import-catalog products_export.csv          # a Shopify or WooCommerce export as is",
            "mcp-checkout import-catalog lager.csv --map Artikelnummer=sku_code --map Bezeichnung=product_name",
        ],
        handler=_import_catalog,
    )
    importer.add_argument("path", type=Path, help="CSV file (header row required)")
    importer.add_argument("--skip-invalid", action="store_true", help="import the valid rows even if some are bad")
    importer.add_argument("--dry-run", action="store_true", help="validate only; change nothing")
    importer.add_argument(
        "--map",
        action="append",
        type=_mapping,
        metavar="COLUMN=field",
        help="read a column of your file as a catalog field, e.g. --map Artikelnummer=sku_code (repeatable)",
    )
    add_command(
        commands,
        "seed-demo",
        help="load the demo catalog into the store",
        description="Load the demo catalog into the store, for trying things out. It adds or refreshes the "
        "demo products only; your own products are left alone.",
        examples=["mcp-checkout seed-demo --data-dir /tmp/demo-store"],
        handler=_seed_demo,
    )
    reset = add_command(
        commands,
        "reset",
        help="empty the store (products, orders, carts, webhooks); API keys stay",
        description="Delete every product, order, cart, checkout link, payment record, idempotency record and "
        "webhook endpoint of the store, in one transaction, keeping its schema, its API keys and its audit log. "
        "Refuses (exit code 2) unless --yes is given.",
        examples=["mcp-checkout reset --yes", "mcp-checkout reset --yes --data-dir /tmp/demo-store"],
        handler=_reset,
    )
    reset.add_argument("--yes", action="store_true", help="confirm; without it nothing is deleted")
    remove = add_command(
        commands,
        "delete-product",
        help="delete a product or one SKU; SKUs with orders are archived instead",
        description="Take a product (all its SKUs) or one SKU out of the catalog. SKUs that were never ordered "
        "are deleted; SKUs that orders reference are archived: no longer found or sold, kept for those orders "
        "(importing or upserting the SKU code lists it again).",
        examples=["mcp-checkout delete-product --sku MUG-01", "mcp-checkout delete-product --product-id prod_0a1b…"],
        handler=_delete_product,
    )
    which = remove.add_mutually_exclusive_group(required=True)
    which.add_argument("--sku", help="one SKU code")
    which.add_argument("--product-id", help="a product id (all its SKUs)")
