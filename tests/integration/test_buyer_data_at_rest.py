"""Buyer personal data is sealed at rest: a dump of the database (the real sqlite3 CLI, pg_dump) shows no
buyer email, name or address; the values read back through the server; without the key they do not."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from buyerflow import ADDRESS, BUYER_STRINGS, EMAIL, LINK_EMAIL, buyer_flow, data, dump
from cryptography.fernet import Fernet
from mcp import Client
from pydantic import SecretStr
from sqlalchemy import Connection, select, text

from mcp_checkout.config import Settings
from mcp_checkout.errors import SecretKeyUnavailable
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.store import migrate
from mcp_checkout.store import orders as order_store
from mcp_checkout.store.models import orders, webhook_endpoints, webhook_events


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


# ---------------------------------------------------------------- erasure
async def test_erase_buyer_data_over_mcp_cancels_open_orders_and_leaves_tombstones(
    seeded: Services, server: Any
) -> None:
    paid, linked = await buyer_flow(server, seeded)
    async with Client(server) as client:
        open_order = data(
            await client.call_tool(
                "create_order", {"idempotency_key": "open", "email": EMAIL, "items": [{"sku": "MUG-01", "quantity": 3}]}
            )
        )
        mug = data(await client.call_tool("get_product", {"sku": "MUG-01"}))["variants"][0]["available"]
        erased = data(await client.call_tool("erase_buyer_data", {"email": EMAIL.upper()}))
        assert erased["canceled_order_ids"] == [open_order["order_id"]]
        assert erased["orders_erased"] == 2 and erased["webhook_events_scrubbed"] >= 2
        assert data(await client.call_tool("get_product", {"sku": "MUG-01"}))["variants"][0]["available"] == mug + 3
        kept = data(await client.call_tool("get_order", {"order_id": paid}))
        assert kept["email"] is None and kept["shipping_address"] is None
        assert kept["status"] == "paid" and kept["total"]["amount"] == 3600 and kept["lines"][0]["quantity"] == 2
        canceled = data(await client.call_tool("get_order", {"order_id": open_order["order_id"]}))
        assert canceled["status"] == "canceled" and canceled["email"] is None
        again = data(await client.call_tool("erase_buyer_data", {"email": EMAIL}))
        assert again["orders_erased"] == 0 and again["canceled_order_ids"] == []
        events = data(await client.call_tool("list_audit_events", {"action": "buyer.erase"}))["events"]
        assert len(events) == 2 and events[1]["after"]["orders"] == 2 and events[1]["actor"] == "merchant"
        # The other buyer is untouched.
        assert data(await client.call_tool("get_order", {"order_id": linked}))["email"] == LINK_EMAIL
    bodies = await seeded.db.read(lambda conn: conn.execute(select(webhook_events.c.body)).scalars().all())
    assert bodies and not any(EMAIL in body or "Ada Lovelace" in body for body in bodies)
    assert any('"email":"[erased]"' in body for body in bodies)
    text = dump(seeded)
    assert EMAIL not in text and EMAIL.split("@")[0] not in str(events)


async def test_buyers_cannot_erase(seeded: Services) -> None:
    from mcp_checkout.domain import Principal
    from mcp_checkout.errors import Forbidden

    with pytest.raises(Forbidden):
        await seeded.buyer_data.erase(Principal(id="key:b", kind="buyer"), EMAIL)


# ---------------------------------------------------------------- key rotation
async def test_rotate_secret_reseals_everything_and_survives_an_interruption(
    settings: Settings, seeded: Services, server: Any
) -> None:
    from mcp_checkout.server import build_server
    from mcp_checkout.service.audit import OPERATOR

    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with_a = settings.model_copy(update={"secret_key": SecretStr(key_a)})
    services_a = build_services(with_a)
    try:
        paid, _ = await buyer_flow(build_server(with_a), services_a)
    finally:
        await services_a.close()

    rotating = build_services(settings.model_copy(update={"secret_key": SecretStr(f"{key_b},{key_a}")}))
    try:

        class Interrupted(Exception):
            pass

        def stop_after_first(table: str, changed: int) -> None:
            raise Interrupted  # the operator's Ctrl-C after one committed batch

        with pytest.raises(Interrupted):
            await rotating.buyer_data.rotate_secret(OPERATOR, batch_size=1, after_batch=stop_after_first)
        first = await rotating.audit.list_events(OPERATOR, action="secret.rotate")
        assert [e.after for e in first.events] == [{"table": "orders", "resealed": 1}]
        done = await rotating.buyer_data.rotate_secret(OPERATOR, batch_size=2)
        assert done.resealed["orders"] >= 1 and done.resealed["webhook_events"] >= 2
        assert done.resealed["checkout_links"] >= 1 and done.resealed["webhook_endpoints"] == 1
        assert sum((await rotating.buyer_data.rotate_secret(OPERATOR)).resealed.values()) == 0  # idempotent
    finally:
        await rotating.close()

    only_b = settings.model_copy(update={"secret_key": SecretStr(key_b)})
    services_b = build_services(only_b)
    try:
        async with Client(build_server(only_b)) as client:
            order = data(await client.call_tool("get_order", {"order_id": paid}))
            assert order["email"] == EMAIL and order["shipping_address"] == ADDRESS | {"line2": None, "region": None}
            erased = data(await client.call_tool("erase_buyer_data", {"email": LINK_EMAIL}))  # hash re-keyed too
            assert erased["orders_erased"] == 1
        secret = await services_b.db.read(lambda conn: conn.execute(select(webhook_endpoints.c.secret)).scalar_one())
        assert services_b.keyring.open(secret).startswith("whsec_")
        bodies = await services_b.db.read(lambda conn: conn.execute(select(webhook_events.c.body)).scalars().all())
        assert all(body.startswith("{") for body in bodies)
    finally:
        await services_b.close()
