"""``mcp-checkout import-catalog`` and ``seed-demo`` as a merchant runs them: the real console script."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

CLI = Path(sys.executable).with_name("mcp-checkout")
GOOD = (
    "product_name,sku_code,product_description,sku_name,unit_price,quantity_on_hand,category\n"
    "Stoneware Mug,MUG-1,A 12 oz mug.,Blue,18.00,10,Kitchen\n"
    "Stoneware Mug,MUG-2,,Green,18.00,3,\n"
)


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MCP_CHECKOUT_")}
    return subprocess.run(
        [str(CLI), "--data-dir", str(tmp_path / "data"), *args],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip


def skus(tmp_path: Path) -> dict[str, tuple[int, int]]:
    with sqlite3.connect(tmp_path / "data" / "checkout.db") as conn:
        return {
            sku: (price, stock)
            for sku, price, stock in conn.execute("SELECT sku, price_minor, stock_on_hand FROM skus")
        }


def test_import_a_good_file(tmp_path: Path) -> None:
    (tmp_path / "catalog.csv").write_text(GOOD)
    done = run(tmp_path, "import-catalog", "catalog.csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "Imported catalog.csv: 2 rows read; 2 SKUs created, 0 updated, 0 invalid rows skipped." in done.stderr
    assert skus(tmp_path) == {"MUG-1": (1800, 10), "MUG-2": (1800, 3)}

    again = run(tmp_path, "import-catalog", "catalog.csv")
    assert again.returncode == 0 and "0 SKUs created, 2 updated" in again.stderr


def test_a_bad_file_is_rejected_with_line_numbers_and_nothing_changes(tmp_path: Path) -> None:
    (tmp_path / "catalog.csv").write_text(GOOD + "Bad Mug,MUG-3,,,19.999,1,\nWorse Mug,MUG-4,,,abc,-2,\n")
    done = run(tmp_path, "import-catalog", "catalog.csv")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "catalog.csv was not imported: 2 of 4 rows have problems" in done.stderr
    assert "--skip-invalid" in done.stderr
    assert "  line 4 (SKU MUG-3): unit_price '19.999' has 3 decimal places" in done.stderr
    assert "  line 5 (SKU MUG-4): unit_price 'abc' is not a price" in done.stderr
    assert skus(tmp_path) == {}

    dry = run(tmp_path, "import-catalog", "--dry-run", "--skip-invalid", "catalog.csv")
    assert dry.returncode == 0 and dry.stdout == ""
    assert "nothing was changed" in dry.stderr and "2 SKUs would be created" in dry.stderr
    assert skus(tmp_path) == {}

    skipped = run(tmp_path, "import-catalog", "--skip-invalid", "catalog.csv")
    assert skipped.returncode == 0 and skipped.stdout == ""
    assert "2 SKUs created, 0 updated, 2 invalid rows skipped" in skipped.stderr
    assert "line 4 (SKU MUG-3)" in skipped.stderr
    assert set(skus(tmp_path)) == {"MUG-1", "MUG-2"}


def test_at_most_fifty_problems_are_listed(tmp_path: Path) -> None:
    rows = "".join(f"Mug,M-{n},,,{n}.999,1,\n" for n in range(120))
    (tmp_path / "catalog.csv").write_text(GOOD + rows)
    done = run(tmp_path, "import-catalog", "catalog.csv")
    assert done.returncode == 1
    listed = [line for line in done.stderr.splitlines() if line.startswith("  line ")]
    assert len(listed) == 50
    assert listed[0].startswith("  line 4 (SKU M-0)") and listed[-1].startswith("  line 53 (SKU M-49)")
    assert "  ... and 70 more" in done.stderr


def test_file_level_errors(tmp_path: Path) -> None:
    (tmp_path / "no-sku.csv").write_text("product_name,unit_price\nMug,1\n")
    missing_column = run(tmp_path, "import-catalog", "no-sku.csv")
    assert missing_column.returncode == 1 and missing_column.stdout == ""
    assert "missing required column sku_code" in missing_column.stderr

    (tmp_path / "latin1.csv").write_bytes("product_name,sku_code\nCafé,C-1\n".encode("latin-1"))
    latin1 = run(tmp_path, "import-catalog", "latin1.csv")
    assert latin1.returncode == 1 and "not UTF-8 text" in latin1.stderr and "line 2" in latin1.stderr

    nowhere = run(tmp_path, "import-catalog", "nope.csv")
    assert nowhere.returncode == 1 and "no such file" in nowhere.stderr
    assert "Traceback" not in nowhere.stderr + latin1.stderr + missing_column.stderr


def test_seed_demo_twice(tmp_path: Path) -> None:
    first = run(tmp_path, "seed-demo")
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""
    assert "Demo catalog ready: 57 products, 82 SKUs (82 created, 0 updated)." in first.stderr
    second = run(tmp_path, "seed-demo")
    assert second.returncode == 0 and "(0 created, 82 updated)" in second.stderr
    assert len(skus(tmp_path)) == 82


def test_map_reads_a_file_with_other_headers_and_a_bad_map_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "lager.csv").write_text("Artikelnummer,Bezeichnung,Preis,Bestand\nA-1,Kaffeebecher,12.50,7\n")
    done = run(tmp_path, "import-catalog", "lager.csv", "--map", "Artikelnummer=sku_code", "--map",
               "Bezeichnung=product_name", "--map", "Preis=unit_price", "--map", "Bestand=quantity_on_hand")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert skus(tmp_path) == {"A-1": (1250, 7)}
    bad = run(tmp_path, "import-catalog", "lager.csv", "--map", "Farbe")
    assert bad.returncode == 2 and "COLUMN=field" in bad.stderr and "Traceback" not in bad.stderr
    unknown = run(tmp_path, "import-catalog", "lager.csv", "--map", "Farbe=colour")
    assert unknown.returncode == 1 and "'colour' is not a catalog field" in unknown.stderr
