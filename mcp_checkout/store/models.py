"""Table definitions (SQLAlchemy Core). Schema changes go through Alembic migrations."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.engine import Dialect

from mcp_checkout.store.sealing import SealedJSON, SealedText

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = MetaData(naming_convention=NAMING)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC).replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_utc_text  # one step instead of two (process_bind_param, then SQLite's DATETIME format)


def _sqlite_utc_text(value: datetime | None) -> str | None:
    """``value`` as SQLite stores it: naive UTC, ``YYYY-MM-DD HH:MM:SS.ffffff`` (the text SQLAlchemy's SQLite
    DATETIME writes, so old and new rows compare and sort alike)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


# BigInteger with an Integer variant keeps SQLite's INTEGER PRIMARY KEY rowid alias.
Id = BigInteger().with_variant(Integer(), "sqlite")
Timestamp: UtcDateTime = UtcDateTime()

products = Table(
    "products",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("external_id", String(128), nullable=True, index=True),
    Column("name", String(300), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("category", String(120), nullable=False, default=""),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    # A shop export's HTML body as it came (returned as data for display, never rendered by this server).
    Column("description_html", Text, nullable=False, default="", server_default=""),
)

skus = Table(
    "skus",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sku", String(64), nullable=False, unique=True),
    Column("product_id", String(40), ForeignKey("products.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(300), nullable=False, default=""),
    Column("title", String(600), nullable=False),
    Column("category", String(120), nullable=False, default=""),
    Column("category_key", String(120), nullable=False, default="", index=True),
    Column("search_text", Text, nullable=False, default=""),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("stock_on_hand", Integer, nullable=False, default=0),
    Column("reserved", Integer, nullable=False, default=0),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    # Set when the merchant deleted a SKU that has orders: hidden from search and unsellable, kept for history.
    Column("archived_at", Timestamp, nullable=True),
    Column("image_url", String(2048), nullable=False, default="", server_default=""),
    # Server defaults only: the bulk catalog writer (store/catalog_write.py) names every column it sends.
    Column("requires_shipping", Boolean, nullable=False, server_default=true()),
    Column("tax_category", String(40), nullable=False, server_default="standard"),
    Column("weight_grams", Integer, nullable=True),
    CheckConstraint("price_minor >= 0", name="price_not_negative"),
    CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    CheckConstraint("stock_on_hand >= reserved", name="no_oversell"),
)

carts = Table(
    "carts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("principal_id", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(20), nullable=False),
    Column("order_id", String(40), nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    # What the buyer told the agent (update_cart), sealed like the order's; copied onto the order.
    Column("buyer", SealedJSON, nullable=True),  # {email, name?, phone?}
    Column("email_hash", String(64), nullable=True, index=True),
    Column("shipping_address", SealedJSON, nullable=True),
    Column("fulfillment_option_id", String(64), nullable=True),
    Column("discount_codes", JSON, nullable=True),
)

cart_items = Table(
    "cart_items",
    metadata,
    Column("cart_id", String(40), ForeignKey("carts.id", ondelete="CASCADE"), primary_key=True),
    Column("sku", String(64), ForeignKey("skus.sku"), primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("added_at", Timestamp, nullable=False),
    CheckConstraint("quantity between 1 and 999", name="quantity_range"),
)

orders = Table(
    "orders",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=True),
    Column("id", String(40), nullable=False, unique=True),
    Column("number", String(20), nullable=True, unique=True),
    Column("cart_id", String(40), nullable=True, unique=True),
    Column("principal_id", String(64), nullable=False),
    Column("client_name", String(200), nullable=False, default=""),
    Column("status", String(20), nullable=False),
    Column("stock_state", String(20), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("subtotal_minor", BigInteger, nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    # Buyer personal data: sealed (store/sealing.py); found by email through the keyed hash beside it.
    Column("email", SealedText, nullable=True),
    Column("email_hash", String(64), nullable=True, index=True),
    Column("buyer_erased_at", Timestamp, nullable=True),  # erase_buyer_data replaced the buyer's details
    Column("merchant_reference_id", String(128), nullable=True, index=True),
    Column("shipping_address", SealedJSON, nullable=True),
    Column("request_fingerprint", String(64), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    # The priced breakdown, frozen when the order is placed (or when the buyer finishes it on the page):
    # total = subtotal - discount + shipping + tax (tax 0 here when prices include it).
    Column("discount_total_minor", BigInteger, nullable=False, default=0, server_default="0"),
    Column("shipping_total_minor", BigInteger, nullable=False, default=0, server_default="0"),
    Column("tax_total_minor", BigInteger, nullable=False, default=0, server_default="0"),
    Column("prices_include_tax", Boolean, nullable=False, default=False, server_default=false()),
    Column("requires_shipping", Boolean, nullable=False, default=False, server_default=false()),
    Column("buyer", SealedJSON, nullable=True),  # {name?, phone?}; the email is in its own column
    Column("fulfillment_option_id", String(64), nullable=True),
    Column("fulfillment_option", JSON, nullable=True),  # the chosen rate as it was when chosen
    Column("discount_codes", JSON, nullable=True),  # the codes asked for
    CheckConstraint("total_minor >= 0", name="total_not_negative"),
)
Index("ix_orders_status_expires_at", orders.c.status, orders.c.expires_at)

order_items = Table(
    "order_items",
    metadata,
    Column("order_id", String(40), ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("title", String(600), nullable=False),
    Column("unit_price_minor", BigInteger, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("line_total_minor", BigInteger, nullable=False),
    Column("discount_minor", BigInteger, nullable=False, default=0, server_default="0"),  # its share of discounts
    Column("tax_minor", BigInteger, nullable=False, default=0, server_default="0"),
    Column("tax_category", String(40), nullable=False, default="standard", server_default="standard"),
    Column("requires_shipping", Boolean, nullable=False, default=False, server_default=false()),
    Column("fulfilled_quantity", Integer, nullable=False, default=0, server_default="0"),
    Column("image_url", String(2048), nullable=False, default="", server_default=""),
)
Index("ix_order_items_sku", order_items.c.sku)

order_events = Table(
    "order_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", String(40), ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("from_status", String(20), nullable=True),
    Column("to_status", String(20), nullable=False),
    Column("actor", String(20), nullable=False),
    Column("principal_id", String(64), nullable=True),
    Column("reason", String(500), nullable=True),
    Column("at", Timestamp, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("principal_id", String(64), nullable=False),
    Column("operation", String(64), nullable=False),
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("claim_token", String(40), nullable=False),
    Column("locked_until", Timestamp, nullable=False),
    Column("resource_id", String(40), nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False, index=True),
    UniqueConstraint("principal_id", "operation", "key", name="uq_idempotency_scope_key"),
)

checkout_links = Table(
    "checkout_links",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("token_hint", String(12), nullable=False),
    Column("order_id", String(40), ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("principal_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("email_lock", SealedText, nullable=True),  # the buyer's email, sealed
    Column("email_hash", String(64), nullable=True, index=True),  # its keyed hash (erasure finds links by it)
    Column("merchant_reference_id", String(128), nullable=True, index=True),
    Column("success_url", String(2048), nullable=True),
    Column("cancel_url", String(2048), nullable=True),
    Column("replaced_by", String(40), nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("token_sealed", String(400), nullable=True),  # keyed links: for replays (Fernet, server key)
)
_LIVE_LINK = text("status IN ('active', 'in_session')")
# At most one live link per order (migration 0010).
Index(
    "ux_checkout_links_live_order",
    checkout_links.c.order_id,
    unique=True,
    sqlite_where=_LIVE_LINK,
    postgresql_where=_LIVE_LINK,
)

checkout_sessions = Table(
    "checkout_sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("link_id", String(40), ForeignKey("checkout_links.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("order_id", String(40), ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("email_verified_at", Timestamp, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", String(40), ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("gateway", String(20), nullable=False),
    Column("intent_id", String(255), nullable=True, unique=True),
    Column("status", String(40), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_received_minor", BigInteger, nullable=False, default=0),
    Column("refunded_minor", BigInteger, nullable=False, default=0),
    Column("last_error", String(500), nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("method", String(20), nullable=True),  # mark_order_paid: bank_transfer | cash | other
    Column("reference", String(200), nullable=True),  # mark_order_paid: the merchant's reference
    UniqueConstraint("order_id", "attempt", name="uq_payments_order_attempt"),
    CheckConstraint("refunded_minor <= amount_received_minor", name="refund_within_received"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("order_id", String(40), ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("payment_id", Id, ForeignKey("payments.id"), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reason", String(500), nullable=True),
    Column("status", String(20), nullable=False),
    Column("gateway_refund_id", String(255), nullable=True, unique=True),
    Column("created_at", Timestamp, nullable=False),
    CheckConstraint("amount_minor > 0", name="positive"),
)

gateway_events = Table(
    "gateway_events",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column("type", String(100), nullable=False),
    Column("intent_id", String(255), nullable=True),
    Column("outcome", String(200), nullable=False),
    Column("received_at", Timestamp, nullable=False),
)

order_issues = Table(
    "order_issues",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", String(40), ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("code", String(64), nullable=False),
    Column("message", String(500), nullable=False),
    Column("at", Timestamp, nullable=False),
)

offline_intents = Table(
    "offline_intents",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("status", String(40), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_received_minor", BigInteger, nullable=False, default=0),
    Column("amount_refunded_minor", BigInteger, nullable=False, default=0),
    Column("metadata", JSON, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("scope", String(20), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("last_used_at", Timestamp, nullable=True),
    Column("expires_at", Timestamp, nullable=True),
    Column("revoked_at", Timestamp, nullable=True),
)

rate_limit_windows = Table(
    "rate_limit_windows",
    metadata,
    Column("key_id", String(24), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("calls", Integer, nullable=False),
)

# Outbound webhooks: endpoints the merchant registered, the events an order change produced (written in
# the change's own transaction: a transactional outbox) and one delivery per event and endpoint.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=True),
    Column("id", String(40), nullable=False, unique=True),
    Column("url", String(2048), nullable=False),
    Column("description", String(500), nullable=False, default=""),
    Column("event_types", JSON, nullable=False),
    # The signing secret must be usable to sign, so it cannot be hashed; only the dispatcher reads it.
    Column("secret", String(400), nullable=False),  # "fernet:" + the sealed whsec_ secret
    Column("status", String(20), nullable=False),
    # standard: a merchant's, Standard Webhooks signed, every order; ucp: a UCP platform's, RFC 9421 signed
    # with the business's signing key, only for the orders it placed (order_webhook_targets).
    Column("kind", String(20), nullable=False, default="standard", server_default="standard"),
    Column("created_at", Timestamp, nullable=False),
    Column("deactivated_at", Timestamp, nullable=True),
)
Index("ix_webhook_endpoints_status", webhook_endpoints.c.status)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("type", String(40), nullable=False),
    Column("order_id", String(40), nullable=True, index=True),
    Column("body", SealedText, nullable=False),  # the exact JSON sent (and signed) on every attempt; sealed
    Column("created_at", Timestamp, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),  # msg_…: the webhook-id header, stable across retries
    Column("event_id", String(40), ForeignKey("webhook_events.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("endpoint_id", String(40), ForeignKey("webhook_endpoints.id"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Timestamp, nullable=True),
    Column("claimed_until", Timestamp, nullable=True),
    Column("claim_token", String(40), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("last_attempt_at", Timestamp, nullable=True),
    Column("delivered_at", Timestamp, nullable=True),
    Column("created_at", Timestamp, nullable=False),
)
# A UCP platform's endpoint follows the orders it placed: events of those orders only go there.
order_webhook_targets = Table(
    "order_webhook_targets",
    metadata,
    Column("order_id", String(40), ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    Column("endpoint_id", String(40), ForeignKey("webhook_endpoints.id"), primary_key=True),
    Column("created_at", Timestamp, nullable=False),
)
# The business's message-signing keys (ES256, JWK): the newest active one signs; active ones are published.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("generation", Integer, primary_key=True, autoincrement=False),  # 1, 2, …: one writer per rotation
    Column("kid", String(64), nullable=False, unique=True),
    Column("public_jwk", JSON, nullable=False),
    Column("private_key", SealedText, nullable=False),  # PKCS#8 PEM, sealed with the server's keyring
    Column("status", String(20), nullable=False),  # active | retired
    Column("created_at", Timestamp, nullable=False),
    Column("retired_at", Timestamp, nullable=True),
)

# The dispatcher's claim: pending rows by due time.
Index("ix_webhook_deliveries_status_next_attempt_at", webhook_deliveries.c.status, webhook_deliveries.c.next_attempt_at)
# Listings (newest first, optionally per endpoint) and windowed metrics.
Index("ix_webhook_deliveries_endpoint_id_created_at", webhook_deliveries.c.endpoint_id, webhook_deliveries.c.created_at)
Index("ix_webhook_deliveries_created_at", webhook_deliveries.c.created_at)

# Every merchant and operator action (price, stock, product, import, refund, status, key, endpoint, erasure,
# key rotation), written in the same transaction as the change. Never secrets or buyer data (service/audit.py).
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", Timestamp, nullable=False, index=True),
    Column("action", String(64), nullable=False, index=True),
    Column("actor", String(20), nullable=False),  # merchant | operator | system
    Column("principal_id", String(64), nullable=True),
    Column("client", String(200), nullable=False, default=""),
    Column("target", String(200), nullable=True),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
)

# Physical goods (migration 0014): the store's own profile, its shipping and tax rates, discount codes and
# what each placed order redeemed, and the shipments of paid orders.
store_profile = Table(
    "store_profile",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1: one store per database
    Column("name", String(120), nullable=False),
    Column("logo_url", String(2048), nullable=True),
    Column("support_email", String(254), nullable=True),
    Column("terms_url", String(2048), nullable=True),
    Column("privacy_url", String(2048), nullable=True),
    Column("returns_url", String(2048), nullable=True),
    Column("shipping_policy_url", String(2048), nullable=True),
    Column("origin_country", String(2), nullable=True),
    Column("default_currency", String(3), nullable=False),
    Column("locale", String(35), nullable=False),
    Column("prices_include_tax", Boolean, nullable=False),
    Column("allow_discount_stacking", Boolean, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

shipping_rates = Table(
    "shipping_rates",
    metadata,
    Column("id", String(64), primary_key=True),  # the merchant's rate_id
    Column("kind", String(20), nullable=False),  # shipping | pickup
    Column("name", String(120), nullable=False),
    Column("countries", JSON, nullable=False),  # ISO 3166-1 alpha-2 codes, or ["*"] for the rest of the world
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("free_over_minor", BigInteger, nullable=True),
    Column("min_days", Integer, nullable=True),
    Column("max_days", Integer, nullable=True),
    Column("carrier", String(80), nullable=True),
    Column("pickup_address", JSON, nullable=True),  # the merchant's own address: not buyer data
    Column("active", Boolean, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    CheckConstraint("price_minor >= 0", name="price_not_negative"),
)

tax_rates = Table(
    "tax_rates",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("country", String(2), nullable=False),
    Column("region", String(10), nullable=False, default="", server_default=""),  # "" = the whole country
    Column("category", String(40), nullable=False, default="standard", server_default="standard"),
    Column("rate_bps", Integer, nullable=False),
    Column("applies_to_shipping", Boolean, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    UniqueConstraint("country", "region", "category", name="uq_tax_rates_country"),
    CheckConstraint("rate_bps BETWEEN 0 AND 10000", name="rate_range"),
)

discount_codes = Table(
    "discount_codes",
    metadata,
    Column("code", String(64), primary_key=True),  # stored upper-case; matched case-insensitively
    Column("kind", String(20), nullable=False),  # percent | fixed | free_shipping
    Column("value", BigInteger, nullable=False, default=0, server_default="0"),  # bps (percent) or minor units
    Column("currency", String(3), nullable=True),  # fixed and min_subtotal amounts are in it
    Column("min_subtotal_minor", BigInteger, nullable=True),
    Column("starts_at", Timestamp, nullable=True),
    Column("ends_at", Timestamp, nullable=True),
    Column("max_uses", Integer, nullable=True),
    Column("max_uses_per_buyer", Integer, nullable=True),
    # Counted once per placed order by a conditional UPDATE (uses < max_uses), given back on cancel/expiry.
    Column("uses", Integer, nullable=False, default=0, server_default="0"),
    Column("applies_to", JSON, nullable=False),  # {"all": true} | {"categories": [...]} | {"skus": [...]}
    Column("active", Boolean, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    CheckConstraint("uses >= 0", name="uses_not_negative"),
    CheckConstraint("max_uses IS NULL OR uses <= max_uses", name="within_max_uses"),
)

discount_redemptions = Table(
    "discount_redemptions",
    metadata,
    Column("order_id", String(40), ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    Column("code", String(64), ForeignKey("discount_codes.code"), primary_key=True),
    Column("buyer_key", String(64), nullable=False),  # the buyer's keyed email hash, else the principal id
    Column("amount_minor", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),  # applied | released
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)
Index("ix_discount_redemptions_code_buyer", discount_redemptions.c.code, discount_redemptions.c.buyer_key)

fulfillments = Table(
    "fulfillments",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("order_id", String(40), ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("lines", JSON, nullable=False),  # [{"line_no", "sku", "quantity"}]
    Column("carrier", String(80), nullable=True),
    Column("tracking_number", String(120), nullable=True),
    Column("tracking_url", String(2048), nullable=True),
    Column("principal_id", String(64), nullable=True),
    Column("created_at", Timestamp, nullable=False),
)

# The OAuth tables live in their own module on this metadata (so `metadata` holds every table); imported
# last, once the names that module takes from here exist.
import mcp_checkout.store.oauth_tables  # noqa: E402, F401
