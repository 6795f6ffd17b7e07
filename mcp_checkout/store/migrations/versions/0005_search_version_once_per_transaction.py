"""search text version: bump once per transaction on PostgreSQL

Revision 0003's statement-level trigger bumped ``sku_fts_version`` after every statement that
changed SKU text. A transaction of many such statements (an ``executemany`` runs one per row)
then updated that one row again and again, and PostgreSQL walks the row's growing chain of
versions on each update: quadratic (100,000 single-row updates in one transaction took minutes).
Readers only need the version to differ once the transaction commits, so the trigger now bumps
it on the first such statement of a transaction and remembers that in a transaction-local setting.
(A savepoint rolled back undoes both the bump and the setting.) SQLite updates the row in place,
so its row triggers are left as they are.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ONCE_PER_TRANSACTION = """
CREATE OR REPLACE FUNCTION sku_fts_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('mcp_checkout.sku_fts_bumped', true), '') = '' THEN
        UPDATE sku_fts_version SET text_version = text_version + 1 WHERE id = 1;
        PERFORM set_config('mcp_checkout.sku_fts_bumped', 'yes', true);
    END IF;
    RETURN NULL;
END $$
"""

EVERY_STATEMENT = """
CREATE OR REPLACE FUNCTION sku_fts_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN UPDATE sku_fts_version SET text_version = text_version + 1 WHERE id = 1; RETURN NULL; END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ONCE_PER_TRANSACTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(EVERY_STATEMENT)
