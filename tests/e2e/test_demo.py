"""`mcp-checkout demo` (what `make demo` runs) plays the whole story end to end and exits 0."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.e2e.servers import CLI, server_env


def test_the_demo_sells_a_mug_that_ships_and_delivers_signed_webhooks(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(CLI), "--data-dir", str(tmp_path), "demo"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=server_env({"COLUMNS": "200"}),
    )
    transcript = done.stdout
    assert done.returncode == 0, transcript[-3000:] + done.stderr[-3000:]
    assert "replayed: True → the same order" in transcript
    assert "reached: True after" in transcript and "is paid; stock committed; link consumed" in transcript
    assert "order.paid for MC-" in transcript and "signature ✓ verified" in transcript
    # Issue 12's story: the merchant's rates and code price the order; the buyer pays its total; it ships.
    flat = " ".join(transcript.split())
    assert "subtotal $36.00, discount $3.60, shipping $5.99, tax $2.35 → total $40.74" in flat
    assert "the gateway took $40.74: the order's total $40.74" in flat
    assert "is fulfilled: UPS 1Z999AA10123456784" in flat
    assert "order.fulfilled for MC-000001 (fulfilled), Standard Webhooks signature ✓ verified" in flat
    assert "HTTP 410" in transcript  # the link is single-use
    # Act 2 (issue 13): a UCP platform buys over REST from serve --http: discovery → checkout → buyer, fulfilment
    # and discount → complete → requires_escalation → the buyer pays on the page → completed.
    assert (
        "platform → GET /.well-known/ucp" in flat
        and "UCP 2026-04-08: dev.ucp.shopping over rest http://127.0.0.1:" in flat
    )
    assert "incomplete: subtotal 18.00 → total 18.00 USD recoverable shipping_address_required" in flat
    assert "incomplete: subtotal 18.00, discount -1.80, tax 1.17 → total 17.37 USD" in flat
    ucp_total = "subtotal 18.00, discount -1.80, fulfillment 5.99, tax 1.17 → total 23.36 USD"
    assert f"ready_for_complete: {ucp_total}" in flat
    assert f"requires_escalation: {ucp_total} requires_buyer_input payment_required" in flat
    assert "page ✓ HTTP 200, total $23.36, test mode" in flat
    assert f"completed: {ucp_total}" in flat and "UCP checkout completed: order MC-000002" in flat
    assert "buyer API key mcpk_test_" in transcript and not re.search(
        r"mcpk_\w+_[0-9a-f]{12}_", transcript
    )  # no secret
    assert "whsec_" not in transcript.replace("whsec_…", "")  # the secret itself is never printed
    # The demo ran on its own store beside the merchant's, and said so; the merchant's store holds nothing.
    demo_dir = (tmp_path / "demo").resolve()
    assert f"demo store: {demo_dir}" in " ".join(transcript.split())
    assert (demo_dir / "checkout.db").is_file()
    assert not (tmp_path / "checkout.db").exists()
    # Buyer data is sealed at rest: the database's own dump holds no email (issue 10's "Done when").
    dump = subprocess.run(
        ["sqlite3", str(demo_dir / "checkout.db"), ".dump"], capture_output=True, text=True, check=True
    )
    assert "INSERT INTO orders" in dump.stdout and "fernet:" in dump.stdout
    assert [line for line in dump.stdout.splitlines() if "@" in line] == []  # sqlite3 … .dump | grep -c '@' → 0
