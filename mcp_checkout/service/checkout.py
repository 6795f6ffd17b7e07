"""Buyer sessions on checkout links (the agent's side of links: service/checkout_links.py).

A link's token has 256 random bits and only its SHA-256 is stored. The first open claims the link's
one session with a conditional update; every later open resumes that session (and the order's one
live PaymentIntent). Paid → 410 link_consumed; expired → 410 link_expired; replaced by
regenerate_checkout_link → 410 link_revoked.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, RowMapping

from mcp_checkout import domain
from mcp_checkout.domain import Actor, Clock, LinkStatus, OrderStatus, SessionStatus, pricing
from mcp_checkout.domain.store_profile import StoreProfile
from mcp_checkout.errors import (
    EmailMismatch,
    InvalidInput,
    InvalidState,
    LinkConsumed,
    LinkNotFound,
)
from mcp_checkout.payments.gateway import Intent
from mcp_checkout.payments.offline import OfflineGateway
from mcp_checkout.service import quotes
from mcp_checkout.service.checkout_links import PAYABLE, SETTLED, hash_token, link_problem
from mcp_checkout.service.email_proof import EmailProofs
from mcp_checkout.service.order_state import transition
from mcp_checkout.service.order_view import order_breakdown, order_lines
from mcp_checkout.service.orders import OrderService
from mcp_checkout.service.payments import PaymentService, PreparedIntent
from mcp_checkout.service.store_profile import ConfigCache, StoreConfig
from mcp_checkout.service.views import (
    CheckoutPage,
    FulfillmentOptionOut,
    MoneyOut,
    Receipt,
    ShippingAddressOut,
    StoreOut,
)
from mcp_checkout.store import checkout as checkout_store
from mcp_checkout.store import orders as order_store
from mcp_checkout.store import payments as payment_store
from mcp_checkout.store.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Visit:
    """What one open of a link found: the link, its session and its order (and, when the transaction that found
    them also read what the page shows (_page_facts): one snapshot, no second read)."""

    link: Mapping[Any, Any]
    session: Mapping[Any, Any]
    order: Mapping[Any, Any]
    shown: tuple[Sequence[RowMapping], StoreProfile, list[FulfillmentOptionOut]] | None = None


class CheckoutService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        orders: OrderService,
        payments: PaymentService,
        public_base_url: str,
        config: ConfigCache,
        email_proofs: EmailProofs,
    ) -> None:
        self._db = db
        self._clock = clock
        self._orders = orders
        self._payments = payments
        self._base = public_base_url.rstrip("/")
        self._config = config
        self._proofs = email_proofs

    # ------------------------------------------------------------ buyer side
    async def _visit(self, token: str) -> Visit:
        return await self._db.write(lambda conn: self._claim(conn, token))

    def _claim(self, conn: Connection, token: str) -> Visit:
        """Find the link and claim (first open) or resume (later opens) its one session."""
        return self._claim_found(conn, token)[0]

    def _claim_found(self, conn: Connection, token: str) -> tuple[Visit, checkout_store.LockedVisit]:
        """:meth:`_claim`, and what its first statement read (checkout_store.visit_for_update: the link and its
        order locked, the configuration stamp and, on SQLite, the order's latest payment attempt)."""
        now = self._clock()
        found = checkout_store.visit_for_update(conn, hash_token(token))
        if found is None:
            raise LinkNotFound("This checkout link does not exist. Check that the whole link was copied.")
        link, order = found.link, found.order
        problem = link_problem(link, order, now)
        if problem is not None:
            raise problem
        session: Mapping[Any, Any] | None = None
        if link["status"] == LinkStatus.ACTIVE.value and checkout_store.set_link_status(
            conn, link["id"], [LinkStatus.ACTIVE.value], LinkStatus.IN_SESSION.value, now
        ):
            session = checkout_store.insert_session(conn, domain.new_id("cs"), link["id"], order["id"], now)
        elif found.current:
            session = found.session
        if session is None:
            session = checkout_store.session_of_link(conn, link["id"])
        assert session is not None
        return Visit(link=link, session=session, order=order), found

    def _claim_to_pay(self, conn: Connection, token: str, proof: str | None) -> tuple[Visit, PreparedIntent | None]:
        """:meth:`_claim` and, once this buyer can pay (email proven, delivery chosen), the order's payment
        attempt (:meth:`PaymentService.prepare_intent`), and what the page shows, in one write transaction."""
        visit, found = self._claim_found(conn, token)
        order = visit.order
        config = self._config.at(conn, found.config_stamp)
        email_pending = self._email_pending(visit, proof)
        with_options = not email_pending and _delivery_step(order) == "delivery"
        visit = replace(visit, shown=self._page_facts(conn, order, with_options=with_options, config=config))
        if email_pending or delivery_missing(order):
            return visit, None
        latest = found.payment if found.current else payment_store.latest_payment(conn, order["id"], for_update=True)
        return visit, self._payments.prepare_intent(conn, order["id"], (order, latest))

    def _email_pending(self, visit: Visit, proof: str | None) -> bool:
        """An email-locked link whose email THIS browser (its proof cookie) has not proven."""
        return visit.link["email_lock"] is not None and not self._proofs.holds(proof, visit.session["id"])

    async def open(self, token: str, proof: str | None = None) -> CheckoutPage:
        """The page for this browser; ``proof``: its email-proof cookie (see :meth:`verify_email`).
        The PaymentIntent is made only once the order's total is final (its delivery is chosen)."""
        resumed = await self._db.read(lambda conn: self._resumable(conn, token, proof), quick=True)
        if resumed is not None:  # the common reload: one quick read, no write lock
            visit, intent_id, local = resumed  # local: the offline gateway's intent, read in the same snapshot
            intent = local or await self._payments.gateway.retrieve_intent(intent_id)
            if intent.status not in ("succeeded", "canceled"):
                return await self._page(visit, intent.client_secret, intent.status, proof)
        visit, prepared = await self._db.write(lambda conn: self._claim_to_pay(conn, token, proof))
        client_secret: str | None = None
        intent_status: str | None = None
        if prepared is not None:
            intent, _ = await self._payments.finish_intent(visit.order["id"], prepared)
            if intent.status == "succeeded":  # paid, but the webhook is not in yet: settle it now
                await self._payments.apply_intent(intent, actor=Actor.BUYER, source="checkout page")
                raise LinkConsumed(f"This checkout for order {visit.order['number']} is already paid.")
            client_secret, intent_status = intent.client_secret, intent.status
        return await self._page(visit, client_secret, intent_status, proof)

    async def summary(self, token: str, proof: str | None = None) -> CheckoutPage:
        """The page's facts without touching the payment (for the cancel confirmation and the address form)."""
        return await self._page(await self._visit(token), None, None, proof)

    def _resumable(self, conn: Connection, token: str, proof: str | None) -> tuple[Visit, str, Intent | None] | None:
        """A link already in session, usable, email confirmed, with a live intent: what a reload needs (with
        what the page shows, and the intent itself when this database holds it), in one snapshot."""
        link = checkout_store.link_by_hash(conn, hash_token(token))
        if link is None or link["status"] != LinkStatus.IN_SESSION.value:
            return None
        order = order_store.get(conn, link["order_id"])
        session = checkout_store.session_of_link(conn, link["id"])
        payment = payment_store.latest_payment(conn, link["order_id"])
        if order is None or session is None or payment is None or link_problem(link, order, self._clock()):
            return None
        visit = Visit(link=link, session=session, order=order)
        if self._email_pending(visit, proof) or payment["intent_id"] is None or payment["status"] in (
            "canceled", "amount_mismatch", "succeeded",
        ) or payment["amount_minor"] != order["total_minor"]:  # fmt: skip
            return None  # (an intent for an old total: the slow path replaces it)
        intent_id = str(payment["intent_id"])
        shown = self._page_facts(conn, order, with_options=_delivery_step(order) == "delivery")
        return replace(visit, shown=shown), intent_id, self._payments.local_intent(conn, intent_id)

    async def _page(
        self, visit: Visit, client_secret: str | None, intent_status: str | None, proof: str | None
    ) -> CheckoutPage:
        order = visit.order
        email_required = self._email_pending(visit, proof)
        step = "email" if email_required else _delivery_step(order) or "pay"
        shown = visit.shown  # read with the visit (a reload), else now
        if shown is None:
            shown = await self._db.read(
                lambda conn: self._page_facts(conn, order, with_options=step == "delivery"), quick=True
            )
        items, profile, options = shown
        return CheckoutPage(
            merchant_name=profile.name,
            store=store_out(profile),
            order_id=order["id"],
            order_number=order["number"],
            lines=order_lines(items, order["currency"], profile.locale),
            **order_breakdown(order, profile.locale),
            session_id=visit.session["id"],
            email_required=email_required,
            step=step,
            requires_shipping=bool(order["requires_shipping"]),
            shipping_address=None if email_required else shipping_address(order),
            fulfillment_option=chosen_option(order),
            fulfillment_options=options,
            gateway=self._payments.gateway.name,
            test_mode=self._payments.gateway.name == "offline",
            client_secret=client_secret,
            publishable_key=self._payments.gateway.publishable_key,
            intent_status=intent_status,
            expires_at=visit.link["expires_at"],
            success_url=visit.link["success_url"],
            cancel_url=visit.link["cancel_url"],
        )

    def _page_facts(
        self, conn: Connection, order: Mapping[Any, Any], *, with_options: bool, config: StoreConfig | None = None
    ) -> tuple[Sequence[RowMapping], StoreProfile, list[FulfillmentOptionOut]]:
        """The order's lines, the store profile and (for the delivery step) the options for its address.
        ``config``: the configuration as this transaction already read it (else read here)."""
        if config is None:
            config = self._config.get(conn)
        items = order_store.items(conn, order["id"])
        options = delivery_options(config, order, config.profile.locale) if with_options else []
        return items, config.profile, options

    # ------------------------------------------------------------ buyer side: delivery
    async def set_address(self, token: str, proof: str | None, form: Mapping[str, str]) -> None:
        """The buyer's shipping address from the page's form: checked (every field, at once), set on the
        order, which is priced again on the server; its option is chosen next. ``InvalidInput`` with
        ``details["fields"]`` (field -> problem) for a form the buyer must correct; nothing is changed then."""
        address = address_from_form(form)
        visit = await self._buyer_visit(token, proof)
        await self._redeliver(visit, address, None)

    async def choose_delivery(self, token: str, proof: str | None, option_id: str) -> None:
        """The buyer's choice among the delivery options for the order's address; the order is priced again."""
        option_id = option_id.strip()
        if not option_id or len(option_id) > 64 or domain.text_problem(option_id) is not None:
            raise InvalidInput("Choose one of the delivery options.", details={"fields": {"option_id": "missing"}})
        visit = await self._buyer_visit(token, proof)
        address = visit.order["shipping_address"]
        if not address:
            raise InvalidInput("Give a shipping address first.", details={"fields": {"country": "missing"}})
        await self._redeliver(visit, dict(address), option_id)

    async def _buyer_visit(self, token: str, proof: str | None) -> Visit:
        visit = await self._visit(token)
        if self._email_pending(visit, proof):
            raise EmailMismatch("Confirm your email address first.")
        if not visit.order["requires_shipping"]:
            raise InvalidState("Nothing in this order ships, so it needs no address.")
        return visit

    async def _redeliver(self, visit: Visit, address: Mapping[str, Any], option_id: str | None) -> None:
        """Set the delivery and price it again; then the one live intent, if its amount is now wrong, is
        replaced (canceled here; the next open makes the new one for the new total)."""
        order_id = visit.order["id"]
        payment = await self._db.read(lambda conn: payment_store.latest_payment(conn, order_id))
        if payment is not None and payment["status"] in ("processing", "requires_capture", "succeeded"):
            raise InvalidState(
                "Your payment is already being processed, so the delivery can no longer change. "
                "Contact the store if something is wrong.",
                details={"order_id": order_id, "payment_status": payment["status"]},
            )
        await self._orders.set_delivery(order_id, address, option_id)
        await self._payments.drop_stale_intent(order_id)

    async def verify_email(self, token: str, email: str) -> str:
        """Check the buyer's email against the link's lock (a limited number of attempts per link) and
        return the proof for this browser to keep (a cookie); the page asks every other browser again."""
        visit = await self._visit(token)
        locked = visit.link["email_lock"]
        if locked is not None:
            await self._proofs.count_attempt(visit.link["id"])
            given = email.strip().lower()[:254]
            if not hmac.compare_digest(given.encode(), str(locked).encode()):
                raise EmailMismatch(
                    "This checkout is reserved for a different email address. Enter the email the link was sent to."
                )
        await self._db.write(lambda conn: checkout_store.mark_email_verified(conn, visit.session["id"], self._clock()))
        return self._proofs.issue(visit.session["id"], visit.link["expires_at"])

    async def pay_offline(self, token: str, proof: str | None = None) -> str:
        """The offline gateway's test payment, as the buyer's button triggers it. Returns where to go next."""
        gateway = self._payments.gateway
        if not isinstance(gateway, OfflineGateway):
            raise InvalidState("This store takes real card payments; use the card form on the checkout page.")
        visit = await self._visit(token)
        if self._email_pending(visit, proof):
            raise EmailMismatch("Confirm your email address first.")
        intent, _ = await self._payments.ensure_intent(visit.order["id"])
        paid = await gateway.simulate_payment(intent.id)
        await self._payments.apply_intent(paid, actor=Actor.BUYER, source="offline checkout page")
        return self.after_payment_url(visit)

    def after_payment_url(self, visit: Visit) -> str:
        return str(visit.link["success_url"] or f"{self._base}/checkout/done/{visit.session['id']}")

    async def return_from_gateway(self, token: str) -> tuple[bool, str]:
        """Stripe's redirect after confirmPayment: ask the gateway, never the query string."""

        def find(conn: Connection) -> Visit:
            link = checkout_store.link_by_hash(conn, hash_token(token))
            if link is None:
                raise LinkNotFound("This checkout link does not exist.")
            session = checkout_store.session_of_link(conn, link["id"])
            order = order_store.get(conn, link["order_id"])
            if session is None or order is None:
                raise LinkNotFound("This checkout has no session yet; open the link first.")
            return Visit(link=link, session=session, order=order)

        visit = await self._db.read(find)
        if visit.order["status"] == PAYABLE:
            await self._payments.sync_order(visit.order["id"])
        refreshed = await self._db.read(lambda conn: order_store.get(conn, visit.order["id"]))
        paid = refreshed is not None and refreshed["status"] in SETTLED
        return paid, self.after_payment_url(visit) if paid else f"{self._base}/checkout/{token}"

    async def cancel(self, token: str, proof: str | None = None) -> str:
        visit = await self._visit(token)
        if self._email_pending(visit, proof):
            raise EmailMismatch("Confirm your email address first.")

        def run(conn: Connection) -> None:
            order = order_store.get(conn, visit.order["id"], for_update=True)
            assert order is not None
            if order["status"] == PAYABLE:
                transition(
                    conn, order, OrderStatus.CANCELED, actor=Actor.BUYER, principal_id=None,
                    reason="the buyer canceled on the checkout page", now=self._clock(),
                )  # fmt: skip

        await self._db.write(run)
        await self._payments.cancel_open_intent(visit.order["id"])
        return str(visit.link["cancel_url"] or f"{self._base}/checkout/canceled/{visit.session['id']}")

    async def receipt(self, session_id: str) -> Receipt:
        """For the built-in done/canceled pages: the order behind a buyer session, as a receipt."""

        def run(conn: Connection) -> Receipt:
            session = checkout_store.session_by_id(conn, session_id)
            if session is None:
                raise LinkNotFound("No such checkout.")
            order = order_store.get(conn, session["order_id"])
            assert order is not None
            profile = self._config.get(conn).profile
            paid_at = next(
                (event["at"] for event in order_store.events(conn, order["id"]) if event["to_status"] == "paid"), None
            )
            return Receipt(
                store=store_out(profile),
                order_number=order["number"],
                status=order["status"],
                session_status=session["status"],
                placed_at=order["created_at"],
                paid_at=paid_at,
                lines=order_lines(order_store.items(conn, order["id"]), order["currency"], profile.locale),
                **order_breakdown(order, profile.locale),
                shipping_address=shipping_address(order),
                fulfillment_option=chosen_option(order),
            )

        return await self._db.read(run)


def store_out(profile: StoreProfile) -> StoreOut:
    """The profile as buyer pages show it; a URL that is not http(s) is left out (never a javascript: link)."""

    def web(url: str | None) -> str | None:
        return url if url and url.lower().startswith(("https://", "http://")) else None

    return StoreOut(
        name=profile.name,
        logo_url=web(profile.logo_url),
        support_email=profile.support_email,
        terms_url=web(profile.terms_url),
        privacy_url=web(profile.privacy_url),
        returns_url=web(profile.returns_url),
        shipping_policy_url=web(profile.shipping_policy_url),
    )


def shipping_address(order: Mapping[Any, Any]) -> ShippingAddressOut | None:
    address = order["shipping_address"]
    return ShippingAddressOut.model_validate(address) if address else None


def chosen_option(order: Mapping[Any, Any]) -> FulfillmentOptionOut | None:
    """The delivery option frozen on the order, if one was chosen (and it reads as an option)."""
    option = order.get("fulfillment_option")
    if not option:
        return None
    try:
        return FulfillmentOptionOut.model_validate(option)
    except ValidationError:
        return None


def _delivery_step(order: Mapping[Any, Any]) -> str | None:
    """What the buyer must still give before the order's total is final: "address", "delivery" or None
    (the rule itself: quotes.delivery_gap; the delivery step says so when no option serves the address)."""
    return {"address": "address", "option": "delivery"}.get(quotes.delivery_gap(order) or "")


def delivery_options(config: StoreConfig, order: Mapping[Any, Any], locale: str) -> list[FulfillmentOptionOut]:
    """The store's delivery options for the order's address, each with what it costs this order."""
    destination = quotes.destination_of(order["shipping_address"])
    if destination is None:
        return []
    currency = order["currency"]
    rates = pricing.rates_for(config.shipping_rates_in(currency), destination.country, currency)
    goods = order["subtotal_minor"] - order["discount_total_minor"]
    return [
        quotes.option_out(rate, price).model_copy(update={"price": MoneyOut.minor(price, currency, locale)})
        for rate, price in ((rate, rate.charge(goods)) for rate in rates)
    ]


# The address form: field -> (required, most characters); the same bounds as the tools' ShippingAddress.
ADDRESS_FORM: dict[str, tuple[bool, int]] = {
    "name": (True, 120),
    "line1": (True, 200),
    "line2": (False, 200),
    "city": (True, 100),
    "region": (False, 100),
    "postal_code": (True, 20),
    "country": (True, 2),
}


def address_from_form(form: Mapping[str, str]) -> dict[str, str | None]:
    """The address fields of a form, trimmed; ``InvalidInput`` with ``details["fields"]`` naming every
    field that is missing, too long or holds characters text may not hold (domain.check_text)."""
    address: dict[str, str | None] = {}
    problems: dict[str, str] = {}
    for field, (required, most) in ADDRESS_FORM.items():
        value = (form.get(field) or "").strip()
        try:
            domain.check_text(value, f"shipping_address.{field}")
        except InvalidInput:
            problems[field] = "text"
            continue
        if required and not value:
            problems[field] = "missing"
        elif len(value) > most:
            problems[field] = "too_long"
        address[field] = value or None
    if problems:
        raise InvalidInput(
            "The shipping address is incomplete: " + ", ".join(sorted(problems)) + ".",
            details={"fields": problems},
        )
    return address


def delivery_missing(order: Mapping[Any, Any]) -> bool:
    return _delivery_step(order) is not None


__all__ = ["CheckoutService", "SessionStatus"]
