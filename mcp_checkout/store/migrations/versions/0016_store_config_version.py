"""store config version

A stamp that changes whenever the store's configuration changes (the store profile, a shipping or tax
rate, a discount code's settings, a webhook endpoint added, removed or (de)activated), in the same
transaction as the change, moved by triggers so that no writer can forget it (the merchant's tools, the
CLI, a reset, a test's raw INSERT, a DBA's UPDATE). Each process keeps the configuration in memory and
reuses it only while the stamp is unchanged (service/store_profile.ConfigCache): one primary-key read per
quote or order instead of four or five.

The stamp is random, not a counter: a transaction that changed the configuration, read it (and so cached
it) and then rolled back must not leave a stamp another transaction's different change could reuse.
Counting a discount code's uses (``uses``) does not move it: only its settings are cached; nor does
re-sealing an endpoint's secret: only whether any endpoint is active is.

The table's name starts with ``store_config_version`` and is left out of autogenerate (``migrate``), like
``sku_fts_version``. Note for later migrations: a batch rebuild of one of these tables on SQLite drops its
triggers; re-create them (``SQLITE`` below) after one.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TABLES = ("store_profile", "shipping_rates", "tax_rates")
CODE_SETTINGS = (
    "code, kind, value, currency, min_subtotal_minor, starts_at, ends_at, max_uses, max_uses_per_buyer, applies_to, "
    "active"
)
_SQLITE_BUMP = "UPDATE store_config_version SET version = random() WHERE id = 1"


def _sqlite() -> list[str]:
    statements = [
        "CREATE TABLE store_config_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
        "INSERT INTO store_config_version (id, version) VALUES (1, abs(random()))",
    ]
    changes = [(table, event) for table in TABLES for event in ("INSERT", "DELETE", "UPDATE")]
    changes += [
        ("discount_codes", "INSERT"),
        ("discount_codes", "DELETE"),
        ("discount_codes", f"UPDATE OF {CODE_SETTINGS}"),
        ("webhook_endpoints", "INSERT"),
        ("webhook_endpoints", "DELETE"),
        ("webhook_endpoints", "UPDATE OF status"),
    ]
    for table, event in changes:
        name = f"store_config_version_{table}_{event.split()[0].lower()}"
        statements.append(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {_SQLITE_BUMP}; END")
    return statements


POSTGRESQL = [
    "CREATE TABLE store_config_version (id integer PRIMARY KEY CHECK (id = 1), version bigint NOT NULL)",
    "INSERT INTO store_config_version (id, version) VALUES (1, floor(random() * 9.0e18)::bigint)",
    "CREATE FUNCTION store_config_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE store_config_version SET version = floor(random() * 9.0e18)::bigint WHERE id = 1; RETURN NULL; END $$",
    *(
        f"CREATE TRIGGER store_config_version_bump AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION store_config_version_bump()"
        for table in TABLES
    ),
    "CREATE TRIGGER store_config_version_bump AFTER INSERT OR DELETE OR TRUNCATE ON discount_codes "
    "FOR EACH STATEMENT EXECUTE FUNCTION store_config_version_bump()",
    f"CREATE TRIGGER store_config_version_settings AFTER UPDATE OF {CODE_SETTINGS} ON discount_codes "
    "FOR EACH STATEMENT EXECUTE FUNCTION store_config_version_bump()",
    "CREATE TRIGGER store_config_version_bump AFTER INSERT OR DELETE OR TRUNCATE ON webhook_endpoints "
    "FOR EACH STATEMENT EXECUTE FUNCTION store_config_version_bump()",
    "CREATE TRIGGER store_config_version_settings AFTER UPDATE OF status ON webhook_endpoints "
    "FOR EACH STATEMENT EXECUTE FUNCTION store_config_version_bump()",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _sqlite() if sqlite else POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in _sqlite():
            if statement.startswith("CREATE TRIGGER"):
                op.execute(f"DROP TRIGGER IF EXISTS {statement.split()[2]}")
    else:
        for table in (*TABLES, "discount_codes", "webhook_endpoints"):
            op.execute(f"DROP TRIGGER IF EXISTS store_config_version_bump ON {table}")
        for table in ("discount_codes", "webhook_endpoints"):
            op.execute(f"DROP TRIGGER IF EXISTS store_config_version_settings ON {table}")
        op.execute("DROP FUNCTION IF EXISTS store_config_version_bump()")
    op.execute("DROP TABLE IF EXISTS store_config_version")
