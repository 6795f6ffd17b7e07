"""Operational failures read as one line, never a traceback, from every command (the real console script).

Each case runs every command at once, as separate processes: a PostgreSQL that is down, a data directory
that cannot be used, a bad setting. Exit code 2 means the configuration must change, 1 a failure at run
time. More kinds of each failure are checked in process (tests/unit/test_cli.py): every start-up costs
seconds on a loaded machine.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.servers import CLI, server_env
from tests.support import free_port

TIMEOUT = 240  # seven Python start-ups at once on a shared two-core machine

DOWN = "postgresql+asyncpg://shop:hunter2-password@127.0.0.1:1/shop"  # nothing listens on port 1


def commands(tmp_path: Path) -> dict[str, list[str]]:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("product_name,sku_code,unit_price,quantity_on_hand\nMug,MUG-1,9.00,3\n")
    return {
        "keys": ["keys", "list"],
        "migrate": ["migrate"],
        "import-catalog": ["import-catalog", str(catalog)],
        "webhooks": ["webhooks", "add", "https://erp.example/hooks", "--events", "order.paid"],
        "seed-demo": ["seed-demo"],
        "store show": ["store", "show"],
        "serve": ["serve"],
        "serve --http": ["serve", "--http", "--port", str(free_port())],
    }


def run_all(
    tmp_path: Path, env: dict[str, str], *options: str, only: tuple[str, ...] = ()
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every command (or ``only`` these) at once with ``options`` after it; stdin is closed (serve over
    stdio sees EOF)."""
    started = {
        name: subprocess.Popen(
            [str(CLI), *args, *options],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=server_env(env),
            cwd=tmp_path,
        )
        for name, args in commands(tmp_path).items()
        if not only or name in only
    }
    done = {}
    for name, process in started.items():
        try:
            out, err = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            for other in started.values():
                other.kill()
            pytest.fail(f"mcp-checkout {name} did not exit within {TIMEOUT}s")
        done[name] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return done


def assert_one_line_error(
    results: dict[str, subprocess.CompletedProcess[str]], exit_code: int, *phrases: str, secret: str = ""
) -> None:
    for name, done in results.items():
        output = done.stdout + done.stderr
        assert "Traceback" not in output, f"{name}:\n{output}"
        assert done.returncode == exit_code, f"{name} exited {done.returncode}, not {exit_code}:\n{output}"
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, f"{name}: expected one error line:\n{done.stderr}"
        for phrase in phrases:
            assert phrase in errors[0], f"{name}: {phrase!r} not in {errors[0]!r}"
        if secret:
            assert secret not in output, f"{name} printed a secret:\n{output}"
        assert done.stdout == "", f"{name} wrote to stdout (the stdio transport's channel):\n{done.stdout}"


def test_postgresql_down_is_a_runtime_error_naming_the_database_setting(tmp_path: Path) -> None:
    results = run_all(tmp_path, {"MCP_CHECKOUT_DATABASE_URL": DOWN})
    assert_one_line_error(
        results,
        1,
        "cannot reach the database at postgresql+asyncpg://shop:***@127.0.0.1:1/shop",
        "Start PostgreSQL",
        "MCP_CHECKOUT_DATABASE_URL",
        secret="hunter2-password",
    )


def test_an_unwritable_data_directory_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    results = run_all(tmp_path, {}, "--data-dir", "a-file/data")  # the global option after the command
    assert_one_line_error(results, 2, "data directory", "--data-dir or MCP_CHECKOUT_DATA_DIR")


def test_a_bad_setting_is_a_configuration_error_naming_the_variable(tmp_path: Path) -> None:
    results = run_all(tmp_path, {"MCP_CHECKOUT_ORDER_TTL_MINUTES": "0", "MCP_CHECKOUT_DATA_DIR": str(tmp_path)})
    assert_one_line_error(results, 2, "MCP_CHECKOUT_ORDER_TTL_MINUTES='0'", "greater than or equal to 1")


def test_serve_says_on_stderr_what_it_serves(tmp_path: Path) -> None:
    """stdio: MCP over stdio and the page's address; then EOF on stdin ends it cleanly."""
    port = free_port()
    env = server_env({"MCP_CHECKOUT_WEB_PORT": str(port)})
    done = subprocess.run(
        [str(CLI), "serve", "--data-dir", str(tmp_path / "data")],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "serving MCP over stdio; checkout page on " + f"http://127.0.0.1:{port}" in done.stderr
    assert f"SQLite {(tmp_path / 'data' / 'checkout.db').resolve()}" in done.stderr

    http_port = free_port()
    log = tmp_path / "http.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [str(CLI), "serve", "--http", "--port", str(http_port), "--data-dir", str(tmp_path / "data")],
            stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, env=env,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + TIMEOUT
        while "Uvicorn running" not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert f"serving MCP over streamable HTTP at http://127.0.0.1:{http_port}/mcp" in log.read_text()
