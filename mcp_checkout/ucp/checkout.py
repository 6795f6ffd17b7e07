"""The checkout capability over the native model: a UCP checkout session IS a native cart (its id is the
cart id); ``complete_checkout`` turns it into an order and that order's single-use checkout link, exactly
once per idempotency key (``LinkService.create_link`` with ``cart_id``). A UCP item id is a SKU code.

Status: an open cart is ``incomplete`` (messages say what is wrong, with JSONPath ``path``) or
``ready_for_complete``; its order awaiting payment is ``requires_escalation`` with ``continue_url`` = the
buyer's checkout link; a paid (or later) order is ``completed``; a canceled cart or a canceled/expired
order is ``canceled``. Instruments sent with completion are charged by their handler (``ucp/payment.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ucp_sdk.models.schemas.shopping.checkout import Checkout
from ucp_sdk.models.schemas.shopping.checkout_complete_request import CheckoutCompleteRequest
from ucp_sdk.models.schemas.shopping.checkout_create_request import CheckoutCreateRequest
from ucp_sdk.models.schemas.shopping.checkout_update_request import CheckoutUpdateRequest

from mcp_checkout import domain
from mcp_checkout.domain import Principal
from mcp_checkout.errors import (
    CartAlreadyOrdered,
    CheckoutError,
    CurrencyMismatch,
    InsufficientStock,
    InvalidInput,
    NotFound,
)
from mcp_checkout.service.carts import CancelCheckout, CartDetails, CreateCart
from mcp_checkout.service.checkout_links import CreateLink
from mcp_checkout.service.container import Services
from mcp_checkout.service.views import CartOut, MoneyOut, OrderOut
from mcp_checkout.ucp import payment, spec
from mcp_checkout.ucp.addresses import cart_destination, joined_name, split_name
from mcp_checkout.ucp.negotiation import UcpProblem
from mcp_checkout.ucp.profile import payment_handlers

COMPLETED = frozenset({"paid", "partially_fulfilled", "fulfilled", "refunded"})
CLOSED = frozenset({"canceled", "expired"})
Message = dict[str, Any]
M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], body: Any) -> M:
    """The request body as its ``ucp-sdk`` model, or a 400 ``invalid_request`` naming the first problem."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        raise UcpProblem(400, "invalid_request", f"{where}: {first['msg']}") from exc


def _error(code: str, content: str, path: str | None = None, severity: str = "recoverable") -> Message:
    message: Message = {"type": "error", "code": code, "content": content, "severity": severity}
    if path:
        message["path"] = path
    return message


