"""Helpers for the end-to-end tests: a real ``mcp-checkout serve`` over stdio, and headless Chromium.

The server runs as the merchant's desktop would start it: the console script, over stdio, with the
checkout page on a free port of 127.0.0.1. Its stdout can be copied to a file on the way to the
client (``tee``), so a test can check that only JSON-RPC was written there; its stderr goes to a file.

Chromium is Debian's (/usr/bin/chromium, installed by ``ensure_chromium`` in scripts/services.sh),
driven by Python playwright with ``executable_path``; ``playwright install`` is never used. Without
Chromium the browser tests FAIL, unless MCP_CHECKOUT_SKIP_BROWSER=1 asks to skip them on purpose.
"""

from __future__ import annotations

import json
import os
import re
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from mcp import StdioServerParameters

CLI = Path(sys.executable).with_name("mcp-checkout")
CHROMIUM = Path(os.environ.get("MCP_CHECKOUT_CHROMIUM", "/usr/bin/chromium"))
# The flags known to work headless as root here; playwright adds --headless and its own --user-data-dir.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOST = "127.0.0.1"


def require_chromium() -> Path:
    """Debian's Chromium, or a clear failure (a skip only when MCP_CHECKOUT_SKIP_BROWSER=1)."""
    if os.environ.get("MCP_CHECKOUT_SKIP_BROWSER") == "1":
        pytest.skip("MCP_CHECKOUT_SKIP_BROWSER=1: browser tests skipped on purpose")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}. As root: `source scripts/services.sh && ensure_chromium` "
            "(apt-get install chromium), or point MCP_CHECKOUT_CHROMIUM at a Chromium binary, or set "
            "MCP_CHECKOUT_SKIP_BROWSER=1 to skip the browser tests on purpose.",
            pytrace=False,
        )
    return CHROMIUM


def server_params(
    data_dir: Path, port: int, *, database_url: str | None = None, stdout_copy: Path | None = None
) -> StdioServerParameters:
    """``mcp-checkout --data-dir D serve`` with the checkout page on ``port``; optionally tee its stdout."""
    env = {"MCP_CHECKOUT_WEB_PORT": str(port), "MCP_CHECKOUT_WEB_HOST": LOCAL_HOST, "MCP_CHECKOUT_LOG_LEVEL": "DEBUG"}
    if database_url:
        env["MCP_CHECKOUT_DATABASE_URL"] = database_url
    args = ["--data-dir", str(data_dir), "serve"]
    if stdout_copy is None:
        return StdioServerParameters(command=str(CLI), args=args, env=env)
    # Everything the server writes to stdout goes on to the client unchanged and into stdout_copy.
    env["STDOUT_COPY"] = str(stdout_copy)
    return StdioServerParameters(
        command="/bin/sh", args=["-c", '"$0" "$@" | tee "$STDOUT_COPY"', str(CLI), *args], env=env
    )


def log_tail(stderr_log: Path, chars: int = 4000) -> str:
    return stderr_log.read_text(errors="replace")[-chars:] if stderr_log.exists() else "(no stderr log)"


def wait_for_page(base_url: str, stderr_log: Path, within: float = 20.0) -> None:
    """Wait until the checkout page answers /healthz (uvicorn starts beside the stdio loop)."""
    deadline = time.monotonic() + within
    while True:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"the checkout page never answered on {base_url}/healthz; server stderr:\n{log_tail(stderr_log)}"
            )
        time.sleep(0.1)


async def page_ready(base_url: str, stderr_log: Path, within: float = 20.0) -> None:
    """:func:`wait_for_page` for async tests (never blocks the event loop the MCP client runs on)."""
    async with httpx.AsyncClient(timeout=2) as client:
        with anyio.move_on_after(within):
            while True:
                try:
                    if (await client.get(f"{base_url}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await anyio.sleep(0.1)
    pytest.fail(f"the checkout page never answered on {base_url}/healthz; server stderr:\n{log_tail(stderr_log)}")


def token_of(url: str) -> str:
    match = re.fullmatch(r"http://127\.0\.0\.1:\d+/checkout/([A-Za-z0-9_-]{43,})", url)
    assert match, url
    return match.group(1)


def available(product: dict[str, Any], sku: str) -> int:
    return int(next(v["available"] for v in product["variants"] if v["sku"] == sku))


def off_host(urls: list[str]) -> list[str]:
    """The URLs (of those a page requested) that went anywhere but 127.0.0.1."""
    return [url for url in urls if urlsplit(url).scheme != "data" and urlsplit(url).hostname != LOCAL_HOST]


def png_facts(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the decoded image data) of a PNG; fails on anything else."""
    blob = path.read_bytes()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width = height = 0
    idat = b""
    pos = 8
    while pos < len(blob):
        (length,) = struct.unpack(">I", blob[pos : pos + 4])
        kind = blob[pos + 4 : pos + 8]
        chunk = blob[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    pixels = zlib.decompress(idat)
    return width, height, len(set(pixels))


def jsonrpc_lines(stdout_copy: Path) -> list[dict[str, Any]]:
    """Every line the server wrote to stdout, each of which must be one JSON-RPC 2.0 message."""
    messages = []
    for number, line in enumerate(stdout_copy.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except ValueError:
            pytest.fail(f"stdout line {number} is not JSON-RPC: {line[:200]!r}")
        assert isinstance(message, dict) and message.get("jsonrpc") == "2.0", f"stdout line {number}: {line[:200]!r}"
        messages.append(message)
    return messages


async def pay_in_browser(url: str) -> str:
    """A buyer opens a checkout link in headless Chromium (async API, for async tests) and pays with the offline
    gateway's test button. Returns the receipt's URL."""
    from playwright.async_api import async_playwright

    chromium = require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            response = await page.goto(url)
            assert response is not None and response.status == 200, url
            await page.get_by_test_id("pay").click()
            await page.wait_for_url(re.compile(r"/checkout/done/cs_[0-9a-f]+$"))
            return page.url
        finally:
            await browser.close()
