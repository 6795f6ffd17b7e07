"""buyer personal data sealed at rest: emails, addresses, email locks, webhook event bodies; keyed email hashes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

Moves every clear value into sealed form (``fernet:…``) with the keyring the server bound to the connection
(``MCP_CHECKOUT_SECRET_KEY`` or ``<data dir>/secret.key``). Columns that held clear text in a narrower type
are replaced by a TEXT column (add, fill, drop, rename: no table rebuild, so no foreign key is touched).
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from mcp_checkout.store import sealing

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BATCH = 500


def _keyring() -> sealing.Keyring:
    return sealing.keyring_of(op.get_bind().dialect)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _reseal_into_text(table: str, key: str, column: str, hash_column: str | None) -> None:
    """Replace ``column`` by a TEXT column holding its values sealed (and fill the keyed email hash)."""
    conn = op.get_bind()
    op.add_column(table, sa.Column(f"{column}_sealed", sa.Text(), nullable=True))
    source = sa.table(
        table, sa.column(key), sa.column(column, sa.Text() if column != "shipping_address" else sa.JSON())
    )
    target = sa.table(
        table,
        sa.column(key),
        sa.column(f"{column}_sealed", sa.Text()),
        *([sa.column(hash_column, sa.String())] if hash_column else []),
    )
    rows = conn.execute(sa.select(source.c[key], source.c[column]).where(source.c[column].is_not(None))).all()
    for start in range(0, len(rows), _BATCH):
        keyring = _keyring()
        for row_key, value in rows[start : start + _BATCH]:
            clear = keyring.open(_as_text(value))
            values: dict[str, Any] = {f"{column}_sealed": keyring.seal(clear)}
            if hash_column:
                values[hash_column] = keyring.email_hash(clear)
            conn.execute(sa.update(target).where(target.c[key] == row_key).values(**values))
    op.drop_column(table, column)
    op.alter_column(table, f"{column}_sealed", new_column_name=column, existing_type=sa.Text(), existing_nullable=True)


def upgrade() -> None:
    op.add_column("orders", sa.Column("email_hash", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_orders_email_hash"), "orders", ["email_hash"], unique=False)
    op.add_column("checkout_links", sa.Column("email_hash", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_checkout_links_email_hash"), "checkout_links", ["email_hash"], unique=False)
    _reseal_into_text("orders", "id", "email", "email_hash")
    _reseal_into_text("orders", "id", "shipping_address", None)
    _reseal_into_text("checkout_links", "id", "email_lock", "email_hash")
    conn = op.get_bind()
    events = sa.table("webhook_events", sa.column("id"), sa.column("body", sa.Text()))
    clear = conn.execute(sa.select(events.c.id, events.c.body).where(~events.c.body.startswith(sealing.SEALED_PREFIX)))
    for event_id, body in clear.all():
        conn.execute(sa.update(events).where(events.c.id == event_id).values(body=_keyring().seal(body)))


def downgrade() -> None:
    # Sealed values stay sealed (the code of 0006 reads them only through this keyring's successor).
    op.drop_index(op.f("ix_checkout_links_email_hash"), table_name="checkout_links")
    op.drop_column("checkout_links", "email_hash")
    op.drop_index(op.f("ix_orders_email_hash"), table_name="orders")
    op.drop_column("orders", "email_hash")
