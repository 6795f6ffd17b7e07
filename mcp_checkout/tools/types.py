"""Input types shared by every tool: one definition, one set of bounds, one JSON schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from mcp_checkout.domain import MAX_CART_LINES, MAX_QUANTITY, OrderStatus

SAFE_KEY = r"^[A-Za-z0-9._:-]+$"

IdempotencyKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=SAFE_KEY,
        description="A UUID per operation; reuse the same key to retry it.",
    ),
]
MAX_ID = 64


def shown(drop: tuple[str, ...] = (), **keywords: Any) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` that shows a model fewer or shorter keywords than pydantic enforces: the full rule
    still validates every call (a clear ``invalid_input``), the schema every model reads on every turn says
    only what helps it write a valid call. Strings stay bounded (tests/integration/test_tool_contract.py)."""

    def edit(schema: dict[str, Any]) -> None:
        for key in drop:
            schema.pop(key, None)
        schema.update(keywords)

    return edit


def issued_id(prefix: str, source: str) -> Any:
    """The field of an id we issued (``ord_…``, ``cart_…``): its prefix and at most MAX_ID characters, in one
    pattern. A model copies ids from the answer of ``source``, which the description names: it is shown a
    length bound, not the pattern."""
    return Field(
        pattern=rf"^{prefix}_[A-Za-z0-9]{{1,{MAX_ID - len(prefix) - 1}}}$",
        description=f"From {source}.",
        json_schema_extra=shown(("pattern",), maxLength=MAX_ID),
    )


CartId = Annotated[str, issued_id("cart", "create_cart")]
OrderId = Annotated[str, issued_id("ord", "create_order")]
ProductId = Annotated[str, issued_id("prod", "search_catalog")]
Sku = Annotated[str, Field(min_length=1, max_length=64, description="From search_catalog.")]
Quantity = Annotated[int, Field(strict=True, ge=1, le=MAX_QUANTITY)]
MerchantReference = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9._:-]{1,128}$",
        description="Yours; lookup_orders finds orders by it.",
    ),
]
Email = Annotated[
    str,
    Field(
        max_length=254,
        pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$",
        json_schema_extra=shown(("pattern",), format="email"),
    ),
]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="e.g. USD.")]
MinorUnits = Annotated[int, Field(strict=True, ge=0, le=10**12, description="Minor units (cents).")]
SearchQuery = Annotated[str, Field(max_length=500, description="Empty browses.")]
Category = Annotated[str, Field(min_length=1, max_length=120, description="Exact category (any case).")]
PageSize = Annotated[int, Field(strict=True, ge=1, le=100)]
Cursor = Annotated[str, Field(min_length=1, max_length=512)]  # each tool's description: cursor=next_cursor
Reason = Annotated[str, Field(min_length=1, max_length=500)]


Flag = Annotated[bool, Field(strict=True)]
OrderStatuses = Annotated[
    list[OrderStatus],
    Field(
        min_length=1,
        max_length=len(OrderStatus),
        description='Any of them ends the wait, e.g. ["paid"].',
    ),
]
WaitSeconds = Annotated[
    int,
    Field(
        strict=True,
        ge=1,
        le=60,
        description="Keep it under your own request timeout.",
    ),
]


class LineInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    quantity: Quantity


OrderLines = Annotated[list[LineInput], Field(min_length=1, max_length=MAX_CART_LINES)]


ShipLines = Annotated[
    list[LineInput], Field(min_length=1, max_length=MAX_CART_LINES, description="[{sku, quantity}] shipped now.")
]
Carrier = Annotated[str, Field(min_length=1, max_length=80, description="e.g. UPS.")]
TrackingNumber = Annotated[str, Field(min_length=1, max_length=120)]


# A postal address. Only country is required here: a cart may hold country alone (region, postal_code optional)
# to quote options and tax; the service requires name, line1, city and postal_code where an address is placed
# (an order that ships, a pickup point), naming the missing ones (service/quotes.py, service/rates.py).
class ShippingAddress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    line1: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    line2: Annotated[str, Field(max_length=200)] | None = None
    city: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    region: Annotated[str, Field(max_length=100)] | None = None
    postal_code: Annotated[str, Field(min_length=1, max_length=20)] | None = None
    country: Annotated[str, Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166 alpha-2, e.g. US.")]


class Buyer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    phone: (
        Annotated[
            str,
            Field(
                max_length=32,
                pattern=r"^\+?[0-9][0-9 ()./-]{2,30}$",
                description="e.g. +1 415 555 0100.",
                json_schema_extra=shown(("pattern",)),
            ),
        ]
        | None
    ) = None


DiscountCode = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$", json_schema_extra=shown(("pattern",)))
]
DiscountCodes = Annotated[list[DiscountCode], Field(max_length=5, description="Codes the buyer gave; [] removes all.")]
FulfillmentOptionId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=SAFE_KEY,
        description="An option_id from fulfillment_options.",
        json_schema_extra=shown(("pattern",)),
    ),
]


LinkId = Annotated[str, issued_id("link", "create_checkout_link")]
HttpUrl = Annotated[
    str, Field(min_length=8, max_length=2048, pattern=r"^https?://\S+$", json_schema_extra=shown(("minLength",)))
]
TtlMinutes = Annotated[int, Field(strict=True, ge=5, le=10080, description="Minutes the link lives (default 1 day).")]
RefundAmount = Annotated[
    int,
    Field(strict=True, ge=1, le=10**12, description="Minor units; omit to refund all that is left."),
]
