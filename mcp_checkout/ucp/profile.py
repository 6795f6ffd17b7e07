"""The business profile served at ``/.well-known/ucp``: only what this server implements and tests."""

from __future__ import annotations

from typing import Any

from ucp_sdk.models.schemas.ucp import BusinessSchema

from mcp_checkout.ucp import spec


def payment_handlers(payment_mode: str, publishable_key: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """The handlers a platform may use (``payment_mode`` as ``Settings.payment_mode``). Offline test mode:
    ``offline_test`` (token credentials ``success_token`` pays, ``decline_token`` is declined). With Stripe:
    ``stripe``, a card instrument whose token credential is a Stripe PaymentMethod id (``pm_…``), charged at
    completion; the config names the environment and the publishable key a platform's card form needs."""
    if payment_mode in ("stripe_test", "stripe_live"):
        config: dict[str, Any] = {"environment": "production" if payment_mode == "stripe_live" else "sandbox"}
        if publishable_key:
            config["publishable_key"] = publishable_key
        return {
            spec.STRIPE_HANDLER_NAMESPACE: [
                {
                    "id": spec.STRIPE_HANDLER_ID,
                    "version": spec.VERSION,
                    "available_instruments": [{"type": "card"}],
                    "config": config,
                }
            ]
        }
    if payment_mode != "offline":
        return {}
    return {
        spec.OFFLINE_HANDLER_NAMESPACE: [
            {
                "id": spec.OFFLINE_HANDLER_ID,
                "version": spec.VERSION,
                "available_instruments": [{"type": "offline_test"}],
            }
        ]
    }


def capabilities(checkout: bool, order: bool = False) -> dict[str, list[dict[str, Any]]]:
    if not checkout:
        return {}
    declared = {
        spec.CHECKOUT: [
            {
                "version": spec.VERSION,
                "spec": f"{spec.SPEC_BASE}/specification/checkout",
                "schema": f"{spec.SPEC_BASE}/schemas/shopping/checkout.json",
            }
        ],
        spec.FULFILLMENT: [
            {
                "version": spec.VERSION,
                "spec": f"{spec.SPEC_BASE}/specification/fulfillment",
                "schema": f"{spec.SPEC_BASE}/schemas/shopping/fulfillment.json",
                "extends": spec.CHECKOUT,
            }
        ],
        spec.DISCOUNT: [
            {
                "version": spec.VERSION,
                "spec": f"{spec.SPEC_BASE}/specification/discount",
                "schema": f"{spec.SPEC_BASE}/schemas/shopping/discount.json",
                "extends": spec.CHECKOUT,
            }
        ],
        spec.CATALOG_SEARCH: [
            {
                "version": spec.VERSION,
                "spec": f"{spec.SPEC_BASE}/specification/catalog/search",
                "schema": f"{spec.SPEC_BASE}/schemas/shopping/catalog_search.json",
            }
        ],
        spec.CATALOG_LOOKUP: [
            {
                "version": spec.VERSION,
                "spec": f"{spec.SPEC_BASE}/specification/catalog/lookup",
                "schema": f"{spec.SPEC_BASE}/schemas/shopping/catalog_lookup.json",
            }
        ],
    }
    if order:
        declared[spec.ORDER] = [
            {
                "version": spec.VERSION,
                "spec": f"{spec.SPEC_BASE}/specification/order",
                "schema": f"{spec.SPEC_BASE}/schemas/shopping/order.json",
            }
        ]
    return declared


def business_profile(
    public_base_url: str,
    *,
    payment_mode: str,
    publishable_key: str | None = None,
    checkout: bool = True,
    mcp: bool = False,
    signing_keys: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The profile document, validated through the ``ucp-sdk`` business schema model. ``mcp``: the MCP
    binding is served (``serve --http``) and so declared beside REST. ``signing_keys``: the business's
    public keys (JWK) that sign its order webhooks; given, the order capability is declared with them."""
    base = public_base_url.rstrip("/")
    bindings: list[dict[str, Any]] = [
        {
            "version": spec.VERSION,
            "spec": spec.OVERVIEW,
            "transport": "rest",
            "endpoint": f"{base}{spec.REST_BASE_PATH}",
            "schema": spec.REST_SCHEMA,
        }
    ]
    if mcp:
        bindings.append(
            {
                "version": spec.VERSION,
                "spec": spec.OVERVIEW,
                "transport": "mcp",
                "endpoint": f"{base}{spec.MCP_PATH}",
                "schema": spec.MCP_SCHEMA,
            }
        )
    ucp = BusinessSchema.model_validate(
        {
            "version": spec.VERSION,
            "services": {spec.SHOPPING: bindings},
            "capabilities": capabilities(checkout, order=bool(signing_keys)),
            "payment_handlers": payment_handlers(payment_mode if checkout else "none", publishable_key),
        }
    )
    profile: dict[str, Any] = {"ucp": ucp.model_dump(mode="json", by_alias=True, exclude_none=True)}
    if signing_keys:
        profile["signing_keys"] = signing_keys
    return profile
