"""The Claude Desktop bundle: ``mcp-checkout bundle`` builds ``mcp-checkout.mcpb`` (an MCP Bundle).

A ``uv`` bundle (manifest 0.4): it carries the package source, ``pyproject.toml`` and ``uv.lock``,
and the desktop app runs ``uv run --frozen --no-dev`` in the unpacked directory, so uv installs the
locked dependencies (compiled wheels for the user's platform included) on first start. A ``python``
bundle would have to ship those compiled wheels (pydantic-core, asyncpg, greenlet) for every platform.

The manifest's tool and prompt lists are read from the real server (``build_server``), so they cannot
drift from what the server serves. The merchant's settings are asked for at install time
(``user_config``) and handed to the server as ``MCP_CHECKOUT_*`` environment variables; an optional
field left blank arrives as "" and counts as unset (``Settings`` ignores empty variables).
The archive itself is written by the pinned ``mcpb`` CLI (``bundle/package.json``), which validates
the manifest while packing.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import anyio

import mcp_checkout
from mcp_checkout.config import Settings
from mcp_checkout.server import build_server

MANIFEST_VERSION = "0.4"
ENTRY_POINT = "main.py"
# README and LICENSE: the build backend reads them (readme = ..., license-files = ...).
PROJECT_FILES = ("pyproject.toml", "uv.lock", "README.md", "LICENSE")
ICON = "icon.png"  # bundle/icon.png, drawn by scripts/draw_icon.py
ENTRY_SCRIPT = '''"""Entry point of the mcp-checkout MCP Bundle: serve MCP over stdio, as Claude Desktop expects."""

import sys

from mcp_checkout.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["serve"]))
'''

# user_config key -> (environment variable, manifest entry). Optional strings default to "" so the host
# substitutes an empty value (= unset) instead of leaving the ${user_config.…} placeholder in place.
USER_CONFIG: dict[str, tuple[str, dict[str, Any]]] = {
    "merchant_name": (
        "MCP_CHECKOUT_MERCHANT_NAME",
        {
            "type": "string",
            "title": "Store name",
            "description": "Your store's name, shown to buyers on the checkout page and in order summaries.",
            "required": True,
        },
    ),
    "stripe_secret_key": (
        "MCP_CHECKOUT_STRIPE_SECRET_KEY",
        {
            "type": "string",
            "title": "Stripe secret key",
            "description": "sk_test_… or sk_live_… (a restricted rk_ key works too). Leave empty to take "
            "test payments offline, without Stripe.",
            "sensitive": True,
            "required": False,
            "default": "",
        },
    ),
    "stripe_publishable_key": (
        "MCP_CHECKOUT_STRIPE_PUBLISHABLE_KEY",
        {
            "type": "string",
            "title": "Stripe publishable key",
            "description": "pk_test_… or pk_live_…, from the same Stripe account and mode as the secret key.",
            "required": False,
            "default": "",
        },
    ),
    "stripe_webhook_secret": (
        "MCP_CHECKOUT_STRIPE_WEBHOOK_SECRET",
        {
            "type": "string",
            "title": "Stripe webhook signing secret",
            "description": "whsec_… of the Stripe webhook endpoint <public base URL>/webhooks/stripe.",
            "sensitive": True,
            "required": False,
            "default": "",
        },
    ),
    "data_directory": (
        "MCP_CHECKOUT_DATA_DIR",
        {
            "type": "directory",
            "title": "Data directory",
            "description": "Where the store's database (orders, catalog) is kept. Empty: the same per-user "
            "directory the mcp-checkout command uses (~/Library/Application Support/mcp-checkout on macOS, "
            "%LOCALAPPDATA%\\mcp-checkout on Windows, ~/.local/share/mcp-checkout on Linux), so both see one store.",
            "required": False,
            "default": "",
        },
    ),
    "public_base_url": (
        "MCP_CHECKOUT_PUBLIC_BASE_URL",
        {
            "type": "string",
            "title": "Public base URL",
            "description": "The https:// address buyers open checkout links at. Empty: http://127.0.0.1:8765 "
            "(this computer only; fine for testing).",
            "required": False,
            "default": "",
        },
    ),
}


class BundleError(Exception):
    """The bundle cannot be built; the message says what to install or run."""


def project_root() -> Path:
    """The source checkout this package runs from (a bundle is built from source, not from a wheel)."""
    root = Path(mcp_checkout.__file__).resolve().parent.parent
    missing = [name for name in PROJECT_FILES if not (root / name).is_file()]
    if missing:
        raise BundleError(
            f"{root} is not a source checkout of mcp-checkout (missing {', '.join(missing)}): build the bundle "
            "from a clone of the repository (make bundle)."
        )
    return root


def _first_line(text: str | None) -> str:
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


async def declared_capabilities() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The tools and prompts a merchant's stdio server serves, as manifest entries. Reads the server's
    registrations only: no database is opened."""
    with tempfile.TemporaryDirectory() as scratch:
        server = build_server(Settings(data_dir=Path(scratch), local_principal_kind="merchant"))
        tools = [
            {"name": tool.name, "description": _first_line(tool.description)} for tool in await server.list_tools()
        ]
        prompts = []
        for prompt in await server.list_prompts():
            names = [argument.name for argument in prompt.arguments or []]
            rendered = await server.get_prompt(prompt.name, {})
            text = "\n".join(str(getattr(message.content, "text", "")) for message in getattr(rendered, "messages", []))
            prompts.append(
                {"name": prompt.name, "description": _first_line(prompt.description), "arguments": names, "text": text}
            )
    return tools, prompts


