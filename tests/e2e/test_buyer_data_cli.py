"""The operator's buyer-data commands, as run at a shell: `keys rotate-secret`, `erase-buyer`, `audit`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from buyerflow import EMAIL, LINK_EMAIL, buyer_flow, dump
from conftest import SMALL_CATALOG
from cryptography.fernet import Fernet
from pydantic import SecretStr
from servers import CLI, cli, server_env

from mcp_checkout.config import Settings
from mcp_checkout.domain import utc_now
from mcp_checkout.server import build_server
from mcp_checkout.service.audit import OPERATOR
from mcp_checkout.service.container import build_services
from mcp_checkout.store.catalog_write import upsert_catalog


async def test_rotate_then_erase_then_audit_from_the_command_line(tmp_path: Path) -> None:
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    base = {"MCP_CHECKOUT_DATA_DIR": str(tmp_path), "MCP_CHECKOUT_LOG_LEVEL": "DEBUG"}
    cli(server_env(base | {"MCP_CHECKOUT_SECRET_KEY": key_a}), "migrate")
    settings = Settings(data_dir=tmp_path, secret_key=SecretStr(key_a), sweep_interval_seconds=3600)
    services = build_services(settings)
    try:
        await services.db.write(lambda conn: upsert_catalog(conn, SMALL_CATALOG, utc_now()))
        paid, _ = await buyer_flow(build_server(settings), services)
    finally:
        await services.close()

    rotated = cli(server_env(base | {"MCP_CHECKOUT_SECRET_KEY": f"{key_b},{key_a}"}), "keys", "rotate-secret")
    assert "re-sealed" in rotated.stderr
    only_b = server_env(base | {"MCP_CHECKOUT_SECRET_KEY": key_b})
    refused = subprocess.run([str(CLI), "erase-buyer", EMAIL], capture_output=True, text=True, env=only_b, check=False)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    erased = json.loads(cli(only_b, "erase-buyer", EMAIL, "--yes").stdout)
    assert erased["orders_erased"] == 1
    events = json.loads(cli(only_b, "audit", "--json").stdout)["events"]
    actions = [event["action"] for event in events]
    assert actions[0] == "buyer.erase" and "secret.rotate" in actions
    assert {event["actor"] for event in events if event["action"] in ("buyer.erase", "secret.rotate")} == {"operator"}
    lines = cli(only_b, "audit", "--action", "buyer.erase").stdout
    assert "buyer.erase" in lines and EMAIL not in lines
    for output in (rotated.stderr, lines):
        assert EMAIL not in output and LINK_EMAIL not in output and key_a not in output and key_b not in output

    check = build_services(Settings(data_dir=tmp_path, secret_key=SecretStr(key_b)))
    try:
        order = await check.orders.get(OPERATOR, paid)
        assert order.email is None and order.status == "paid"
        text = dump(check)
        assert EMAIL not in text and LINK_EMAIL not in text and "fernet:" in text
    finally:
        await check.close()
