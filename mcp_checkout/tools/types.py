"""Input types shared by every tool: one definition, one set of bounds, one JSON schema."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from mcp_checkout.domain import MAX_CART_LINES, MAX_QUANTITY, OrderStatus

SAFE_KEY = r"^[A-Za-z0-9._:-]+$"

IdempotencyKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=SAFE_KEY,
        description="Your key for THIS order (1-255 of A-Z a-z 0-9 . _ : -). Reuse the same key when you retry "
        "the same order after a timeout or error; use a new key only for a genuinely new order.",
    ),
]
CartId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^cart_[A-Za-z0-9]+$", description="From create_cart.")
]
OrderId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^ord_[A-Za-z0-9]+$", description="From create_order (ord_…).")
]
ProductId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^prod_[A-Za-z0-9]+$", description="From search_catalog.")
]
Sku = Annotated[str, Field(min_length=1, max_length=64, description="A SKU code from search_catalog or get_product.")]
Quantity = Annotated[int, Field(strict=True, ge=1, le=MAX_QUANTITY, description=f"Units, 1 to {MAX_QUANTITY}.")]
MerchantReference = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=SAFE_KEY,
        description="The merchant's or your own reference for this purchase (≤128 of A-Z a-z 0-9 . _ : -); "
        "find the order later with lookup_orders.",
    ),
]
Email = Annotated[
    str,
    Field(max_length=254, pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$", description="The buyer's email address."),
]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO-4217 code, e.g. USD.")]
MinorUnits = Annotated[int, Field(strict=True, ge=0, le=10**12, description="Integer minor units (cents).")]
SearchQuery = Annotated[
    str, Field(max_length=500, description="Words to look for in names, descriptions, SKUs and categories.")
]
Category = Annotated[str, Field(min_length=1, max_length=120, description="Exact category name (case-insensitive).")]
PageSize = Annotated[int, Field(strict=True, ge=1, le=100, description="Results per page, 1-100.")]
Cursor = Annotated[str, Field(min_length=1, max_length=512, description="next_cursor from the previous page.")]
Reason = Annotated[str, Field(min_length=1, max_length=500)]


Flag = Annotated[bool, Field(strict=True)]
OrderStatuses = Annotated[
    list[OrderStatus],
    Field(
        min_length=1,
        max_length=len(OrderStatus),
        description='Statuses to wait for (any of them ends the wait), e.g. ["paid"]; omit to wait for any '
        "outcome (any status but pending_payment).",
    ),
]
WaitSeconds = Annotated[
    int,
    Field(
        strict=True,
        ge=1,
        le=60,
        description="Longest time to wait, 1-60 seconds; keep it under your own request timeout.",
    ),
]


class LineInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    quantity: Quantity


OrderLines = Annotated[
    list[LineInput], Field(min_length=1, max_length=MAX_CART_LINES, description="1-100 lines of {sku, quantity}.")
]


ShipLines = Annotated[
    list[LineInput], Field(min_length=1, max_length=MAX_CART_LINES, description="[{sku, quantity}] shipped now.")
]
Carrier = Annotated[str, Field(min_length=1, max_length=80, description="e.g. UPS.")]
TrackingNumber = Annotated[str, Field(min_length=1, max_length=120)]


class ShippingAddress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=120)]
    line1: Annotated[str, Field(min_length=1, max_length=200)]
    line2: Annotated[str, Field(max_length=200)] | None = None
    city: Annotated[str, Field(min_length=1, max_length=100)]
    region: Annotated[str, Field(max_length=100)] | None = None
    postal_code: Annotated[str, Field(min_length=1, max_length=20)]
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO-3166 alpha-2, e.g. US.")]


LinkId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^link_[A-Za-z0-9]+$", description="From create_checkout_link.")
]
HttpUrl = Annotated[
    str, Field(min_length=8, max_length=2048, pattern=r"^https?://\S+$", description="An absolute http(s) URL.")
]
TtlMinutes = Annotated[
    int, Field(strict=True, ge=5, le=10080, description="Link lifetime in minutes, 5-10080 (default 1 day).")
]
RefundAmount = Annotated[
    int,
    Field(
        strict=True, ge=1, le=10**12, description="Minor units to refund; omit to refund everything not yet refunded."
    ),
]
