"""at most one live checkout link per order; link tokens sealed for idempotent replays

A partial unique index allows one link per order in a live state (``active`` or ``in_session``). Orders
that already had several live links keep the newest; the older ones are revoked, pointing at it.
``token_sealed`` holds a keyed link's token sealed with the server's secret key (Fernet), so a retried
``create_checkout_link`` can answer with the same URL; the token itself is still stored only as a hash.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

LIVE = "status IN ('active', 'in_session')"
REVOKE_OLDER = """
UPDATE checkout_links SET status = 'revoked', replaced_by = (
    SELECT newest.id FROM checkout_links AS newest
    WHERE newest.order_id = checkout_links.order_id AND newest.status IN ('active', 'in_session')
    ORDER BY newest.created_at DESC, newest.id DESC LIMIT 1
)
WHERE status IN ('active', 'in_session') AND id <> (
    SELECT newest.id FROM checkout_links AS newest
    WHERE newest.order_id = checkout_links.order_id AND newest.status IN ('active', 'in_session')
    ORDER BY newest.created_at DESC, newest.id DESC LIMIT 1
)
"""


def upgrade() -> None:
    op.add_column("checkout_links", sa.Column("token_sealed", sa.String(length=400), nullable=True))
    op.execute(REVOKE_OLDER)
    op.create_index(
        "ux_checkout_links_live_order",
        "checkout_links",
        ["order_id"],
        unique=True,
        sqlite_where=sa.text(LIVE),
        postgresql_where=sa.text(LIVE),
    )


def downgrade() -> None:
    op.drop_index("ux_checkout_links_live_order", table_name="checkout_links")
    with op.batch_alter_table("checkout_links") as batch:
        batch.drop_column("token_sealed")
