"""What services return: pydantic models that tools hand to clients as structured content."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mcp_checkout.domain import DISPLAY_LOCALE, Money


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class MoneyOut(Out):
    amount: int = Field(description="Integer minor units (cents for USD/EUR).")
    currency: str = Field(description="ISO-4217 code.")
    display: str = Field(description="As buyers read it, e.g. '$12.50' or '¥1,500'.")

    @classmethod
    def of(cls, money: Money, locale: str = DISPLAY_LOCALE) -> MoneyOut:
        """``money`` with its display for ``locale`` (the store profile's, on buyer pages)."""
        return _money_out(money.amount, money.currency, locale)

    @classmethod
    def minor(cls, amount: int, currency: str, locale: str = DISPLAY_LOCALE) -> MoneyOut:
        """``amount`` minor units of ``currency`` with its display for ``locale`` (as :meth:`of`)."""
        return _money_out(amount, currency, locale)


@functools.lru_cache(maxsize=8192)  # views show the same prices and totals again and again; MoneyOut is frozen
def _money_out(amount: int, currency: str, locale: str) -> MoneyOut:
    # Validated: pydantic-core checks three plain values in less time than model_construct's Python loop takes.
    return MoneyOut(amount=int(amount), currency=currency, display=Money(amount, currency).display(locale))


class SkuOut(Out):
    sku: str
    name: str = Field(description="Variant name, e.g. 'Large / Blue'; empty for a single-variant product.")
    title: str = Field(description="Product name plus variant, as shown to buyers.")
    price: MoneyOut
    available: int = Field(description="Units that can be ordered now (stock on hand minus reservations).")
    in_stock: bool
    image_url: str | None = Field(default=None, description="The variant's picture, if the catalog has one.")
    requires_shipping: bool = True
    tax_category: str = Field(default="standard", description="standard, reduced, zero or the merchant's own.")
    weight_grams: int | None = None


class SearchHit(Out):
    sku: str
    product_id: str
    title: str
    category: str
    price: MoneyOut
    available: int
    in_stock: bool


class SearchResult(Out):
    query: str
    terms: list[str] = Field(description="The words actually searched for, after cleaning the query.")
    items: list[SearchHit]
    next_cursor: str | None = Field(description="Pass to search_catalog as cursor for the next page; null at the end.")


class ProductOut(Out):
    product_id: str
    external_id: str | None
    name: str
    description: str
    category: str
    description_html: str | None = Field(
        default=None,
        description="The shop export's HTML description as imported (untrusted markup: show it escaped or sanitised).",
    )
    variants: list[SkuOut]


class CartLineOut(Out):
    sku: str
    title: str
    quantity: int
    unit_price: MoneyOut
    line_total: MoneyOut = Field(description="unit_price times quantity, before discount and tax.")
    discount: MoneyOut = Field(description="This line's share of the discounts.")
    tax: MoneyOut = Field(description="Tax on this line (inside it when prices include tax).")
    available: int = Field(description="Units available right now; below quantity means create_order would fail.")


class BuyerOut(Out):
    email: str | None = None
    name: str | None = None
    phone: str | None = None


class ShippingAddressOut(Out):
    name: str
    line1: str
    line2: str | None = None
    city: str
    region: str | None = None
    postal_code: str
    country: str


class QuoteDestinationOut(Out):
    country: str
    region: str | None = None
    postal_code: str | None = None
    name: str | None = None


class FulfillmentOptionOut(Out):
    option_id: str
    kind: Literal["shipping", "pickup"]
    name: str
    carrier: str | None = None
    price: MoneyOut = Field(description="What this option costs this cart (0 when free_over is reached).")
    min_days: int | None = None
    max_days: int | None = None
    pickup_address: ShippingAddressOut | None = Field(default=None, description="Where to collect (pickup only).")


class AppliedDiscount(Out):
    code: str
    amount: MoneyOut = Field(description="How much this code takes off (shipping included for free_shipping).")


class CheckoutMessage(Out):
    severity: Literal["error", "warning", "info"]
    code: str = Field(description="e.g. shipping_address_required, fulfillment_option_required, discount_code_invalid.")
    path: str | None = Field(default=None, description="The argument it is about, e.g. shipping_address.country.")
    message: str


class Breakdown(Out):
    """What a cart or order costs: total = subtotal - discount_total + shipping_total + tax_total, where
    tax_total is added only when prices exclude tax (prices_include_tax: it is contained in the lines)."""

    subtotal: MoneyOut
    discount_total: MoneyOut
    shipping_total: MoneyOut
    tax_total: MoneyOut
    total: MoneyOut
    prices_include_tax: bool = False


class CartOut(Breakdown):
    cart_id: str
    status: Literal["open", "ordered", "canceled"]
    currency: str
    lines: list[CartLineOut]
    item_count: int
    order_id: str | None = Field(description="The order this cart became, once ordered.")
    buyer: BuyerOut | None = None
    shipping_address: ShippingAddressOut | None = None
    quote_destination: QuoteDestinationOut | None = Field(
        default=None,
        description="Where options and tax are quoted while only country/region/postal code are known; "
        "create_order needs the full shipping_address.",
    )
    fulfillment_options: list[FulfillmentOptionOut] = Field(
        default_factory=list, description="What the store offers for this destination; pick one by option_id."
    )
    fulfillment_option_id: str | None = None
    discounts: list[AppliedDiscount] = Field(default_factory=list)
    messages: list[CheckoutMessage] = Field(default_factory=list, description="What is still missing or wrong.")
    ready: bool = Field(default=True, description="True when create_order would give an order ready to pay.")


class OrderLineOut(Out):
    sku: str
    title: str
    quantity: int
    unit_price: MoneyOut
    line_total: MoneyOut = Field(description="unit_price times quantity, before discount and tax.")
    discount: MoneyOut
    tax: MoneyOut
    fulfilled_quantity: int = 0
    image_url: str | None = None


class FulfilledLine(Out):
    sku: str
    quantity: int


class FulfillmentOut(Out):
    fulfillment_id: str
    lines: list[FulfilledLine]
    carrier: str | None
    tracking_number: str | None
    tracking_url: str | None
    at: datetime


class StatusChange(Out):
    from_status: str | None
    to_status: str
    at: datetime
    actor: Literal["agent", "buyer", "merchant", "system"]
    reason: str | None


class CreatedBy(Out):
    principal_id: str
    client: str = Field(description="The MCP client that created the order, as it named itself.")


class CheckoutState(Out):
    link_id: str
    link_status: Literal["active", "in_session", "consumed", "expired", "revoked"]
    session_status: Literal["open", "payment_pending", "completed", "canceled"] | None
    merchant_reference_id: str | None
    expires_at: datetime


class PaymentState(Out):
    gateway: str
    intent_id: str | None
    status: str = Field(description="The gateway's state of the latest payment attempt.")
    attempt: int
    amount_received: MoneyOut
    refunded: MoneyOut
    last_error: str | None


class OrderIssue(Out):
    code: str
    message: str
    at: datetime


class OrderOut(Breakdown):
    order_id: str
    number: str = Field(description="Human order number, e.g. MC-000123, for buyers and support.")
    status: Literal["pending_payment", "paid", "partially_fulfilled", "fulfilled", "canceled", "expired", "refunded"]
    currency: str
    lines: list[OrderLineOut]
    email: str | None
    merchant_reference_id: str | None
    shipping_address: ShippingAddressOut | None
    buyer: BuyerOut | None = None
    fulfillment_option: FulfillmentOptionOut | None = Field(default=None, description="The chosen way to ship.")
    discounts: list[AppliedDiscount] = Field(default_factory=list)
    fulfillments: list[FulfillmentOut] = Field(default_factory=list, description="Shipments, with tracking.")
    messages: list[CheckoutMessage] = Field(default_factory=list, description="What the buyer must still give.")
    ready: bool = Field(default=True, description="True when the order can be paid as it stands.")
    cart_id: str | None
    stock: Literal["reserved", "committed", "released"] = Field(
        description="reserved: held for this order; committed: sold; released: back on sale."
    )
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = Field(description="When an unpaid order expires and releases its stock.")
    created_by: CreatedBy
    status_history: list[StatusChange]
    checkout: CheckoutState | None = Field(
        default=None, description="The newest checkout link for this order and its buyer session, if any."
    )
    payment: PaymentState | None = Field(default=None, description="The latest payment attempt, if any.")
    issues: list[OrderIssue] = Field(
        default_factory=list,
        description="Problems the merchant should look at, e.g. a payment whose amount did not match the order.",
    )
    replayed: bool = Field(
        default=False,
        description="True when this call did not create anything: the order already existed for this "
        "idempotency_key or cart, and this is it (in its current state).",
    )

    def as_replay(self) -> OrderOut:
        return self.model_copy(update={"replayed": True})


class OrderLookup(Out):
    status: Literal["found", "not_found"]
    merchant_reference_id: str
    orders: list[OrderOut] = Field(description="Latest first.")


class OrderWaitOut(Out):
    reached: bool = Field(description="True when the order is in one of the statuses you waited for.")
    waited_seconds: float = Field(description="How long this call waited.")
    message: str = Field(description="What happened and what to do next.")
    order: OrderOut = Field(description="The order as it is now (as get_order returns it).")


class PaymentHandoff(Out):
    order_id: str
    gateway: Literal["stripe", "offline"]
    intent_id: str
    attempt: int
    status: str
    amount: MoneyOut
    client_secret: str | None = Field(
        description="Give this to the buyer's payment UI (Stripe.js confirmPayment); never log it. Null offline."
    )
    publishable_key: str | None = Field(description="Stripe publishable key for the buyer's payment UI.")


class SyncOut(Out):
    gateway_status: str
    outcome: str = Field(description="What the sync changed, e.g. 'order paid' or 'already paid'.")
    order: OrderOut


class RefundEntry(Out):
    refund_id: str
    status: Literal["pending", "succeeded", "failed"]
    amount: MoneyOut
    reason: str | None
    at: datetime


class RefundOut(Out):
    refund_id: str
    status: Literal["pending", "succeeded", "failed"]
    amount: MoneyOut
    replayed: bool
    order: OrderOut


class LinkOut(Out):
    link_id: str
    url: str | None = Field(
        description="The buyer's checkout URL. Shown only when minted: on a replay it is null; call "
        "regenerate_checkout_link for a fresh URL."
    )
    status: Literal["active", "in_session", "consumed", "expired", "revoked"]
    order_id: str
    order_number: str
    total: MoneyOut
    email_locked: bool
    merchant_reference_id: str | None
    success_url: str | None
    cancel_url: str | None
    expires_at: datetime
    session_status: Literal["open", "payment_pending", "completed", "canceled"] | None
    replaced_by: str | None = None
    replayed: bool = False


class StoreOut(Out):
    """Who sells, as buyer pages show it (from the store profile)."""

    name: str
    logo_url: str | None = None
    support_email: str | None = None
    terms_url: str | None = None
    privacy_url: str | None = None
    returns_url: str | None = None
    shipping_policy_url: str | None = None


class CheckoutPage(Breakdown):
    """Everything the buyer's checkout page shows. ``step``: what the buyer does next: confirm the
    email, give a shipping address, choose a delivery option, or pay (only then does an intent exist)."""

    merchant_name: str
    store: StoreOut
    order_id: str
    order_number: str
    lines: list[OrderLineOut]
    session_id: str
    email_required: bool
    step: Literal["email", "address", "delivery", "pay"] = "pay"
    requires_shipping: bool = False
    shipping_address: ShippingAddressOut | None = None
    fulfillment_option: FulfillmentOptionOut | None = None
    fulfillment_options: list[FulfillmentOptionOut] = Field(default_factory=list)
    gateway: Literal["stripe", "offline"]
    test_mode: bool
    client_secret: str | None
    publishable_key: str | None
    intent_status: str | None
    expires_at: datetime
    success_url: str | None
    cancel_url: str | None


class Receipt(Breakdown):
    """The built-in page after payment (or cancel): what was bought, for how much, shipped where."""

    store: StoreOut
    order_number: str
    status: str
    session_status: str
    placed_at: datetime
    paid_at: datetime | None = None
    lines: list[OrderLineOut]
    shipping_address: ShippingAddressOut | None = None
    fulfillment_option: FulfillmentOptionOut | None = None


class ImportIssue(Out):
    line: int
    sku: str | None
    reason: str


class ImportReport(Out):
    rows_read: int
    created: int
    updated: int
    skipped: int
    problems: list[ImportIssue]
    dry_run: bool = False


def jsonable(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


# ---------------------------------------------------------------- merchant tools
class InventoryOut(Out):
    sku: str
    title: str
    stock_on_hand: int = Field(description="Units in the warehouse, including those reserved by unpaid orders.")
    reserved: int = Field(description="Units held by unpaid orders; stock on hand never goes below this.")
    available: int = Field(description="Units buyers can still order: stock_on_hand - reserved.")
    previous_stock_on_hand: int | None = Field(
        default=None, description="Stock on hand before this change (null for a new SKU)."
    )


class UpsertProductOut(Out):
    created: bool = Field(description="True if the SKU was new; false if an existing SKU was updated.")
    product: ProductOut = Field(description="The product the SKU belongs to, with all its variants.")
    inventory: InventoryOut


class DeleteProductOut(Out):
    deleted: list[str] = Field(description="SKU codes deleted (they were never ordered).")
    archived: list[str] = Field(
        description="SKU codes archived because orders reference them: no longer found or sold, kept for those "
        "orders; upsert_product with the same SKU code lists one again."
    )
    products_deleted: list[str] = Field(description="Product ids deleted because none of their SKUs is left.")


class OrderSummary(Out):
    order_id: str
    number: str
    status: Literal["pending_payment", "paid", "partially_fulfilled", "fulfilled", "canceled", "expired", "refunded"]
    total: MoneyOut
    item_count: int = Field(description="Units over all lines.")
    merchant_reference_id: str | None = Field(
        description="The order's reference, or else the reference of its newest checkout link."
    )
    created_at: datetime
    expires_at: datetime | None = Field(description="When an unpaid order expires; null unless pending_payment.")


class OrderPage(Out):
    orders: list[OrderSummary] = Field(description="Latest first.")
    next_cursor: str | None = Field(
        description="Pass to list_orders as cursor (with the same filters) for the next page; null at the end."
    )


class OrderCounts(Out):
    total: int
    pending_payment: int
    paid: int
    partially_fulfilled: int
    fulfilled: int
    canceled: int
    expired: int
    refunded: int


class ProductSalesOut(Out):
    sku: str
    title: str
    units: int
    revenue: MoneyOut


class CurrencySales(Out):
    currency: str
    paid_orders: int = Field(description="Orders that became paid in the period.")
    revenue: MoneyOut = Field(description="Totals of the orders paid in the period, before refunds.")
    refunds: int = Field(description="Refunds made in the period.")
    refunded: MoneyOut = Field(description="Amount refunded in the period (whenever the order was paid).")
    net: MoneyOut = Field(description="revenue - refunded.")
    top_by_units: list[ProductSalesOut] = Field(description="Up to 5 SKUs, most units sold first.")
    top_by_revenue: list[ProductSalesOut] = Field(description="Up to 5 SKUs, highest revenue first.")


class SalesSummary(Out):
    period_start: datetime = Field(description="Inclusive, UTC.")
    period_end: datetime = Field(description="Exclusive, UTC.")
    orders_created: OrderCounts = Field(description="Orders created in the period, by their status now.")
    sales: list[CurrencySales] = Field(
        description="One entry per currency with payments or refunds in the period; empty if there were none."
    )


# ---------------------------------------------------------------- store configuration (merchant)
class StoreProfileOut(Out):
    name: str
    default_currency: str
    locale: str = Field(description="How prices are shown, e.g. en_US.")
    prices_include_tax: bool = Field(description="True: catalog prices contain the tax (EU VAT style).")
    allow_discount_stacking: bool = Field(description="True: a cart may use more than one discount code.")
    logo_url: str | None
    support_email: str | None
    terms_url: str | None
    privacy_url: str | None
    returns_url: str | None
    shipping_policy_url: str | None
    origin_country: str | None


class ShippingRateOut(Out):
    rate_id: str
    kind: Literal["shipping", "pickup"]
    name: str
    countries: list[str] = Field(description='ISO 3166-1 alpha-2 codes; ["*"] = the rest of the world.')
    price: MoneyOut
    free_over: MoneyOut | None = Field(description="Free when the goods after discount reach this.")
    min_days: int | None
    max_days: int | None
    carrier: str | None
    active: bool
    pickup_address: ShippingAddressOut | None


class ShippingRateList(Out):
    rates: list[ShippingRateOut]


class TaxRateOut(Out):
    country: str
    region: str | None = Field(description="ISO 3166-2 suffix (e.g. CA); null: the whole country.")
    category: str
    rate_bps: int = Field(description="Basis points: 2000 = 20 %.")
    applies_to_shipping: bool


class TaxRateList(Out):
    rates: list[TaxRateOut]


class TaxRateDeleted(Out):
    deleted: bool = Field(description="False: there was no such rate (nothing changed).")


class DiscountScopeOut(Out):
    categories: list[str] = Field(default_factory=list)
    skus: list[str] = Field(default_factory=list)


class DiscountCodeOut(Out):
    code: str
    kind: Literal["percent", "fixed", "free_shipping"]
    value: int = Field(description="percent: basis points (1500 = 15 %); fixed: minor units; free_shipping: 0.")
    currency: str | None
    min_subtotal: MoneyOut | None
    starts_at: datetime | None
    ends_at: datetime | None
    max_uses: int | None
    max_uses_per_buyer: int | None
    uses: int = Field(description="Placed orders holding the code (given back when unpaid ones close).")
    applies_to: DiscountScopeOut = Field(description="Empty lists: the whole cart.")
    active: bool


class DiscountCodeList(Out):
    codes: list[DiscountCodeOut]
