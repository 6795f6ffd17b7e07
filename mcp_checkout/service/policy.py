"""Authorization: who may see and do what. The one home of that rule.

* **Operations only a merchant may use** (tools and prompts, by their public name) are listed once,
  in :data:`MERCHANT_ONLY`. A new merchant tool needs one line there and nothing else: buyers then
  neither see it in ``tools/list`` / ``prompts/list`` nor may call it, and the service that runs it
  refuses a buyer too (``policy.require(principal, "<name>")``).
* **Owned things** (carts, orders, and the links and payments of an order): a buyer sees and changes
  only what it created; a merchant sees and changes everything. Anyone else is told the thing does
  not exist (``cart_not_found``, ``order_not_found``), never that it belongs to someone else.

Adapters (MCP tools, resources, prompts, subscriptions, the web app) and services both ask here;
nothing else compares a principal's kind or owner.
"""

from __future__ import annotations

from typing import Final

from mcp_checkout.domain import Principal, PrincipalKind
from mcp_checkout.errors import Forbidden

MERCHANT_ONLY: Final[frozenset[str]] = frozenset(
    {
        # catalog and stock
        "import_catalog_csv",
        "upsert_product",
        "delete_product",
        "adjust_inventory",
        # store configuration
        "update_store_profile",
        "upsert_shipping_rate",
        "list_shipping_rates",
        "upsert_tax_rate",
        "list_tax_rates",
        "delete_tax_rate",
        "upsert_discount_code",
        "list_discount_codes",
        # orders, sales and money back
        "list_orders",
        "sales_summary",
        "refund_order",
        "fulfill_order",
        "mark_order_paid",
        # outbound webhooks
        "create_webhook_endpoint",
        "list_webhook_endpoints",
        "deactivate_webhook_endpoint",
        "list_webhook_deliveries",
        "replay_webhook_delivery",
        # operations
        "readiness_check",
        "list_audit_events",
        "erase_buyer_data",
        # prompts
        "merchant_daily_report",
    }
)
"""Every tool and prompt only a merchant may see and use. Everything else is open to buyers too."""


def merchant_only(operation: str) -> bool:
    return operation in MERCHANT_ONLY


def may_use(kind: PrincipalKind, operation: str) -> bool:
    """Whether a caller of this kind may see and use the tool or prompt ``operation``."""
    return kind == "merchant" or operation not in MERCHANT_ONLY


def require(principal: Principal, operation: str) -> None:
    """Refuse a buyer an operation only a merchant may use (:class:`Forbidden`)."""
    if not may_use(principal.kind, operation):
        raise Forbidden(
            f"{operation} is for the merchant only; this caller has buyer access. Ask the merchant, or use a "
            "key created with --scope merchant.",
            details={"operation": operation, "scope": principal.kind},
        )


def may_cancel_paid(principal: Principal) -> bool:
    """Only the merchant cancels a paid order (it is refunded in full); buyers cancel only unpaid ones."""
    return principal.kind == "merchant"


def may_access(principal: Principal, owner_id: str | None) -> bool:
    """Whether ``principal`` may see and change a thing created by ``owner_id`` (a cart, an order).

    Callers that get False answer as if the thing did not exist."""
    return principal.kind == "merchant" or (owner_id is not None and owner_id == principal.id)


def owner_filter(principal: Principal) -> str | None:
    """For queries over many owned rows: the owner id to filter on, or None when the caller sees all."""
    return None if principal.kind == "merchant" else principal.id


OPERATOR: Final = Principal(id="cli", kind="merchant", client="mcp-checkout cli")
"""The operator at the command line: whoever can run the CLI holds the database, so acts as the merchant."""
