"""Buyer personal data is sealed at rest: a dump of the database (the real sqlite3 CLI, pg_dump) shows no
buyer email, name or address; the values read back through the server; without the key they do not."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from cryptography.fernet import Fernet
from mcp import Client
from pydantic import SecretStr
from sqlalchemy import Connection, select, text
from sqlalchemy.engine import make_url

from mcp_checkout.config import Settings
from mcp_checkout.domain import Actor
from mcp_checkout.errors import SecretKeyUnavailable
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.store import migrate
from mcp_checkout.store import orders as order_store
from mcp_checkout.store.models import orders

EMAIL = "ada.lovelace@example.org"
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 Analytical Row",
    "city": "Marylebone",
    "postal_code": "NW1 6XE",
    "country": "GB",
}
LINK_EMAIL = "grace.hopper@example.net"
BUYER_STRINGS = (EMAIL, "Ada Lovelace", "Analytical Row", LINK_EMAIL, "example.org", "example.net")


def data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    assert result.structured_content is not None
    return dict(result.structured_content)


async def buyer_flow(server: Any, services: Services, tag: str = "") -> tuple[str, str]:
    """Orders with a buyer email and address, an email-locked link opened in a session, a queued webhook
    event, a paid order: every place buyer data is written. Returns (addressed order id, linked order id)."""
    async with Client(server) as client:
        data(
            await client.call_tool(
                "create_webhook_endpoint", {"url": "http://127.0.0.1:9/hook", "events": ["order.created", "order.paid"]}
            )
        )
        cart = data(await client.call_tool("create_cart", {}))
        data(await client.call_tool("add_to_cart", {"cart_id": cart["cart_id"], "sku": "MUG-01", "quantity": 2}))
        order = data(
            await client.call_tool(
                "create_order",
                {
                    "idempotency_key": f"o1{tag}",
                    "cart_id": cart["cart_id"],
                    "email": EMAIL,
                    "shipping_address": ADDRESS,
                },
            )
        )
        linked = data(
            await client.call_tool(
                "create_checkout_link",
                {"sku": "MUG-02", "quantity": 1, "idempotency_key": f"l1{tag}", "email": LINK_EMAIL},
            )
        )
    token = linked["url"].rsplit("/", 1)[-1]
    await services.checkout.verify_email(token, LINK_EMAIL)
    intent, _ = await services.payments.ensure_intent(order["order_id"])
    gateway: Any = services.payments.gateway
    await services.payments.apply_intent(await gateway.simulate_payment(intent.id), actor=Actor.BUYER, source="test")
    return order["order_id"], linked["order_id"]


def dump(services: Services) -> str:
    """The whole database as text, by the database's own dump tool."""
    url = make_url(services.db.url)
    if url.get_backend_name() == "sqlite":
        return subprocess.run(
            ["sqlite3", str(url.database), ".dump"], capture_output=True, text=True, check=True
        ).stdout
    return subprocess.run(
        [
            "pg_dump",
            "--data-only",
            "-h",
            url.host or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "postgres",
            str(url.database),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


async def test_a_dump_shows_no_buyer_data_and_the_server_reads_it_back(seeded: Services, server: Any) -> None:
    addressed, linked = await buyer_flow(server, seeded)
    text = dump(seeded)
    assert "MUG-01" in text and addressed in text  # the dump is real and holds the orders
    for secret in BUYER_STRINGS:
        assert secret not in text
    assert "fernet:" in text
    async with Client(server) as client:
        order = data(await client.call_tool("get_order", {"order_id": addressed}))
        assert order["email"] == EMAIL and order["shipping_address"]["name"] == "Ada Lovelace"
        assert order["status"] == "paid"
        assert data(await client.call_tool("get_order", {"order_id": linked}))["email"] == LINK_EMAIL


async def test_sealed_values_do_not_open_without_the_key(seeded: Services, server: Any, settings: Settings) -> None:
    addressed, _ = await buyer_flow(server, seeded)
    stranger = build_services(settings.model_copy(update={"secret_key": SecretStr(Fernet.generate_key().decode())}))
    try:
        with pytest.raises(SecretKeyUnavailable):
            await stranger.db.read(lambda conn: order_store.get(conn, addressed))
        # Amounts and statuses stay readable for reports: only the sealed columns need the key.
        row = await stranger.db.read(lambda conn: conn.execute(select(orders.c.status, orders.c.total_minor)).all())
        assert ("paid", 3600) in [tuple(r) for r in row]
    finally:
        await stranger.close()


async def test_keys_from_a_comma_separated_setting_newest_first(settings: Settings, tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    both = build_services(settings.model_copy(update={"secret_key": SecretStr(f"{new}, {old}")}))
    only_old = build_services(settings.model_copy(update={"secret_key": SecretStr(old)}))
    try:
        sealed_by_old = only_old.keyring.seal("x@example.com")
        assert both.keyring.open(sealed_by_old) == "x@example.com"  # every key opens
        assert not both.keyring.is_current(sealed_by_old) and both.keyring.is_current(both.keyring.seal("y"))
        assert both.keyring.email_hashes("X@Example.com ")[1] == only_old.keyring.email_hash("x@example.com")
    finally:
        await both.close()
        await only_old.close()
    with pytest.raises(ValueError, match="secret key #2"):
        Settings(data_dir=tmp_path, secret_key=SecretStr(f"{new},not-a-key"))


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return str(request.getfixturevalue("fresh_pg_url"))


async def test_the_migration_seals_clear_data_written_before_it(empty_database_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=empty_database_url)
    services = build_services(settings)
    db = services.db
    now = datetime.now(UTC)
    try:
        await db.run_on_connection(lambda conn: (command.upgrade(migrate._config(conn), "0006"), conn.commit()))

        def write_clear(conn: Connection) -> None:
            order = {
                "id": "ord_old",
                "principal_id": "local",
                "client_name": "",
                "status": "paid",
                "stock_state": "committed",
            }
            order |= {"currency": "USD", "subtotal_minor": 100, "total_minor": 100, "request_fingerprint": "f"}
            order |= {"created_at": now, "updated_at": now, "expires_at": now}
            conn.execute(
                text(
                    "INSERT INTO orders (id, principal_id, client_name, status, stock_state, currency, subtotal_minor, total_minor, request_fingerprint, created_at, updated_at, expires_at, email, shipping_address) VALUES (:id, :principal_id, :client_name, :status, :stock_state, :currency, :subtotal_minor, :total_minor, :request_fingerprint, :created_at, :updated_at, :expires_at, :email, :address)"
                ),
                order | {"email": EMAIL, "address": json.dumps(ADDRESS)},
            )
            conn.execute(
                text(
                    "INSERT INTO checkout_links (id, token_hash, token_hint, order_id, principal_id, status, email_lock, created_at, updated_at, expires_at) VALUES ('lnk_old', 'h', 'h', 'ord_old', 'local', 'consumed', :lock, :now, :now, :now)"
                ),
                {"lock": LINK_EMAIL, "now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO webhook_events (id, type, order_id, body, created_at) VALUES ('evt_old', 'order.paid', 'ord_old', :body, :now)"
                ),
                {"body": json.dumps({"email": EMAIL}), "now": now},
            )
            conn.commit()

        await db.run_on_connection(write_clear)
        await migrate.upgrade(db)
        raw = await db.read(
            lambda conn: [
                tuple(r)
                for r in conn.execute(
                    text(
                        "SELECT o.email, o.shipping_address, o.email_hash, l.email_lock, l.email_hash, e.body FROM orders o JOIN checkout_links l ON l.order_id = o.id JOIN webhook_events e ON e.order_id = o.id"
                    )
                ).all()
            ]
        )
        assert len(raw) == 1
        email, address, email_hash, lock, lock_hash, body = raw[0]
        assert all(str(v).startswith("fernet:") for v in (email, address, lock, body))
        assert email_hash == services.keyring.email_hash(EMAIL) and lock_hash == services.keyring.email_hash(LINK_EMAIL)
        order = await db.read(lambda conn: order_store.get(conn, "ord_old"))
        assert order is not None and order["email"] == EMAIL and order["shipping_address"] == ADDRESS
    finally:
        await services.close()
