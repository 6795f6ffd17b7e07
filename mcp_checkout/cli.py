"""``mcp-checkout``: serve | migrate | import-catalog | seed-demo | demo | claude-config | doctor | bundle."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from mcp_checkout import logs
from mcp_checkout.config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    return Settings(**overrides)


def _cmd_serve(args: argparse.Namespace) -> int:
    from mcp_checkout import hosting

    settings = _settings(args)
    if args.http:
        settings = settings.model_copy(update={"web_host": args.host, "web_port": args.port})
        hosting.serve_http(settings, args.host, args.port, args.workers)
    else:
        anyio.run(hosting.serve_stdio, settings)
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    from mcp_checkout.service.container import open_database
    from mcp_checkout.store import migrate

    settings = _settings(args)

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


def _cmd_import_catalog(args: argparse.Namespace) -> int:
    import logging

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from mcp_checkout.domain import utc_now
    from mcp_checkout.errors import CheckoutError
    from mcp_checkout.service.catalog_import import CatalogImportService
    from mcp_checkout.service.container import open_database
    from mcp_checkout.service.views import ImportIssue, ImportReport
    from mcp_checkout.store import migrate

    settings = _settings(args)
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
            options: dict[str, Any] = {"skip_invalid": args.skip_invalid, "dry_run": args.dry_run}
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


def _cmd_seed_demo(args: argparse.Namespace) -> int:
    from mcp_checkout.domain import utc_now
    from mcp_checkout.errors import CheckoutError
    from mcp_checkout.service.container import open_database
    from mcp_checkout.store import migrate
    from mcp_checkout.store.catalog_write import UpsertCounts
    from mcp_checkout.store.demo_catalog import DEMO_ROWS, seed_demo_catalog

    settings = _settings(args)

    async def run() -> UpsertCounts:
        db = open_database(settings)
        try:
            await migrate.upgrade(db)
            return await seed_demo_catalog(db, utc_now())
        finally:
            await db.dispose()

    try:
        counts = anyio.run(run)
    except CheckoutError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    products = len({row.product_key for row in DEMO_ROWS})
    print(
        f"Demo catalog ready: {products} products, {len(DEMO_ROWS)} SKUs "
        f"({counts.created} created, {counts.updated} updated).",
        file=sys.stderr,
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from mcp_checkout.demo import run_demo

    return anyio.run(run_demo, _settings(args))


def _cmd_claude_config(args: argparse.Namespace) -> int:
    from mcp_checkout.install import claude_desktop_config

    print(json.dumps(claude_desktop_config(_settings(args)), indent=2))
    return 0


def _cmd_keys(args: argparse.Namespace) -> int:
    from mcp_checkout.hosting import open_services

    async def run() -> int:
        services = await open_services(_settings(args))
        try:
            if args.keys_command == "create":
                created = await services.access.create_key(args.name, args.scope, args.expires_in_days)
                print(created.key)  # the secret goes to stdout (pipe it into a secret store), once
                print(
                    f"created {created.info.scope} key {created.info.prefix} ({created.info.name!r}); "
                    "this is the only time the key is shown",
                    file=sys.stderr,
                )
            elif args.keys_command == "list":
                keys = await services.access.list_keys()
                if args.json:
                    print(json.dumps([key.model_dump(mode="json") for key in keys], indent=2))
                else:
                    for key in keys:
                        made = key.created_at.isoformat(timespec="seconds")
                        used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
                        expires = key.expires_at.isoformat(timespec="seconds") if key.expires_at else "never"
                        row = f"{key.prefix:<24} {key.scope:<8} {key.status:<7} created {made}"
                        print(f"{row} used {used} expires {expires} {key.name}")
            else:
                revoked = await services.access.revoke(args.key)
                print(f"revoked {revoked.prefix} ({revoked.name!r})", file=sys.stderr)
            return 0
        finally:
            await services.close()

    return anyio.run(run)


def _cmd_webhooks(args: argparse.Namespace) -> int:
    """Outbound webhooks: data to stdout, notes to stderr; the signing secret is printed once, at `add`."""
    from mcp_checkout.hosting import open_services
    from mcp_checkout.service.policy import OPERATOR

    async def run() -> Any:
        services = await open_services(_settings(args))
        hooks = services.webhooks
        try:
            command = args.webhooks_command
            if command == "add":
                return await hooks.create_endpoint(OPERATOR, args.url, args.events.split(","), args.description)
            if command == "list":
                return await hooks.list_endpoints(OPERATOR)
            if command == "deactivate":
                return await hooks.deactivate_endpoint(OPERATOR, args.endpoint_id)
            if command == "deliveries":
                return await hooks.list_deliveries(
                    OPERATOR, endpoint_id=args.endpoint, status=args.status, limit=args.limit, cursor=args.cursor
                )
            if command == "metrics":
                return await hooks.metrics(OPERATOR, args.window_minutes)
            return await hooks.replay(OPERATOR, args.delivery_id)
        finally:
            await services.close()

    from mcp_checkout.errors import CheckoutError

    try:
        result = anyio.run(run)
    except CheckoutError as exc:
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 1
    if args.webhooks_command == "add":
        print(f"{result.endpoint.endpoint_id} {result.signing_secret}")
        print("the signing secret (whsec_…) is shown only this once: store it with the receiver", file=sys.stderr)
    elif getattr(args, "json", False) or args.webhooks_command in ("deactivate", "replay"):
        print(result.model_dump_json(indent=2))
    elif args.webhooks_command == "list":
        if not result.endpoints:
            print("no webhook endpoints yet: add one with `mcp-checkout webhooks add URL --events …`", file=sys.stderr)
        for hook in result.endpoints:
            print(f"{hook.endpoint_id}  {hook.status:<8} {','.join(hook.events):<40} {hook.url}  {hook.description}")
    elif args.webhooks_command == "deliveries":
        if not result.deliveries:
            print("no deliveries match", file=sys.stderr)
        for row in result.deliveries:
            due = row.next_attempt_at.isoformat(timespec="seconds") if row.next_attempt_at else "-"
            code = row.last_status_code or "-"
            print(f"{row.delivery_id}  {row.status:<9} attempts={row.attempts} last={code} next={due} "
                  f"{row.event_type} {row.order_id or ''} {row.endpoint_url}")  # fmt: skip
        if result.next_cursor:
            print(f"older deliveries: add --cursor {result.next_cursor}", file=sys.stderr)
    else:
        rate = "n/a" if result.success_rate is None else f"{result.success_rate:.1%}"
        p95 = "n/a" if result.p95_delivery_seconds is None else f"{result.p95_delivery_seconds:.2f}s"
        counts = f"pending {result.pending}, failed {result.failed}, abandoned {result.abandoned}"
        print(
            f"last {result.window_minutes} min: {result.created} deliveries, success rate {rate}, {counts}, p95 {p95}"
        )
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from mcp_checkout.service.container import build_services
    from mcp_checkout.service.golive import ReadinessReport, go_live_report
    from mcp_checkout.service.policy import OPERATOR

    settings = _settings(args)

    async def run() -> ReadinessReport:
        services = build_services(settings)  # read-only: no migration, unlike serve
        try:
            return await go_live_report(services, OPERATOR)
        finally:
            await services.close()

    report = anyio.run(run)
    if args.json:
        print(report.model_dump_json(indent=2))
        return 0 if report.ready else 1
    console = Console()
    style = {"ok": "green", "warn": "yellow", "fail": "bold red"}
    table = Table(title=f"mcp-checkout go-live check ({report.mode})", show_lines=False)
    for column in ("check", "status", "detail"):
        table.add_column(column, overflow="fold")
    for check in report.checks:
        table.add_row(check.name, f"[{style[check.status]}]{check.status}[/]", escape(check.detail))
    console.print(table)
    if report.live_missing:
        live = Table(title="Live payments still need", show_lines=False)
        live.add_column("setting")
        live.add_column("what", overflow="fold")
        for item in report.live_missing:
            live.add_row(item.setting, escape(item.detail))
        console.print(live)
    verdict = "READY for live payments" if report.ready_for_live else f"READY for test mode ({report.mode}), not live"
    console.print(verdict if report.ready else "[bold red]NOT READY[/]: fix the failed checks above")
    return 0 if report.ready else 1


def _cmd_bundle(args: argparse.Namespace) -> int:
    from mcp_checkout.bundle import BundleError, build_bundle

    try:
        manifest = anyio.run(build_bundle, args.out)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    size = args.out.stat().st_size
    print(
        f"built {args.out} ({size / 1024:.0f} kB): {len(manifest['tools'])} tools, {len(manifest['prompts'])} "
        "prompts. Open it with Claude Desktop (Settings > Extensions) to install.",
        file=sys.stderr,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcp-checkout", description=__doc__)
    parser.add_argument("--data-dir", help="where the SQLite database lives (MCP_CHECKOUT_DATA_DIR)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (MCP_CHECKOUT_DATABASE_URL)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve MCP over stdio (Claude Desktop) plus the checkout page")
    serve.add_argument("--http", action="store_true", help="serve MCP over streamable HTTP at /mcp instead of stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (with --http)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (with --http)")
    serve.add_argument("--workers", type=int, default=1, help="HTTP worker processes (with --http)")
    serve.set_defaults(handler=_cmd_serve)
    commands.add_parser("migrate", help="create or upgrade the database schema").set_defaults(handler=_cmd_migrate)

    keys = commands.add_parser("keys", help="API keys for remote MCP clients (serve --http)")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True, help="who uses it, e.g. 'storefront agent'")
    create.add_argument("--scope", choices=["buyer", "merchant"], required=True)
    create.add_argument("--expires-in-days", type=int, default=None)
    listing = keys_commands.add_parser("list", help="names, scopes, prefixes, last use and expiry; never secrets")
    listing.add_argument("--json", action="store_true")
    revoke = keys_commands.add_parser("revoke", help="revoke a key at once (by key id or prefix)")
    revoke.add_argument("key")
    keys.set_defaults(handler=_cmd_keys)

    hooks = commands.add_parser("webhooks", help="signed order events to your own systems (ERP, shop backend)")
    hook_commands = hooks.add_subparsers(dest="webhooks_command", required=True)
    add = hook_commands.add_parser("add", help="register an endpoint; prints its id and signing secret once")
    add.add_argument("url", help="https URL that receives the POSTs")
    add.add_argument("--events", required=True, help="comma-separated, e.g. order.paid,order.canceled")
    add.add_argument("--description", default="", help="what the endpoint is for")
    hook_commands.add_parser("list", help="endpoints (never their secrets)").add_argument("--json", action="store_true")
    hook_commands.add_parser("deactivate", help="stop sending to an endpoint").add_argument("endpoint_id")
    deliveries = hook_commands.add_parser("deliveries", help="recent deliveries, newest first")
    deliveries.add_argument("--endpoint", help="only this endpoint id")
    deliveries.add_argument("--status", choices=["pending", "delivered", "failed", "abandoned"])
    deliveries.add_argument("--cursor", help="from the previous page's last line, for older deliveries")
    deliveries.add_argument("--limit", type=int, default=50, choices=range(1, 101), metavar="1-100")
    deliveries.add_argument("--json", action="store_true")
    metrics = hook_commands.add_parser("metrics", help="success rate, pending, abandoned, p95 latency")
    metrics.add_argument("--window-minutes", type=int, default=1440)
    metrics.add_argument("--json", action="store_true")
    hook_commands.add_parser("replay", help="send one delivery again now").add_argument("delivery_id")
    hooks.set_defaults(handler=_cmd_webhooks)

    importer = commands.add_parser("import-catalog", help="import products and SKUs from a CSV file")
    importer.add_argument("path", type=Path, help="CSV file (header row required)")
    importer.add_argument("--skip-invalid", action="store_true", help="import the valid rows even if some are bad")
    importer.add_argument("--dry-run", action="store_true", help="validate only; change nothing")
    importer.set_defaults(handler=_cmd_import_catalog)

    commands.add_parser("seed-demo", help="load the demo catalog").set_defaults(handler=_cmd_seed_demo)
    commands.add_parser("demo", help="seed the demo catalog and run a scripted agent session over stdio").set_defaults(
        handler=_cmd_demo
    )
    commands.add_parser("claude-config", help="print the Claude Desktop config for this install").set_defaults(
        handler=_cmd_claude_config
    )
    doctor = commands.add_parser("doctor", help="go-live checklist; exit code 1 when not ready")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON (for scripts)")
    doctor.set_defaults(handler=_cmd_doctor)
    bundle = commands.add_parser("bundle", help="build the Claude Desktop bundle (.mcpb) from this source checkout")
    bundle.add_argument("--out", type=Path, default=Path("dist/mcp-checkout.mcpb"), help="where to write the .mcpb")
    bundle.set_defaults(handler=_cmd_bundle)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(Settings().log_level)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
