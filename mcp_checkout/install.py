"""How MCP clients start this install: the Claude Desktop config entry."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from mcp_checkout.config import Settings


def server_command() -> str:
    """The absolute path of this install's ``mcp-checkout`` executable."""
    beside_python = Path(sys.executable).with_name("mcp-checkout")
    found = str(beside_python) if beside_python.exists() else shutil.which("mcp-checkout")
    return str(Path(found or beside_python).absolute())


def claude_desktop_config(settings: Settings) -> dict[str, Any]:
    """The ``mcpServers`` entry for this install, with absolute paths."""
    env = {
        "MCP_CHECKOUT_DATA_DIR": str(settings.data_dir.resolve()),
        "MCP_CHECKOUT_MERCHANT_NAME": settings.merchant_name,
    }
    if settings.database_url:
        env["MCP_CHECKOUT_DATABASE_URL"] = settings.database_url
    return {"mcpServers": {"checkout": {"command": server_command(), "args": ["serve"], "env": env}}}
