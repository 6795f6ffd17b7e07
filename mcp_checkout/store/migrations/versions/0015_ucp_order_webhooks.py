"""UCP order webhooks: an endpoint's kind (standard | ucp), the orders a UCP platform's endpoint follows,
and the business's message-signing keys (ES256, private key sealed)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="standard"))
    op.create_table(
        "order_webhook_targets",
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("endpoint_id", sa.String(40), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_order_webhook_targets_order_id_orders", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"], ["webhook_endpoints.id"], name="fk_order_webhook_targets_endpoint_id_webhook_endpoints"
        ),
        sa.PrimaryKeyConstraint("order_id", "endpoint_id", name="pk_order_webhook_targets"),
    )
    op.create_table(
        "signing_keys",
        sa.Column("generation", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("retired_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("generation", name="pk_signing_keys"),
        sa.UniqueConstraint("kid", name="uq_signing_keys_kid"),
    )


def downgrade() -> None:
    op.drop_table("signing_keys")
    op.drop_table("order_webhook_targets")
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("kind")
