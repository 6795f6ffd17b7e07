"""``mcp-checkout``: serve | migrate | import-catalog | seed-demo | demo | claude-config."""

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
    from mcp_checkout.server import build_server

    settings = _settings(args)
    server = build_server(settings)
    anyio.run(server.run_stdio_async)
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
    raise NotImplementedError("import-catalog")


def _cmd_seed_demo(args: argparse.Namespace) -> int:
    raise NotImplementedError("seed-demo")


def _cmd_demo(args: argparse.Namespace) -> int:
    from mcp_checkout.demo import run_demo

    return anyio.run(run_demo, _settings(args))


def _cmd_claude_config(args: argparse.Namespace) -> int:
    from mcp_checkout.install import claude_desktop_config

    print(json.dumps(claude_desktop_config(_settings(args)), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcp-checkout", description=__doc__)
    parser.add_argument("--data-dir", help="where the SQLite database lives (MCP_CHECKOUT_DATA_DIR)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (MCP_CHECKOUT_DATABASE_URL)")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("serve", help="serve MCP over stdio (for Claude Desktop and other MCP clients)").set_defaults(
        handler=_cmd_serve
    )
    commands.add_parser("migrate", help="create or upgrade the database schema").set_defaults(handler=_cmd_migrate)

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(Settings().log_level)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
