"""physical goods: store profile, SKU shipping/tax attributes, shipping and tax rates, discount codes and
their redemptions, buyer details and choices on carts, the priced breakdown on orders and lines,
fulfilments with tracking, and payments taken outside the gateway

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def _money(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")


def upgrade() -> None:
    op.create_table(
        "store_profile",
        sa.Column("id", sa.Integer(), primary_key=True),  # always 1: one store per database
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("logo_url", sa.String(2048), nullable=True),
        sa.Column("support_email", sa.String(254), nullable=True),
        sa.Column("terms_url", sa.String(2048), nullable=True),
        sa.Column("privacy_url", sa.String(2048), nullable=True),
        sa.Column("returns_url", sa.String(2048), nullable=True),
        sa.Column("shipping_policy_url", sa.String(2048), nullable=True),
        sa.Column("origin_country", sa.String(2), nullable=True),
        sa.Column("default_currency", sa.String(3), nullable=False),
        sa.Column("locale", sa.String(35), nullable=False),
        sa.Column("prices_include_tax", sa.Boolean(), nullable=False),
        sa.Column("allow_discount_stacking", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_store_profile_single_row")),
    )

    # Plain ADD COLUMNs: a batch rebuild of skus on SQLite would drop its search-index triggers.
    op.add_column("skus", sa.Column("requires_shipping", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.add_column("skus", sa.Column("tax_category", sa.String(40), nullable=False, server_default="standard"))
    op.add_column("skus", sa.Column("weight_grams", sa.Integer(), nullable=True))

    op.create_table(
        "shipping_rates",
        sa.Column("id", sa.String(64), primary_key=True),  # the merchant's rate_id
        sa.Column("kind", sa.String(20), nullable=False),  # shipping | pickup
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("countries", sa.JSON(), nullable=False),  # ISO 3166-1 alpha-2 codes, or ["*"]
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("free_over_minor", sa.BigInteger(), nullable=True),
        sa.Column("min_days", sa.Integer(), nullable=True),
        sa.Column("max_days", sa.Integer(), nullable=True),
        sa.Column("carrier", sa.String(80), nullable=True),
        sa.Column("pickup_address", sa.JSON(), nullable=True),  # the merchant's own address: not buyer data
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("price_minor >= 0", name=op.f("ck_shipping_rates_price_not_negative")),
    )

    op.create_table(
        "tax_rates",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("region", sa.String(10), nullable=False, server_default=""),  # "" = the whole country
        sa.Column("category", sa.String(40), nullable=False, server_default="standard"),
        sa.Column("rate_bps", sa.Integer(), nullable=False),
        sa.Column("applies_to_shipping", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("country", "region", "category", name=op.f("uq_tax_rates_country")),
        sa.CheckConstraint("rate_bps BETWEEN 0 AND 10000", name=op.f("ck_tax_rates_rate_range")),
    )

    op.create_table(
        "discount_codes",
        sa.Column("code", sa.String(64), primary_key=True),  # stored upper-case; matched case-insensitively
        sa.Column("kind", sa.String(20), nullable=False),  # percent | fixed | free_shipping
        sa.Column("value", sa.BigInteger(), nullable=False, server_default="0"),  # bps or minor units
        sa.Column("currency", sa.String(3), nullable=True),  # fixed and min_subtotal amounts are in it
        sa.Column("min_subtotal_minor", sa.BigInteger(), nullable=True),
        sa.Column("starts_at", _TS, nullable=True),
        sa.Column("ends_at", _TS, nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("max_uses_per_buyer", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("applies_to", sa.JSON(), nullable=False),  # {"all": true} | {"categories": [...]} | {"skus": [...]}
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("uses >= 0", name=op.f("ck_discount_codes_uses_not_negative")),
        sa.CheckConstraint("max_uses IS NULL OR uses <= max_uses", name=op.f("ck_discount_codes_within_max_uses")),
    )

    op.create_table(
        "discount_redemptions",
        sa.Column("order_id", sa.String(40), sa.ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("code", sa.String(64), sa.ForeignKey("discount_codes.code"), primary_key=True),
        sa.Column("buyer_key", sa.String(64), nullable=False),  # keyed email hash, else the principal id
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),  # applied | released
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_discount_redemptions_code_buyer", "discount_redemptions", ["code", "buyer_key"])

    # Buyer details and choices on the cart: sealed like the order's (store/sealing.py).
    op.add_column("carts", sa.Column("buyer", sa.Text(), nullable=True))  # sealed {email, name?, phone?}
    op.add_column("carts", sa.Column("email_hash", sa.String(64), nullable=True))
    op.add_column("carts", sa.Column("shipping_address", sa.Text(), nullable=True))  # sealed
    op.add_column("carts", sa.Column("fulfillment_option_id", sa.String(64), nullable=True))
    op.add_column("carts", sa.Column("discount_codes", sa.JSON(), nullable=True))
    op.create_index("ix_carts_email_hash", "carts", ["email_hash"])

    op.add_column("orders", _money("discount_total_minor"))
    op.add_column("orders", _money("shipping_total_minor"))
    op.add_column("orders", _money("tax_total_minor"))
    op.add_column("orders", sa.Column("prices_include_tax", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("orders", sa.Column("requires_shipping", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("orders", sa.Column("buyer", sa.Text(), nullable=True))  # sealed {name?, phone?}
    op.add_column("orders", sa.Column("fulfillment_option_id", sa.String(64), nullable=True))
    op.add_column("orders", sa.Column("fulfillment_option", sa.JSON(), nullable=True))  # the chosen rate, frozen
    op.add_column("orders", sa.Column("discount_codes", sa.JSON(), nullable=True))  # codes asked for

    op.add_column("order_items", _money("discount_minor"))
    op.add_column("order_items", _money("tax_minor"))
    op.add_column("order_items", sa.Column("tax_category", sa.String(40), nullable=False, server_default="standard"))
    op.add_column(
        "order_items", sa.Column("requires_shipping", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("order_items", sa.Column("fulfilled_quantity", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("order_items", sa.Column("image_url", sa.String(2048), nullable=False, server_default=""))

    op.create_table(
        "fulfillments",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("order_id", sa.String(40), sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),  # [{"line_no", "sku", "quantity"}]
        sa.Column("carrier", sa.String(80), nullable=True),
        sa.Column("tracking_number", sa.String(120), nullable=True),
        sa.Column("tracking_url", sa.String(2048), nullable=True),
        sa.Column("principal_id", sa.String(64), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_fulfillments_order_id", "fulfillments", ["order_id"])

    # Money taken outside the gateway (mark_order_paid): how, and the merchant's reference for it.
    op.add_column("payments", sa.Column("method", sa.String(20), nullable=True))
    op.add_column("payments", sa.Column("reference", sa.String(200), nullable=True))


def downgrade() -> None:
    for table, column in (("payments", "reference"), ("payments", "method")):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.drop_index("ix_fulfillments_order_id", table_name="fulfillments")
    op.drop_table("fulfillments")
    for column in (
        "image_url",
        "fulfilled_quantity",
        "requires_shipping",
        "tax_category",
        "tax_minor",
        "discount_minor",
    ):
        op.execute(f"ALTER TABLE order_items DROP COLUMN {column}")
    for column in (
        "discount_codes", "fulfillment_option", "fulfillment_option_id", "buyer", "requires_shipping",
        "prices_include_tax", "tax_total_minor", "shipping_total_minor", "discount_total_minor",
    ):  # fmt: skip
        op.execute(f"ALTER TABLE orders DROP COLUMN {column}")
    op.drop_index("ix_carts_email_hash", table_name="carts")
    for column in ("discount_codes", "fulfillment_option_id", "shipping_address", "email_hash", "buyer"):
        op.execute(f"ALTER TABLE carts DROP COLUMN {column}")
    op.drop_index("ix_discount_redemptions_code_buyer", table_name="discount_redemptions")
    op.drop_table("discount_redemptions")
    op.drop_table("discount_codes")
    op.drop_table("tax_rates")
    op.drop_table("shipping_rates")
    for column in ("weight_grams", "tax_category", "requires_shipping"):
        op.execute(f"ALTER TABLE skus DROP COLUMN {column}")
    op.drop_table("store_profile")