def _digest(body: Any) -> str:
    """A request body's digest for the idempotency fingerprint (key order ignored)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _amount(money: MoneyOut | None) -> int:
    return money.amount if money is not None else 0


@dataclass(frozen=True)
class _Line:
    sku: str
    title: str
    quantity: int
    unit_price: MoneyOut
    line_total: MoneyOut
    discount: MoneyOut | None
    image_url: str | None = None


def _line_item(line: _Line) -> dict[str, Any]:
    item: dict[str, Any] = {"id": line.sku, "title": line.title, "price": line.unit_price.amount}
    if line.image_url:
        item["image_url"] = line.image_url
    totals = [{"type": "subtotal", "amount": line.line_total.amount}]
    if _amount(line.discount) > 0:
        totals.append({"type": "discount", "amount": -_amount(line.discount)})
    totals.append({"type": "total", "amount": line.line_total.amount - _amount(line.discount)})
    return {"id": line.sku, "item": item, "quantity": line.quantity, "totals": totals}


def _totals(view: CartOut | OrderOut) -> list[dict[str, Any]]:
    """subtotal, discount (negative), shipping, tax (when added on top), total: the non-total entries sum
    to the total; tax contained in prices is a sub-line of the total."""
    totals: list[dict[str, Any]] = [{"type": "subtotal", "amount": view.subtotal.amount}]
    if _amount(view.discount_total) > 0:
        totals.append({"type": "discount", "amount": -_amount(view.discount_total)})
    if _amount(view.shipping_total) > 0:
        totals.append({"type": "fulfillment", "amount": view.shipping_total.amount})
    total: dict[str, Any] = {"type": "total", "amount": view.total.amount}
    if _amount(view.tax_total) > 0:
        if view.prices_include_tax:
            total["lines"] = [{"display_text": "Includes tax", "amount": _amount(view.tax_total)}]
        else:
            totals.append({"type": "tax", "amount": _amount(view.tax_total)})
    totals.append(total)
    return totals


# Where a native cart field lives in a UCP checkout (for message paths).
_PATHS = {
    "buyer": "$.buyer",
    "shipping_address": "$.fulfillment.methods[0].destinations[0]",
    "fulfillment_option_id": "$.fulfillment.methods[0].groups[0].selected_option_id",
    "discount_codes": "$.discounts.codes",
}


# Native messages that tell an agent which native tool to call, said as a UCP platform acts instead.
_IN_UCP_WORDS = {
    "shipping_address_required": "Some items ship: give a full shipping destination in fulfillment.methods[0]"
    ".destinations, or leave it to the buyer on the checkout page (continue_url).",
    "fulfillment_option_required": "Choose how to ship: set fulfillment.methods[0].groups[0].selected_option_id "
    "to one of the group's options.",
}


def _ucp_path(native: str) -> str:
    """A native argument path (``shipping_address.country``) as a JSONPath into the UCP checkout."""
    head, _, rest = native.partition(".")
    if head == "shipping_address" and rest:
        field = {
            "name": "first_name",
            "line1": "street_address",
            "line2": "extended_address",
            "city": "address_locality",
            "region": "address_region",
            "country": "address_country",
        }.get(rest, rest)
        return f"{_PATHS[head]}.{field}"
    if head in _PATHS:
        return _PATHS[head] + (f".{rest}" if rest and head != "fulfillment_option_id" else "")
    return f"$.{native}"


def details_from(body: Any) -> CartDetails | None:
    """The checkout's buyer, fulfillment (shipping destination, selected option) and discount codes as the
    native ``update_cart`` arguments; only what the request carries is sent (set semantics)."""
    if not isinstance(body, dict):
        return None
    values: dict[str, Any] = {}
    buyer = body.get("buyer")
    if isinstance(buyer, dict):
        values["buyer"] = {
            "email": buyer.get("email"),
            "name": joined_name(buyer),
            "phone": buyer.get("phone_number"),
        }
    fulfillment = body.get("fulfillment")
    if isinstance(fulfillment, dict):
        for method in fulfillment.get("methods") or []:
            if not isinstance(method, dict):
                continue
            destinations = [d for d in method.get("destinations") or [] if isinstance(d, dict)]
            chosen = method.get("selected_destination_id")
            destination = next(
                (d for d in destinations if d.get("id") == chosen), destinations[0] if destinations else None
            )
            if destination is not None and method.get("type", "shipping") == "shipping":
                values["shipping_address"] = {
                    "name": joined_name(destination) or (values.get("buyer") or {}).get("name") or "",
                    "line1": destination.get("street_address") or "",
                    "line2": destination.get("extended_address"),
                    "city": destination.get("address_locality") or "",
                    "region": destination.get("address_region"),
                    "postal_code": destination.get("postal_code") or "",
                    "country": destination.get("address_country") or "",
                }
            for group in method.get("groups") or []:
                if isinstance(group, dict) and "selected_option_id" in group:
                    values["fulfillment_option_id"] = group["selected_option_id"]
    discounts = body.get("discounts")
    if isinstance(discounts, dict) and "codes" in discounts:
        codes = discounts["codes"]
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise UcpProblem(400, "invalid_request", "$.discounts.codes: a list of discount code strings.")
        values["discount_codes"] = codes
    if not values:
        return None
    return CartDetails(**values, sent=tuple(values))


def _option(option: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": option.option_id,
        "title": option.name,
        "totals": [{"type": "total", "amount": option.price.amount}],
    }
    if option.carrier:
        out["carrier"] = option.carrier
    if option.min_days is not None or option.max_days is not None:
        days = "-".join(str(d) for d in (option.min_days, option.max_days) if d is not None)
        out["description"] = f"{days} business days"
    return out


def _fulfillment(cart: CartOut) -> dict[str, Any] | None:
    """The cart's destination and options as the fulfillment extension: one shipping method (its one
    destination, one group with every shipping option) and, if the store offers pickup, one pickup method."""
    where = cart_destination(cart.shipping_address, cart.quote_destination)  # a full address, or a quote's
    if where is None and not cart.fulfillment_options and cart.fulfillment_option_id is None:
        return None
    line_ids = [line.sku for line in cart.lines]
    methods: list[dict[str, Any]] = []
    for kind in ("shipping", "pickup"):
        options = [o for o in cart.fulfillment_options if o.kind == kind]
        method: dict[str, Any] = {"id": kind, "type": kind, "line_item_ids": line_ids}
        if kind == "shipping" and where is not None:
            method["destinations"] = [{"id": "destination_1", **where}]
            method["selected_destination_id"] = "destination_1"
        elif not options:
            continue
        group: dict[str, Any] = {
            "id": f"{kind}_group",
            "line_item_ids": line_ids,
            "options": [_option(o) for o in options],
        }
        if cart.fulfillment_option_id in {o.option_id for o in options}:
            group["selected_option_id"] = cart.fulfillment_option_id
        method["groups"] = [group]
        methods.append(method)
    return {"methods": methods}


def _discounts(cart: CartOut | OrderOut) -> dict[str, Any] | None:
    if not cart.discounts:
        return None
    return {
        "codes": [d.code for d in cart.discounts],
        "applied": [{"code": d.code, "title": d.code, "amount": d.amount.amount} for d in cart.discounts],
    }


def _state_messages(cart: CartOut) -> list[Message]:
    """What keeps an open cart from completing, as UCP messages (recomputed on every read)."""
    messages: list[Message] = []
    if not cart.lines:
        messages.append(_error("missing", "Add at least one line item.", "$.line_items"))
    for index, line in enumerate(cart.lines):
        if line.available < line.quantity:
            messages.append(
                _error(
                    "out_of_stock",
                    f"Only {max(line.available, 0)} of {line.sku} left ({line.quantity} requested).",
                    f"$.line_items[{index}].quantity",
                )
            )
    for native in cart.messages:
        if native.code in ("cart_empty", "insufficient_stock"):  # said above in UCP's own words
            continue
        content = _IN_UCP_WORDS.get(native.code, native.message)
        if native.code == "shipping_address_required" and native.path and "." in native.path:  # a quote's
            content = (
                f"Completing needs the full shipping destination: add {_ucp_path(native.path).rpartition('.')[2]} "
                "to fulfillment.methods[0].destinations[0] (options and tax are quoted for its country until then)."
            )
        message: Message = {"type": native.severity, "code": native.code, "content": content}
        if native.severity == "error":
            message["severity"] = "recoverable"
        if native.path:
            message["path"] = _ucp_path(native.path)
        messages.append(message)
    return messages


# A checkout answer's capabilities (the checkout and its extensions), as negotiation leaves them.
CHECKOUT_CAPABILITIES = {
    spec.CHECKOUT: [{"version": spec.VERSION}],
    spec.FULFILLMENT: [{"version": spec.VERSION, "extends": spec.CHECKOUT}],
    spec.DISCOUNT: [{"version": spec.VERSION, "extends": spec.CHECKOUT}],
}


class CheckoutAdapter:
    """The five checkout operations for one principal, over the native services."""

    def __init__(self, services: Services, negotiated: Collection[str] | None = None) -> None:
        """``negotiated``: the capabilities of the intersection with the platform's profile (None: all ours);
        answers name only those, and carry an extension's fields only when it was negotiated."""
        self._services = services
        self._negotiated = negotiated
        self._payment_mode = services.settings.payment_mode
        self._publishable_key = services.settings.stripe_publishable_key
        self._base = services.settings.resolved_public_base_url()

    def _active(self, capability: str) -> bool:
        return self._negotiated is None or capability in self._negotiated

    # ------------------------------------------------------------ responses
    def _response(
        self,
        cart: CartOut,
        order: OrderOut | None,
        *,
        continue_url: str | None = None,
        messages: Sequence[Message] = (),
        status: str | None = None,
        links: Sequence[dict[str, str]] = (),
    ) -> dict[str, Any]:
        if order is not None:
            lines = [
                _Line(x.sku, x.title, x.quantity, x.unit_price, x.line_total, x.discount, x.image_url)
                for x in order.lines
            ]
            view: CartOut | OrderOut = order
        else:
            lines = [_Line(x.sku, x.title, x.quantity, x.unit_price, x.line_total, x.discount) for x in cart.lines]
            view = cart
        all_messages = list(messages)
        if order is None and cart.status == "open":
            all_messages += _state_messages(cart)
        if status is None:
            status = self._status(cart, order, all_messages)
            if status == "ready_for_complete" and not cart.ready:
                status = "incomplete"
        body: dict[str, Any] = {
            "ucp": {
                "version": spec.VERSION,
                "status": "success",
                "capabilities": {name: entry for name, entry in CHECKOUT_CAPABILITIES.items() if self._active(name)},
                "payment_handlers": payment_handlers(self._payment_mode, self._publishable_key),
            },
            "id": cart.cart_id,
            "line_items": [_line_item(line) for line in lines],
            "status": status,
            "currency": view.currency,
            "totals": _totals(view),
            "links": list(links),
        }
        if cart.buyer is not None:
            buyer = {"email": cart.buyer.email, **split_name(cart.buyer.name), "phone_number": cart.buyer.phone}
            body["buyer"] = {k: v for k, v in buyer.items() if v}
        fulfillment = _fulfillment(cart) if self._active(spec.FULFILLMENT) else None
        if fulfillment is not None:
            body["fulfillment"] = fulfillment
        discounts = _discounts(order if order is not None else cart) if self._active(spec.DISCOUNT) else None
        if discounts is not None:
            body["discounts"] = discounts
        if all_messages:
            body["messages"] = all_messages
        if continue_url and status not in ("completed", "canceled"):
            body["continue_url"] = continue_url
        if order is not None and status == "completed":
            body["order"] = {"id": order.order_id, "label": order.number, "permalink_url": continue_url or self._base}
        return Checkout.model_validate(body).model_dump(mode="json", by_alias=True, exclude_none=True)

    async def _links(self) -> list[dict[str, str]]:
        """The store's policy pages (store profile) as the spec's well-known link types."""
        profile = await self._services.store_profile.get()
        pages = (
            ("privacy_policy", profile.privacy_url),
            ("terms_of_service", profile.terms_url),
            ("refund_policy", profile.returns_url),
            ("shipping_policy", profile.shipping_policy_url),
        )
        return [{"type": kind, "url": url} for kind, url in pages if url]

    async def _respond(
        self,
        cart: CartOut,
        order: OrderOut | None,
        *,
        continue_url: str | None = None,
        messages: Sequence[Message] = (),
    ) -> dict[str, Any]:
        links = await self._links()
        return self._response(cart, order, continue_url=continue_url, messages=messages, links=links)

    @staticmethod
    def _status(cart: CartOut, order: OrderOut | None, messages: Sequence[Message]) -> str:
        if order is not None:
            if order.status in COMPLETED:
                return "completed"
            if order.status in CLOSED:
                return "canceled"
            return "requires_escalation"
        if cart.status == "canceled":
            return "canceled"
        return "incomplete" if any(m["type"] == "error" for m in messages) else "ready_for_complete"

    async def _order_state(self, principal: Principal, cart: CartOut) -> tuple[OrderOut | None, str | None]:
        if cart.order_id is None:
            return None, None
        order = await self._services.orders.get(principal, cart.order_id)
        link = await self._services.links.current_link(principal, cart.order_id)
        return order, link.url if link is not None else None

    async def _view(self, principal: Principal, cart: CartOut, messages: Sequence[Message] = ()) -> dict[str, Any]:
        order, url = await self._order_state(principal, cart)
        return await self._respond(cart, order, continue_url=url, messages=messages)

    # ------------------------------------------------------------ operations
    async def _set_lines(
        self, principal: Principal, cart_id: str, wanted: Sequence[tuple[str, int]]
    ) -> tuple[CartOut, list[Message]]:
        """Make the cart hold exactly ``wanted`` (SKU, quantity); each line that cannot be had is a message."""
        carts = self._services.carts
        messages: list[Message] = []
        cart = await carts.get(principal, cart_id)
        keep = {sku for sku, _ in wanted}
        for line in cart.lines:
            if line.sku not in keep:
                cart = await carts.remove(principal, cart_id, line.sku)
        for index, (sku, quantity) in enumerate(wanted):
            path = f"$.line_items[{index}]"
            try:
                cart = await carts.set_quantity(principal, cart_id, sku, quantity)
            except InsufficientStock as exc:
                messages.append(_error("out_of_stock", exc.message, f"{path}.quantity"))
            except (NotFound, CurrencyMismatch) as exc:
                messages.append(_error("item_unavailable", exc.message, f"{path}.item.id"))
            except InvalidInput as exc:
                messages.append(_error("invalid", exc.message, path))
        return cart, messages

    @staticmethod
    def _wanted(line_items: Sequence[Any]) -> list[tuple[str, int]]:
        """(SKU, quantity) per line, lines for the same item added together."""
        wanted: dict[str, int] = {}
        for line in line_items:
            wanted[line.item.id] = wanted.get(line.item.id, 0) + line.quantity
        if len(wanted) > domain.MAX_CART_LINES:
            raise UcpProblem(400, "invalid_request", f"A checkout holds at most {domain.MAX_CART_LINES} items.")
        return list(wanted.items())

    async def create(self, principal: Principal, body: Any, idempotency_key: str | None = None) -> dict[str, Any]:
        """A checkout from line_items. Under an idempotency key a retry gets the same checkout back (as it
        is now) and another body under the key is ``idempotency_conflict``."""
        request = parse(CheckoutCreateRequest, body)
        wanted = self._wanted(request.line_items)
        currency = await self._currency_of([sku for sku, _ in wanted])
        if idempotency_key is None:
            cart = await self._services.carts.create(principal, currency)
        else:
            cart, replayed = await self._services.carts.create_once(
                principal,
                CreateCart(
                    idempotency_key=idempotency_key,
                    currency=currency,
                    request_digest=_digest(body),
                    sent=("currency", "request_digest"),
                ),
            )
            if replayed:
                return await self._view(principal, cart)
        cart, messages = await self._set_lines(principal, cart.cart_id, wanted)
        if wanted and cart.lines:
            cart, more = await self._set_details(principal, cart, body)
            messages += more
        if wanted and not cart.lines:  # nothing could be had: no checkout is created
            await self._services.carts.cancel(principal, cart.cart_id)
            return {
                "ucp": {"version": spec.VERSION, "status": "error"},
                "messages": [{**m, "severity": "unrecoverable"} for m in messages],
                "continue_url": self._base,
            }
        return await self._respond(cart, None, messages=messages)

    async def _currency_of(self, skus: Sequence[str]) -> str | None:
        for sku in skus:
            try:
                product = await self._services.catalog.get_product(sku=sku)
            except CheckoutError:
                continue
            return next(v.price.currency for v in product.variants if v.sku == sku)
        return None

    async def get(self, principal: Principal, checkout_id: str) -> dict[str, Any]:
        cart = await self._services.carts.get(principal, checkout_id)
        return await self._view(principal, cart)

    async def update(self, principal: Principal, checkout_id: str, body: Any) -> dict[str, Any]:
        request = parse(CheckoutUpdateRequest, body)
        cart = await self._services.carts.get(principal, checkout_id)
        if cart.status != "open":
            raise UcpProblem(
                409,
                "invalid_state",
                f"Checkout {checkout_id} is {await self._status_of(principal, cart)}; it can no longer change.",
            )
        cart, messages = await self._set_lines(principal, checkout_id, self._wanted(request.line_items))
        cart, more = await self._set_details(principal, cart, body)
        return await self._respond(cart, None, messages=messages + more)

    async def _set_details(self, principal: Principal, cart: CartOut, body: Any) -> tuple[CartOut, list[Message]]:
        """Apply the request's buyer, fulfillment and discount codes (those it carries); a field the native
        cart refuses is an error message at its UCP path and is not applied, the others are (an unknown
        selected option does not lose the destination sent with it)."""
        details = details_from(body)
        messages: list[Message] = []
        while details is not None and details.sent:
            try:
                return await self._services.carts.update(principal, cart.cart_id, details), messages
            except InvalidInput as exc:
                field = str(exc.details.get("field") or "") if isinstance(exc.details, dict) else ""
                messages.append(_error("invalid", exc.message, _ucp_path(field) if field else None))
                refused = field.partition(".")[0]
                if refused not in details.sent:
                    break
                details = replace(details, sent=tuple(name for name in details.sent if name != refused))
        return cart, messages

    async def _status_of(self, principal: Principal, cart: CartOut) -> str:
        return str((await self._view(principal, cart))["status"])

    async def cancel(self, principal: Principal, checkout_id: str, idempotency_key: str) -> dict[str, Any]:
        """Cancel the checkout (its cart, or the order made of it), once per idempotency key (the spec requires
        one): a retry answers like the first call (the checkout as it is now, canceled) instead of
        ``invalid_state``."""
        cart = await self._services.carts.get(principal, checkout_id)

        async def cancel() -> None:
            status = await self._status_of(principal, await self._services.carts.get(principal, checkout_id))
            if status in ("completed", "canceled"):
                raise UcpProblem(409, "invalid_state", f"Checkout {checkout_id} is {status} and cannot be canceled.")
            if cart.order_id is None:
                await self._services.carts.cancel(principal, checkout_id)
            else:
                await self._services.orders.cancel(principal, cart.order_id, "canceled with UCP cancel_checkout")

        keyed = CancelCheckout(idempotency_key=idempotency_key, cart_id=checkout_id)
        await self._services.carts.cancel_once(principal, keyed, cancel)
        return await self._view(principal, await self._services.carts.get(principal, checkout_id))

    async def complete(self, principal: Principal, checkout_id: str, body: Any, idempotency_key: str) -> dict[str, Any]:
        request = parse(CheckoutCompleteRequest, body)
        cart = await self._services.carts.get(principal, checkout_id)
        if cart.order_id is None:
            current = await self._view(principal, cart)
            if current["status"] != "ready_for_complete":
                return current  # incomplete (its messages say why) or canceled: nothing to place
        digest = _digest(body)
        # Every call goes through the key: a retry replays, another body under the key is a conflict, and a
        # checkout completed by a concurrent call under another key is answered as it now is.
        with contextlib.suppress(CartAlreadyOrdered):
            await self._services.links.create_link(
                principal,
                CreateLink(
                    cart_id=checkout_id,
                    idempotency_key=idempotency_key,
                    request_digest=digest,
                    sent=("cart_id", "request_digest"),
                ),
            )
        cart = await self._services.carts.get(principal, checkout_id)
        order, url = await self._order_state(principal, cart)
        messages: list[Message] = []
        if order is not None and order.status == "pending_payment":
            messages = await payment.pay(
                self._services,
                principal,
                request,
                order_id=order.order_id,
                continue_url=url,
                idempotency_key=idempotency_key,
            )
            order = await self._services.orders.get(principal, order.order_id)
        escalated = any(m.get("severity") == "requires_buyer_input" for m in messages)
        if order is not None and order.status == "pending_payment" and not escalated:
            messages.append(
                _error(
                    "payment_required",
                    "The buyer pays on the checkout page at continue_url.",
                    severity="requires_buyer_input",
                )
            )
        return await self._respond(cart, order, continue_url=url, messages=messages)
