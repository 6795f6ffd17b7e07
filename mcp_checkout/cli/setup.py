"""Trying it out and installing it: ``demo``, ``claude-config``, ``bundle``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio

from mcp_checkout.cli.base import Commands, Context, add_command


def _demo(context: Context) -> int:
    from mcp_checkout.demo import run_demo

    return anyio.run(run_demo, context.settings)


def _store_name(context: Context) -> str:
    """--merchant-name, else asked on a terminal (stderr, so stdout stays the JSON), else the setting."""
    current = context.settings.merchant_name
    if context.args.merchant_name is not None:
        return str(context.args.merchant_name).strip()
    if sys.stdin.isatty():
        print(f"Store name shown to buyers [{current}]: ", end="", file=sys.stderr, flush=True)
        return sys.stdin.readline().strip() or current
    print(f"store name: {current!r} (MCP_CHECKOUT_MERCHANT_NAME; change it with --merchant-name)", file=sys.stderr)
    return current


def _claude_config(context: Context) -> int:
    from mcp_checkout.config import Settings
    from mcp_checkout.install import claude_desktop_config

    overrides: dict[str, Any] = {"data_dir": context.settings.data_dir, "merchant_name": _store_name(context)}
    if context.settings.database_url:
        overrides["database_url"] = context.settings.database_url
    settings = Settings(**overrides)  # validates the name like MCP_CHECKOUT_MERCHANT_NAME
    print(json.dumps(claude_desktop_config(settings), indent=2))
    return 0


def _bundle(context: Context) -> int:
    from mcp_checkout.bundle import BundleError, build_bundle

    out: Path = context.args.out
    try:
        manifest = anyio.run(build_bundle, out)
    except BundleError as exc:  # says what to install or run
        print(f"error: {exc}", file=sys.stderr)
        return 1
    size = out.stat().st_size
    print(
        f"built {out} ({size / 1024:.0f} kB): {len(manifest['tools'])} tools, {len(manifest['prompts'])} "
        "prompts. Open it with Claude Desktop (Settings > Extensions) to install.",
        file=sys.stderr,
    )
    return 0


def register(commands: Commands) -> None:
    add_command(
        commands,
        "demo",
        help="run a scripted agent session over stdio on a separate demo store",
        description="On a demo store of its own (<data dir>/demo, emptied and seeded with the demo catalog each "
        "run; your store is not touched), start `mcp-checkout serve` the way Claude Desktop does, and play an "
        "agent's part through a real MCP client: search, cart, an exactly-once order, a checkout link paid on "
        "the offline test page, a signed webhook to a local receiver. Prints the transcript, then how to "
        "connect Claude Desktop and the MCP Inspector.",
        examples=["mcp-checkout demo", "mcp-checkout demo --data-dir /tmp/demo-store"],
        handler=_demo,
    )
    claude = add_command(
        commands,
        "claude-config",
        help="print the Claude Desktop config for this install",
        description="Print the mcpServers entry for Claude Desktop's claude_desktop_config.json, with this "
        "install's absolute paths, data directory and store name (asked for on a terminal unless "
        "--merchant-name gives it). Merge it into that file and restart Claude Desktop.",
        examples=[
            "mcp-checkout claude-config",
            'mcp-checkout claude-config --merchant-name "Harbor Ceramics" --data-dir ~/shop',
        ],
        handler=_claude_config,
    )
    claude.add_argument(
        "--merchant-name", help="the store name buyers see (MCP_CHECKOUT_MERCHANT_NAME); asked for when omitted"
    )
    bundle = add_command(
        commands,
        "bundle",
        help="build the Claude Desktop bundle (.mcpb) from this source checkout",
        description="Build the Claude Desktop bundle (.mcpb) from this source checkout with the pinned mcpb CLI "
        "(needs Node.js 20+ and npm). Claude Desktop installs it in one click and asks for the store's settings.",
        examples=["mcp-checkout bundle", "mcp-checkout bundle --out /tmp/mcp-checkout.mcpb"],
        handler=_bundle,
    )
    bundle.add_argument("--out", type=Path, default=Path("dist/mcp-checkout.mcpb"), help="where to write the .mcpb")
