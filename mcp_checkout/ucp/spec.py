"""Names and addresses fixed by the UCP specification at the version this server speaks."""

from __future__ import annotations

VERSION = "2026-04-08"
SUPPORTED_VERSIONS = frozenset({VERSION})
SHOPPING = "dev.ucp.shopping"
CHECKOUT = "dev.ucp.shopping.checkout"
FULFILLMENT = "dev.ucp.shopping.fulfillment"
DISCOUNT = "dev.ucp.shopping.discount"
CATALOG_SEARCH = "dev.ucp.shopping.catalog.search"
CATALOG_LOOKUP = "dev.ucp.shopping.catalog.lookup"
ORDER = "dev.ucp.shopping.order"
SPEC_BASE = f"https://ucp.dev/{VERSION}"
REST_SCHEMA = f"{SPEC_BASE}/services/shopping/rest.openapi.json"
MCP_SCHEMA = f"{SPEC_BASE}/services/shopping/mcp.openrpc.json"
OVERVIEW = f"{SPEC_BASE}/specification/overview"

REST_BASE_PATH = "/ucp/v1"  # the REST binding's endpoint; OpenAPI paths are appended to it
MCP_PATH = "/ucp/mcp"  # the MCP binding: stateless streamable HTTP
PROFILE_PATH = "/.well-known/ucp"
PROFILE_MAX_AGE = 300  # seconds; the spec asks for public caching of at least 60

# Payment handler for test mode: a token credential "success_token" pays, "decline_token" is declined.
OFFLINE_HANDLER_NAMESPACE = "dev.mcpcheckout.offline"
OFFLINE_HANDLER_ID = "offline_test"
SUCCESS_TOKEN = "success_token"  # noqa: S105 - a documented test token, not a secret
DECLINE_TOKEN = "decline_token"  # noqa: S105 - a documented test token, not a secret

# Payment handler when Stripe is configured: a Stripe PaymentMethod id ("pm_…") as a token credential, charged
# at completion (UCP 2026-04-08 defines how a handler is declared, not a Stripe handler; Stripe's own
# com.stripe.payments, a shared-payment-token handler in private preview, is not implemented here).
STRIPE_HANDLER_NAMESPACE = "dev.mcpcheckout.stripe"
STRIPE_HANDLER_ID = "stripe"
STRIPE_CREDENTIAL_TYPE = "stripe_payment_method"
