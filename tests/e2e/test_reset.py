"""`mcp-checkout reset` and `delete-product` from the command line, as subprocesses on a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.test_doctor import run


def doctor_checks(data_dir: Path) -> dict[str, Any]:
    report = json.loads(run(data_dir, "doctor", "--json").stdout)
    return {check["name"]: check for check in report["checks"]}


def test_reset_refuses_without_yes_and_empties_the_store_with_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert run(data_dir, "seed-demo").returncode == 0
    refused = run(data_dir, "reset")
    assert refused.returncode == 2
    assert "Nothing was deleted" in refused.stderr and "mcp-checkout reset --yes" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert str(data_dir.resolve() / "checkout.db") in refused.stderr  # says which store
    assert doctor_checks(data_dir)["catalog"]["status"] == "ok"  # untouched

    done = run(data_dir, "reset", "--yes")
    assert done.returncode == 0, done.stderr
    assert "Store reset (SQLite" in done.stderr and "API keys and the audit log kept" in done.stderr
    catalog = doctor_checks(data_dir)["catalog"]
    assert catalog["status"] == "fail" and "empty" in catalog["detail"]


def test_delete_product_from_the_command_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert run(data_dir, "seed-demo").returncode == 0
    demo = doctor_checks(data_dir)["demo_data"]["detail"]
    done = run(data_dir, "delete-product", "--sku", "KIT-MUG-WHT")
    assert done.returncode == 0, done.stderr
    assert "deleted: KIT-MUG-WHT" in done.stderr
    assert doctor_checks(data_dir)["demo_data"]["detail"] != demo
    missing = run(data_dir, "delete-product", "--sku", "KIT-MUG-WHT")
    assert missing.returncode == 1 and "No SKU 'KIT-MUG-WHT'" in missing.stderr and "Traceback" not in missing.stderr
    neither = run(data_dir, "delete-product")
    assert neither.returncode == 2 and "--sku" in neither.stderr
