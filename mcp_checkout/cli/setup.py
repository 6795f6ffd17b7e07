"""Trying it out and installing it: ``demo``, ``claude-config``, ``bundle``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio

from mcp_checkout.cli.base import Commands, Context, add_command


def _demo(context: Context) -> int:
    from mcp_checkout.demo import run_demo

    return anyio.run(run_demo, context.settings)


def _claude_config(context: Context) -> int:
    from mcp_checkout.install import claude_desktop_config

    print(json.dumps(claude_desktop_config(context.settings), indent=2))
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
        help="seed the demo catalog and run a scripted agent session over stdio",
        description="Seed the demo catalog, start `mcp-checkout serve` the way Claude Desktop does, and play an "
        "agent's part through a real MCP client: search, cart, an exactly-once order, a checkout link paid on "
        "the offline test page, a signed webhook to a local receiver. Prints the transcript, then how to "
        "connect Claude Desktop and the MCP Inspector.",
        examples=["mcp-checkout demo", "mcp-checkout demo --data-dir /tmp/demo-store"],
        handler=_demo,
    )
    add_command(
        commands,
        "claude-config",
        help="print the Claude Desktop config for this install",
        description="Print the mcpServers entry for Claude Desktop's claude_desktop_config.json, with this "
        "install's absolute paths and data directory. Merge it into that file and restart Claude Desktop.",
        examples=["mcp-checkout claude-config", "mcp-checkout claude-config --data-dir ~/shop"],
        handler=_claude_config,
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
