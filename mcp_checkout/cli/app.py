"""The ``mcp-checkout`` parser and ``main``: parse, set up logging, run the command, report any failure."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

import mcp_checkout
from mcp_checkout import logs
from mcp_checkout.cli import buyer_data, doctor, keys, oauth, profile, serve, setup, store, webhooks
from mcp_checkout.cli.base import Context, global_options

# The order of the command list in `mcp-checkout --help`.
COMMAND_MODULES: tuple[ModuleType, ...] = (serve, setup, store, profile, keys, oauth, webhooks, buyer_data, doctor)

DESCRIPTION = """\
An MCP server that lets LLM agents sell from your catalog: exactly-once orders, single-use checkout
links, Stripe handoff, signed webhooks. SQLite by default, PostgreSQL for several processes."""

EPILOG = """\
examples:
  mcp-checkout demo                         a scripted agent session against a demo store
  mcp-checkout import-catalog products.csv  load your catalog
  mcp-checkout claude-config                the Claude Desktop entry for this install
  mcp-checkout serve                        MCP over stdio (what Claude Desktop starts)
  mcp-checkout serve --http --port 8000     remote MCP at /mcp behind API keys
  mcp-checkout doctor                       go-live checklist

Every setting is also an environment variable MCP_CHECKOUT_<NAME> (see the README's Configuration).
Exit codes: 0 ok, 1 a failure at run time, 2 a usage or configuration error."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcp-checkout",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[global_options(top_level=True)],
    )
    parser.add_argument("--version", action="version", version=f"mcp-checkout {mcp_checkout.__version__}")
    parser.set_defaults(handler=None, help_parser=parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.handler is None:  # `mcp-checkout` or `mcp-checkout keys` alone: show what there is to run
        args.help_parser.print_help()
        return 0
    context = Context(args)
    try:
        logs.configure(context.settings.log_level)
        code: int = args.handler(context)
    except (Exception, KeyboardInterrupt) as exc:
        from mcp_checkout.cli import failures

        return failures.report(exc, context.settings_if_valid)
    return code


if __name__ == "__main__":
    sys.exit(main())