def manifest(root: Path, tools: list[dict[str, Any]], prompts: list[dict[str, Any]]) -> dict[str, Any]:
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {
        "manifest_version": MANIFEST_VERSION,
        "name": project["name"],
        "display_name": "Checkout",
        "version": project["version"],
        "description": project["description"],
        "long_description": "Lets Claude sell from your catalog: search products, build carts, create each order "
        "exactly once, mint single-use checkout links and hand payment to Stripe (or take test payments "
        "offline). Merchant tools import the catalog, adjust stock, list orders and check go-live readiness.",
        "author": {"name": "mcp-checkout contributors"},
        "license": project["license"],  # an SPDX expression (PEP 639)
        "keywords": ["checkout", "commerce", "stripe", "orders", "catalog"],
        "icon": ICON,
        "server": {
            "type": "uv",
            "entry_point": ENTRY_POINT,
            "mcp_config": {
                "command": "uv",
                "args": ["run", "--directory", "${__dirname}", "--frozen", "--no-dev", ENTRY_POINT, "serve"],
                "env": {env: f"${{user_config.{key}}}" for key, (env, _) in USER_CONFIG.items()},
            },
        },
        "tools": tools,
        "prompts": prompts,
        "compatibility": {
            "platforms": ["darwin", "win32", "linux"],
            "runtimes": {"python": project["requires-python"]},
        },
        "user_config": {key: entry for key, (_, entry) in USER_CONFIG.items()},
    }


def stage(root: Path, target: Path, document: dict[str, Any]) -> None:
    """Lay out the bundle's files in ``target``: the package, the project files, the entry point, the manifest."""
    shutil.copytree(
        root / "mcp_checkout", target / "mcp_checkout", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    for name in PROJECT_FILES:
        shutil.copy2(root / name, target / name)
    shutil.copy2(root / "bundle" / ICON, target / ICON)
    (target / ENTRY_POINT).write_text(ENTRY_SCRIPT, encoding="utf-8")
    (target / "manifest.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


async def mcpb_cli(root: Path) -> Path:
    """The pinned mcpb CLI (bundle/package-lock.json), installed with ``npm ci`` on first use."""
    tools = root / "bundle"
    mcpb = tools / "node_modules" / ".bin" / ("mcpb.cmd" if sys.platform == "win32" else "mcpb")
    if mcpb.exists():
        return mcpb
    npm = shutil.which("npm")
    if npm is None:
        raise BundleError("The bundle is packed with the mcpb CLI, which needs Node.js 20+ and npm on PATH.")
    print("installing the mcpb CLI (npm ci in bundle/)", file=sys.stderr)
    done = await anyio.run_process([npm, "ci", "--no-audit", "--no-fund"], cwd=tools, check=False)
    if done.returncode != 0 or not mcpb.exists():
        raise BundleError(f"npm ci in {tools} failed:\n{done.stderr.decode(errors='replace')[-2000:]}")
    return mcpb


async def build_bundle(out: Path) -> dict[str, Any]:
    """Build the .mcpb at ``out``; return its manifest."""
    root = project_root()
    mcpb = await mcpb_cli(root)
    tools, prompts = await declared_capabilities()
    document = manifest(root, tools, prompts)
    out = Path(await anyio.Path(out).resolve())
    await anyio.Path(out.parent).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "mcp-checkout"
        target.mkdir()
        stage(root, target, document)
        done = await anyio.run_process([str(mcpb), "pack", str(target), str(out)], check=False)
    if done.returncode != 0 or not await anyio.Path(out).exists():
        output = (done.stdout + done.stderr).decode(errors="replace")
        raise BundleError(f"mcpb pack failed (exit {done.returncode}):\n{output[-4000:]}")
    return document
