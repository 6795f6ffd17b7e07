"""OAuth 2.1 end to end with the TypeScript MCP SDK (``@modelcontextprotocol/sdk`` 1.32.2, pinned in
tests/e2e/node_oauth/package-lock.json) against a real `serve --http`: discovery, registration, the merchant's
consent page (approved with a one-time code from `mcp-checkout oauth approve`), token, tool calls, a refresh
on 401, and revoke (after which /mcp answers 401)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.servers import cli, running, server_env
from tests.support import npm_ci_once

NODE_DIR = Path(__file__).with_name("node_oauth")
pytestmark = pytest.mark.timeout(300)


def ensure_node_modules() -> None:
    """Install the pinned SDK from package-lock.json on first use."""
    sdk = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "sdk"
    npm_ci_once(NODE_DIR, sdk, what="the TypeScript SDK test")


def test_typescript_sdk_client_connects_with_oauth_refreshes_and_is_cut_off_by_revoke(tmp_path: Path) -> None:
    ensure_node_modules()
    env = server_env({"MCP_CHECKOUT_DATA_DIR": str(tmp_path / "data")})
    with running(env, tmp_path / "logs", 1) as servers:
        approval = cli(env, "oauth", "approve").stdout.strip()
        done = subprocess.run(
            ["node", "connect.js"],
            cwd=NODE_DIR,
            env=env | {"SERVER_BASE": servers[0].base, "APPROVAL_CODE": approval},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:] + servers[0].log_tail()
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["approvalStatus"] == 303 and report["redirectedTo"] == "http://127.0.0.1:33419/callback"
    assert {"search_catalog", "list_orders", "refund_order"} <= set(report["tools"])
    assert report["firstScope"] == "buyer merchant"
    assert report["search"] is False and report["listOrders"] is False  # isError: the calls succeeded
    assert report["afterRefresh"] is False and report["rotated"] is True and report["pagesSeen"] == 1
    assert report["revokeStatus"] == 200 and report["afterRevokeStatus"] == 401
