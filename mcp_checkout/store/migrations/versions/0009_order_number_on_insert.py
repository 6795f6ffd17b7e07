"""order numbers set by the database on insert

An order's human number (``MC-000123``) comes from its row sequence. It used to take a second statement
(INSERT … RETURNING seq, then UPDATE … SET number); a trigger now sets it as the row is inserted, so an
order costs one statement less. The format is the one ``store/orders.py`` computes for the answer:
at least six digits, zero-padded.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION orders_number() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.number IS NULL THEN
        NEW.number := 'MC-' || CASE WHEN NEW.seq < 1000000 THEN lpad(NEW.seq::text, 6, '0') ELSE NEW.seq::text END;
    END IF;
    RETURN NEW;
END $$
"""
PG_TRIGGER = "CREATE TRIGGER orders_number BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION orders_number()"
SQLITE_TRIGGER = """
CREATE TRIGGER orders_number AFTER INSERT ON orders FOR EACH ROW WHEN NEW.number IS NULL
BEGIN
    UPDATE orders SET number = 'MC-' || printf('%06d', NEW.seq) WHERE seq = NEW.seq;
END
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
    else:
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER IF EXISTS orders_number" + (" ON orders" if op.get_bind().dialect.name == "postgresql" else "")
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS orders_number()")
