"""The official MCP conformance suite (@modelcontextprotocol/conformance, pinned in tests/e2e/conformance)
against a real `serve --http`. The suite sends no Authorization header, so it talks through a loopback
proxy that adds a merchant key (tests/e2e/auth_proxy.py). Scenarios that need the suite's own fixture
tools and resources are listed, with the reason, in conformance/baseline.yml; the suite itself fails
the run on any other failure and on a baseline entry that starts passing.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from auth_proxy import auth_proxy
from servers import cli, create_keys, running, server_env, write_catalog

from tests.support import npm_ci_once

SUITE_DIR = Path(__file__).with_name("conformance")
NODE = SUITE_DIR / "node_modules" / ".bin" / "node"
SUITE = SUITE_DIR / "node_modules" / ".bin" / "conformance"
# What we claim to serve, each of which the suite must report as passing.
MUST_PASS = {
    "server-initialize",
    "ping",
    "logging-set-level",
    "completion-complete",
    "tools-list",
    "tools-call-error",
    "resources-list",
    "prompts-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
}


def ensure_suite() -> None:
    npm_ci_once(SUITE_DIR, SUITE, what="the MCP conformance suite")


def test_the_official_conformance_suite_passes_what_applies(tmp_path: Path) -> None:
    ensure_suite()
    env = server_env({"MCP_CHECKOUT_DATA_DIR": str(tmp_path / "shop")})
    cli(env, "migrate")
    cli(env, "import-catalog", str(write_catalog(tmp_path / "catalog.csv", [("Mug", "MUG-01", "18.00", 5)])))
    (key,) = create_keys(env, ("conformance", "merchant"))
    with (
        running(env, tmp_path / "logs", 1, name="conformance") as (server,),
        auth_proxy(server.base, f"Bearer {key}") as url,
    ):
        done = subprocess.run(
            [str(NODE), str(SUITE), "server", "--url", f"{url}/mcp", "--expected-failures", "baseline.yml"],
            cwd=SUITE_DIR,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    report = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
    assert done.returncode == 0, report[-6000:]
    passed = set(re.findall(r"^✓ ([a-z0-9-]+):", report, flags=re.MULTILINE))
    assert passed >= MUST_PASS, f"not passing: {sorted(MUST_PASS - passed)}\n{report[-4000:]}"
