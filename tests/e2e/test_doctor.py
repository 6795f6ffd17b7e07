"""`mcp-checkout doctor`: the go-live checklist from the command line, as a subprocess (exit code and JSON)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CLI = Path(sys.executable).with_name("mcp-checkout")
SECRET = "sk_live_" + "DoNotPrintMe" * 2
LIVE_SETTINGS = [
    "MCP_CHECKOUT_STRIPE_SECRET_KEY",
    "MCP_CHECKOUT_STRIPE_PUBLISHABLE_KEY",
    "MCP_CHECKOUT_STRIPE_WEBHOOK_SECRET",
    "MCP_CHECKOUT_PUBLIC_BASE_URL",
]


def run(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("MCP_CHECKOUT_")}
    return subprocess.run(
        [str(CLI), "--data-dir", str(data_dir), *args],
        capture_output=True, text=True, timeout=120, env={**clean, **(env or {})}, check=False,
    )  # fmt: skip


def doctor(data_dir: Path, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    done = run(data_dir, "doctor", "--json", env=env)
    assert SECRET not in done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout)


def status(report: dict[str, Any]) -> dict[str, str]:
    return {check["name"]: check["status"] for check in report["checks"]}


def test_a_fresh_demo_is_ready_for_test_mode_and_names_each_missing_live_setting(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert run(data_dir, "seed-demo").returncode == 0
    code, report = doctor(data_dir)
    assert code == 0, report
    assert (report["ready"], report["mode"], report["ready_for_live"]) == (True, "offline", False)
    # seed-demo sets no shipping rate (the demo session adds them), so its mugs would ship unasked: a warning
    assert {name: state for name, state in status(report).items() if state != "ok"} == {"shipping": "warn"}, report
    assert [item["setting"] for item in report["live_missing"]] == LIVE_SETTINGS
    url = next(item for item in report["live_missing"] if item["setting"] == "MCP_CHECKOUT_PUBLIC_BASE_URL")
    assert "https://" in url["detail"] and "http://127.0.0.1:8765" in url["detail"]

    table = run(data_dir, "doctor")  # the human table: same verdict, same exit code
    assert table.returncode == 0
    assert "READY for test mode" in table.stdout
    for setting in LIVE_SETTINGS:
        assert setting in table.stdout


@pytest.mark.parametrize(
    ("setup", "env", "failing"),
    [
        pytest.param("nothing", {}, "schema", id="unmigrated-database"),
        pytest.param("migrate", {}, "catalog", id="empty-catalog"),
        pytest.param(
            "seed-demo",
            {"MCP_CHECKOUT_STRIPE_SECRET_KEY": SECRET, "MCP_CHECKOUT_STRIPE_PUBLISHABLE_KEY": "pk_test_abcdefgh12345"},
            "stripe_keys",
            id="live-secret-with-test-publishable-key",
        ),
        pytest.param(
            "seed-demo",
            {
                "MCP_CHECKOUT_STRIPE_SECRET_KEY": SECRET,
                "MCP_CHECKOUT_STRIPE_PUBLISHABLE_KEY": "pk_live_abcdefgh12345",
                "MCP_CHECKOUT_STRIPE_WEBHOOK_SECRET": "whsec_abcdefgh12345",
            },
            "public_base_url",
            id="live-keys-on-plain-http",
        ),
        pytest.param(
            "nothing",
            {"MCP_CHECKOUT_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/nothing"},
            "database",
            id="unreachable-database",
        ),
    ],
)
def test_a_broken_setup_exits_1_naming_the_failed_check(
    tmp_path: Path, setup: str, env: dict[str, str], failing: str
) -> None:
    data_dir = tmp_path / "data"
    if setup != "nothing":
        assert run(data_dir, setup).returncode == 0
    code, report = doctor(data_dir, env)
    assert code == 1
    assert report["ready"] is False
    assert status(report)[failing] == "fail", report


def test_live_keys_on_https_are_ready_for_live(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert run(data_dir, "seed-demo").returncode == 0
    code, report = doctor(
        data_dir,
        {
            "MCP_CHECKOUT_STRIPE_SECRET_KEY": SECRET,
            "MCP_CHECKOUT_STRIPE_PUBLISHABLE_KEY": "pk_live_abcdefgh12345",
            "MCP_CHECKOUT_STRIPE_WEBHOOK_SECRET": "whsec_abcdefgh12345",
            "MCP_CHECKOUT_PUBLIC_BASE_URL": "https://shop.example",
        },
    )
    assert code == 0, report
    assert (report["ready"], report["mode"], report["ready_for_live"], report["live_missing"]) == (
        True,
        "stripe_live",
        True,
        [],
    )


def test_an_endpoint_saved_in_test_mode_on_loopback_fails_doctor_once_the_keys_are_live(tmp_path: Path) -> None:
    """Issue 10 #5: an http://127.0.0.1 receiver registered while testing must not pass the live check."""
    data_dir = tmp_path / "data"
    assert run(data_dir, "seed-demo").returncode == 0
    added = run(data_dir, "webhooks", "add", "http://127.0.0.1:9/hooks", "--events", "order.paid")
    assert added.returncode == 0, added.stderr
    endpoint_id = added.stdout.split()[0]
    code, report = doctor(data_dir)
    assert code == 0 and status(report)["webhook_endpoints"] == "ok"  # test mode: local receivers are fine
    live = {
        "MCP_CHECKOUT_STRIPE_SECRET_KEY": SECRET,
        "MCP_CHECKOUT_STRIPE_PUBLISHABLE_KEY": "pk_live_abcdefgh12345",
        "MCP_CHECKOUT_STRIPE_WEBHOOK_SECRET": "whsec_abcdefgh12345",
        "MCP_CHECKOUT_PUBLIC_BASE_URL": "https://shop.example",
    }
    code, report = doctor(data_dir, live)
    assert code == 1 and (report["ready"], report["ready_for_live"]) == (False, False)
    check = next(check for check in report["checks"] if check["name"] == "webhook_endpoints")
    assert check["status"] == "fail" and endpoint_id in check["detail"] and "https only" in check["detail"]
