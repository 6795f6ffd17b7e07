"""archived SKUs: a SKU with orders is archived (hidden from search, unsellable) instead of deleted

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch rebuild of skus on SQLite would drop its search-index triggers.
    op.add_column("skus", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    # "Has this SKU been ordered?" decides between archiving and deleting it.
    op.create_index("ix_order_items_sku", "order_items", ["sku"])


def downgrade() -> None:
    op.drop_index("ix_order_items_sku", table_name="order_items")
    op.execute("ALTER TABLE skus DROP COLUMN archived_at")
