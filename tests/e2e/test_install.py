"""What a merchant copies into Claude Desktop must start a working server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

REPO = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("mcp-checkout")


def _start_like_claude_desktop(entry: dict[str, Any]) -> StdioServerParameters:
    return StdioServerParameters(command=entry["command"], args=entry["args"], env=entry["env"])


async def test_the_repo_template_starts_the_server_once_its_paths_are_filled_in(tmp_path: Path) -> None:
    template = (REPO / "claude_desktop_config.json").read_text()
    filled = template.replace("/ABSOLUTE/PATH/TO/mcp-checkout/data", str(tmp_path / "data")).replace(
        "/ABSOLUTE/PATH/TO/mcp-checkout", str(REPO)
    )
    entry = json.loads(filled)["mcpServers"]["checkout"]
    assert Path(entry["command"]).exists(), "the template's command must point at the venv's console script"
    async with Client(_start_like_claude_desktop(entry), mode="legacy") as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert {"search_catalog", "create_order", "get_order"} <= names
    assert (tmp_path / "data" / "checkout.db").exists()


async def test_claude_config_command_prints_absolute_paths_of_this_install(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(CLI), "--data-dir", str(tmp_path / "store"), "claude-config", "--merchant-name", "Harbor Ceramics"],
        capture_output=True, text=True, check=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    entry = json.loads(done.stdout)["mcpServers"]["checkout"]
    assert Path(entry["command"]).is_absolute() and Path(entry["command"]).exists()
    assert entry["env"]["MCP_CHECKOUT_DATA_DIR"] == str((tmp_path / "store").resolve())
    assert entry["env"]["MCP_CHECKOUT_MERCHANT_NAME"] == "Harbor Ceramics"
    async with Client(_start_like_claude_desktop(entry), mode="legacy") as client:
        result = await client.call_tool("search_catalog", {"query": "anything"})
    assert not result.is_error
