"""The MCP Inspector CLI (a real TypeScript-SDK client) against `mcp-checkout serve --http` with an API key,
and against the stdio server.

The Inspector comes from npm through `npx` (cached in the npm cache after the first run). If it cannot be
fetched or run, these tests FAIL with the reason: CI must run them. Set MCP_CHECKOUT_SKIP_INSPECTOR=1 to
skip them on purpose (e.g. offline with a cold npm cache). The exit code alone says little (2.12.0 exits 5
after printing a tool's error result, 1 for a client-side failure), so every answer's JSON is checked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from servers import CLI, cli, cli_parallel, running, server_env, write_catalog

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
FIRST_FETCH_TIMEOUT = 240  # the first run downloads the package
RUN_TIMEOUT = 90
TOOL_ERROR_EXIT = 5  # Inspector 2.12.0 prints an isError result, then exits 5 (EXIT_CODES.TOOL_ERROR), not 0

pytestmark = [
    pytest.mark.timeout(360),
    pytest.mark.skipif(
        os.environ.get("MCP_CHECKOUT_SKIP_INSPECTOR") == "1", reason="MCP_CHECKOUT_SKIP_INSPECTOR=1 (on purpose)"
    ),
]


def inspector(*args: str) -> list[str]:
    npx = shutil.which("npx")
    if npx is None:
        pytest.fail("npx not found: the MCP Inspector tests need Node.js 20+ (or MCP_CHECKOUT_SKIP_INSPECTOR=1)")
    return [npx, "--yes", "--prefer-offline", INSPECTOR, "--cli", *args]


def _stderr(text: str) -> str:
    """The Inspector's stderr without npm's engine warnings (2.12.0 asks for Node 22 but runs on 20)."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("npm warn"))[-3000:]


@dataclass
class Answer:
    args: Sequence[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        """The result on stdout, or the Inspector's own ``{"error": ...}`` envelope (on stderr when it fails)."""
        for text in (self.stdout, *reversed(self.stderr.splitlines())):
            try:
                parsed = json.loads(text)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                return parsed
        pytest.fail(f"the Inspector printed no JSON (exit {self.returncode}):\n{self.stdout[-2000:]}\n{self.stderr}")

    def ok(self) -> dict[str, Any]:
        assert self.returncode == 0, f"Inspector exited {self.returncode}: {self.stdout[-2000:]}\n{self.stderr}"
        return self.json()


def run_all(calls: Mapping[str, Sequence[str]], timeout: float) -> dict[str, Answer]:
    """Run several Inspector invocations at once (each is a Node start-up: seconds on a loaded machine)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_CHECKOUT_")}
    started = {
        name: subprocess.Popen(
            inspector(*args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name, args in calls.items()
    }
    answers: dict[str, Answer] = {}
    try:
        for name, process in started.items():
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the Inspector ({name}) did not finish in {timeout:.0f}s: {' '.join(calls[name])}")
            answers[name] = Answer(calls[name], process.returncode, stdout, _stderr(stderr))
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return answers


def ensure_inspector() -> None:
    """Fetch (first run) and start the Inspector once; fail loudly, with npm's reason, if that is impossible."""
    probe = run_all({"version": ["--version"]}, FIRST_FETCH_TIMEOUT)["version"]
    if probe.returncode != 0 or "2.12.0" not in probe.stdout:
        pytest.fail(
            f"cannot run the MCP Inspector CLI ({INSPECTOR}) through npx: exit {probe.returncode}\n{probe.stderr}\n"
            "Check that npm can reach its registry (or has the package cached), or set "
            "MCP_CHECKOUT_SKIP_INSPECTOR=1 to skip these tests on purpose."
        )


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Answer]]:
    """One HTTP server with a buyer key and a small catalog; every Inspector call below, run concurrently
    (plus one against the stdio server on the same SQLite file)."""
    ensure_inspector()
    home = tmp_path_factory.mktemp("inspector")
    env = server_env({"MCP_CHECKOUT_DATA_DIR": str(home)})
    cli(env, "migrate")
    catalog = write_catalog(home / "catalog.csv", [("Stoneware Mug", "MUG-01", "18.00", 10)])
    done = cli_parallel(
        env, ["import-catalog", str(catalog)], ["keys", "create", "--name", "inspector", "--scope", "buyer"]
    )
    key = done[1].stdout.strip()
    with running(env, home / "logs", 1, name="inspector") as [server]:
        url = f"{server.base}/mcp"
        http = [url, "--transport", "http"]
        auth = ["--header", f"Authorization: Bearer {key}"]
        stdio = [
            "-e", "MCP_CHECKOUT_SERVE_CHECKOUT_PAGE=false", "-e", "MCP_CHECKOUT_LOG_LEVEL=WARNING",
            str(CLI), "--data-dir", str(home), "serve",
        ]  # fmt: skip
        yield run_all(
            {
                "list": [*http, *auth, "--method", "tools/list"],
                "search": [*http, *auth, "--method", "tools/call", "--tool-name", "search_catalog", "--tool-arg", "query=mug"],
                "tool_error": [
                    *http, *auth, "--method", "tools/call", "--tool-name", "get_order", "--tool-arg", "order_id=ord_nope",
                ],
                "no_key": [*http, "--method", "tools/list"],
                "stdio": [*stdio, "--method", "tools/call", "--tool-name", "search_catalog", "--tool-arg", "query=mug"],
            },
            RUN_TIMEOUT,
        )  # fmt: skip


def test_the_inspector_lists_the_buyer_tools_over_http_with_a_key(answers: dict[str, Answer]) -> None:
    tools = {tool["name"]: tool for tool in answers["list"].ok()["tools"]}
    assert {"search_catalog", "get_product", "create_order", "create_checkout_link", "get_order"} <= set(tools)
    assert "refund_order" not in tools and "import_catalog_csv" not in tools  # merchant tools: not for a buyer key
    assert tools["search_catalog"]["inputSchema"]["properties"]["query"]
    assert "outputSchema" in tools["create_order"]


def test_the_inspector_calls_search_catalog_over_http_with_a_key(answers: dict[str, Answer]) -> None:
    result = answers["search"].ok()
    assert result["isError"] is False, result
    items = result["structuredContent"]["items"]
    assert [item["sku"] for item in items] == ["MUG-01"]
    assert items[0]["price"]["amount"] == 1800 and items[0]["available"] == 10
    assert json.loads(result["content"][0]["text"])["items"] == items


def test_a_tool_error_reaches_the_inspector_as_an_error_result(answers: dict[str, Answer]) -> None:
    answer = answers["tool_error"]
    result = answer.json()  # printed in full, then the exit code says "the tool reported an error"
    assert answer.returncode == TOOL_ERROR_EXIT, f"exit {answer.returncode}: {answer.stdout[-2000:]}"
    assert result["isError"] is True
    assert result["content"][0]["text"].startswith("[order_not_found] ")
    assert json.loads(result["content"][1]["text"])["error"]["code"] == "order_not_found"


def test_the_inspector_without_a_key_is_refused(answers: dict[str, Answer]) -> None:
    refused = answers["no_key"]
    assert refused.returncode == 3, refused  # the Inspector's AUTH_REQUIRED exit: the server answered 401
    assert refused.json()["error"]["code"] == "auth_required"


def test_the_inspector_calls_search_catalog_over_stdio(answers: dict[str, Answer]) -> None:
    result = answers["stdio"].ok()
    assert result["isError"] is False, result
    assert [item["sku"] for item in result["structuredContent"]["items"]] == ["MUG-01"]
