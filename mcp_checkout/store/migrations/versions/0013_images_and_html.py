"""product images and HTML descriptions from shop exports: skus.image_url, products.description_html

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: a batch rebuild of skus on SQLite would drop its search-index triggers.
    op.add_column("skus", sa.Column("image_url", sa.String(length=2048), nullable=False, server_default=""))
    op.add_column("products", sa.Column("description_html", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    op.execute("ALTER TABLE products DROP COLUMN description_html")
    op.execute("ALTER TABLE skus DROP COLUMN image_url")
