"""search text version

A counter that moves whenever the searchable text of the catalog changes (a SKU inserted or
deleted, or its title, sku, category or search_text updated), in the same transaction as the
change. ``store.catalog`` keeps the ranking of broad queries (thousands of matches) per process and
reuses it only while this counter is unchanged, so a common-term search does not re-rank ~10,000
matches on every call. Stock and price updates do not move it: rankings depend on text only.

The table's name starts with ``sku_fts`` so that it counts among the search objects that
autogenerate ignores (``migrate.SEARCH_OBJECTS``), like the FTS5 table and the tsvector column.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SQLITE = [
    "CREATE TABLE sku_fts_version (id INTEGER PRIMARY KEY CHECK (id = 1), text_version INTEGER NOT NULL)",
    "INSERT INTO sku_fts_version (id, text_version) VALUES (1, 0)",
    # SQLite has row triggers only: one tiny in-place update per changed row (~2 us).
    "CREATE TRIGGER sku_fts_version_insert AFTER INSERT ON skus BEGIN "
    "UPDATE sku_fts_version SET text_version = text_version + 1 WHERE id = 1; END",
    "CREATE TRIGGER sku_fts_version_delete AFTER DELETE ON skus BEGIN "
    "UPDATE sku_fts_version SET text_version = text_version + 1 WHERE id = 1; END",
    "CREATE TRIGGER sku_fts_version_update AFTER UPDATE OF title, sku, category, search_text ON skus BEGIN "
    "UPDATE sku_fts_version SET text_version = text_version + 1 WHERE id = 1; END",
]

POSTGRESQL = [
    "CREATE TABLE sku_fts_version (id integer PRIMARY KEY CHECK (id = 1), text_version bigint NOT NULL)",
    "INSERT INTO sku_fts_version (id, text_version) VALUES (1, 0)",
    "CREATE FUNCTION sku_fts_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN UPDATE sku_fts_version SET text_version = text_version + 1 WHERE id = 1; RETURN NULL; END $$",
    # Once per statement, not per row: a 100,000-row import bumps it a handful of times.
    "CREATE TRIGGER sku_fts_version_bump AFTER INSERT OR DELETE OR UPDATE OF title, sku, category, search_text "
    "ON skus "
    "FOR EACH STATEMENT EXECUTE FUNCTION sku_fts_version_bump()",
    "CREATE TRIGGER sku_fts_version_truncate AFTER TRUNCATE ON skus "
    "FOR EACH STATEMENT EXECUTE FUNCTION sku_fts_version_bump()",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE if sqlite else POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("sku_fts_version_insert", "sku_fts_version_delete", "sku_fts_version_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    else:
        op.execute("DROP TRIGGER IF EXISTS sku_fts_version_truncate ON skus")
        op.execute("DROP TRIGGER IF EXISTS sku_fts_version_bump ON skus")
        op.execute("DROP FUNCTION IF EXISTS sku_fts_version_bump()")
    op.execute("DROP TABLE IF EXISTS sku_fts_version")
