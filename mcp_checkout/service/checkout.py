"""Checkout links and buyer sessions.

A link's token has 256 random bits and only its SHA-256 is stored. The first open claims the link's
one session with a conditional update; every later open resumes that session (and the order's one
live PaymentIntent). Paid → 410 link_consumed; expired → 410 link_expired; replaced by
regenerate_checkout_link → 410 link_revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy import Connection, RowMapping

from mcp_checkout import domain
from mcp_checkout.domain import Actor, Clock, LinkStatus, Money, OrderStatus, Principal, SessionStatus, pricing
from mcp_checkout.domain.store_profile import StoreProfile
from mcp_checkout.errors import (
    CartAlreadyOrdered,
    EmailMismatch,
    InvalidInput,
    InvalidState,
    LinkConsumed,
    LinkExists,
    LinkExpired,
    LinkNotFound,
    LinkRevoked,
)
from mcp_checkout.payments.gateway import Intent
from mcp_checkout.payments.offline import OfflineGateway
from mcp_checkout.service import quotes
from mcp_checkout.service.email_proof import EmailProofs
from mcp_checkout.service.idempotency import Idempotency, Operation
from mcp_checkout.service.order_state import transition, visible_order
from mcp_checkout.service.order_view import order_breakdown, order_lines
from mcp_checkout.service.orders import CreateOrder, OrderService
from mcp_checkout.service.payments import PaymentService, PreparedIntent
from mcp_checkout.service.secretbox import SecretBox, SecretUnavailable
from mcp_checkout.service.store_profile import ConfigCache, StoreConfig
from mcp_checkout.service.views import (
    CheckoutPage,
    FulfillmentOptionOut,
    LinkOut,
    MoneyOut,
    Receipt,
    ShippingAddressOut,
    StoreOut,
)
from mcp_checkout.store import checkout as checkout_store
from mcp_checkout.store import orders as order_store
from mcp_checkout.store import payments as payment_store
from mcp_checkout.store.db import Database

CREATE_CHECKOUT_LINK = Operation(
    "create_checkout_link", makes="checkout link", id_field="link_id", look_up="get_checkout_link"
)
PAYABLE = OrderStatus.PENDING_PAYMENT.value
log = logging.getLogger(__name__)
SETTLED = (
    OrderStatus.PAID.value,
    OrderStatus.PARTIALLY_FULFILLED.value,
    OrderStatus.FULFILLED.value,
    OrderStatus.REFUNDED.value,
)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_from(link_or_url: str) -> str | None:
    """The token of a checkout URL (``…/checkout/<token>``), or None if it is not one."""
    path = urlsplit(link_or_url).path.rstrip("/")
    parts = path.split("/")
    if len(parts) >= 2 and parts[-2] == "checkout" and 20 <= len(parts[-1]) <= 128:
        return parts[-1]
    return None


def check_redirect_url(name: str, url: str | None) -> str | None:
    if url is None:
        return None
    domain.redirect_origin(name, url)  # strict: scheme, host and port only (the page's CSP is built from them)
    return url


@dataclass(frozen=True)
class CreateLink:
    """One of: ``order_id`` (a link for an existing order), ``sku`` + ``quantity`` (a direct order and its
    link) or ``cart_id`` (the cart's order and its link). ``request_digest``: a protocol adapter's digest
    of its own request, fingerprinted with the rest (same key, different request: idempotency_conflict)."""

    order_id: str | None = None
    sku: str | None = None
    cart_id: str | None = None
    request_digest: str | None = None
    quantity: int | None = None
    idempotency_key: str | None = None
    email: str | None = None
    merchant_reference_id: str | None = None
    success_url: str | None = None
    cancel_url: str | None = None
    ttl_minutes: int | None = None
    sent: Collection[str] | None = None


@dataclass(frozen=True)
class Visit:
    """What one open of a link found: the link, its session and its order (and, when the read that found them
    also read what the page shows (_page_facts): one snapshot, one read)."""

    link: RowMapping
    session: RowMapping
    order: RowMapping
    shown: tuple[Sequence[RowMapping], StoreProfile, list[FulfillmentOptionOut]] | None = None


def link_problem(link: RowMapping, order: RowMapping, now: datetime) -> Exception | None:
    """Why this link can no longer be used, as the error the buyer should see (None: usable)."""
    status = link["status"]
    if status == LinkStatus.CONSUMED.value or order["status"] in SETTLED:
        return LinkConsumed(
            f"This checkout for order {order['number']} is already paid.",
            details={"order_number": order["number"]},
        )
    if status == LinkStatus.REVOKED.value:
        return LinkRevoked(
            "This checkout link was replaced by a newer one. Use the latest link you were sent.",
            next_actions=["regenerate_checkout_link"],
        )
    if status == LinkStatus.EXPIRED.value or link["expires_at"] <= now or order["status"] != PAYABLE:
        return LinkExpired(
            f"This checkout link has expired (order {order['number']} is {order['status']}). "
            "Ask for a new link; an agent can call create_checkout_link or regenerate_checkout_link.",
            details={"order_number": order["number"], "order_status": order["status"]},
            next_actions=["create_checkout_link", "regenerate_checkout_link"],
        )
    return None


class CheckoutService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        orders: OrderService,
        payments: PaymentService,
        idempotency: Idempotency,
        secrets: SecretBox,
        public_base_url: str,
        default_ttl: timedelta,
        config: ConfigCache,
        email_proofs: EmailProofs,
    ) -> None:
        self._db = db
        self._clock = clock
        self._orders = orders
        self._payments = payments
        self._idempotency = idempotency
        self._secrets = secrets
        self._base = public_base_url.rstrip("/")
        self._default_ttl = default_ttl
        self._config = config
        self._proofs = email_proofs

    # ------------------------------------------------------------ agent side
    async def create_link(self, principal: Principal, cmd: CreateLink) -> LinkOut:
        """Mint an order's one live link (or the order and its link, from a SKU), exactly once per key."""
        if sum(given is not None for given in (cmd.order_id, cmd.sku, cmd.cart_id)) != 1:
            raise InvalidInput("Pass exactly one of order_id, or sku with quantity (and an idempotency_key).")
        if cmd.cart_id is not None and cmd.idempotency_key is None:
            raise InvalidInput("With cart_id, also pass an idempotency_key (reuse the same key when you retry).")
        if cmd.sku is not None and (cmd.quantity is None or cmd.idempotency_key is None):
            raise InvalidInput(
                "With sku, also pass quantity and an idempotency_key (reuse the same key when you retry).",
                next_actions=["create_checkout_link"],
            )
        success_url = check_redirect_url("success_url", cmd.success_url)
        cancel_url = check_redirect_url("cancel_url", cmd.cancel_url)
        ttl = timedelta(minutes=cmd.ttl_minutes) if cmd.ttl_minutes else self._default_ttl
        email = cmd.email.strip().lower() if cmd.email else None
        call = CREATE_CHECKOUT_LINK.request(cmd) if cmd.idempotency_key is not None else None
        token = secrets.token_urlsafe(32)
        link_id = domain.new_id("link")
        minted: list[str] = []

        def mint(conn: Connection, order: RowMapping) -> None:
            minted.append(order["id"])
            now = self._clock()
            lock = self._carried_lock(conn, order["id"], email)
            checkout_store.insert_link(
                conn,
                {
                    "id": link_id,
                    "token_hash": hash_token(token),
                    "token_hint": token[:6],
                    "token_sealed": self._secrets.seal(token) if call is not None else None,
                    "order_id": order["id"],
                    "principal_id": principal.id,
                    "status": LinkStatus.ACTIVE.value,
                    "email_lock": lock,
                    "merchant_reference_id": cmd.merchant_reference_id,
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                    "created_at": now,
                    "updated_at": now,
                    "expires_at": min(now + ttl, order["expires_at"]) if order["status"] == PAYABLE else now + ttl,
                },
            )

        def run(conn: Connection) -> str | None:
            if call is not None and (prior := self._idempotency.once(conn, principal.id, call, link_id)):
                return prior.resource_id
            if cmd.order_id is not None:
                order = visible_order(conn, principal, cmd.order_id, lock=True)
                if order["status"] != PAYABLE:
                    raise InvalidState(
                        f"Order {order['id']} is {order['status']}; only pending_payment orders get checkout links.",
                        details={"order_id": order["id"], "status": order["status"]},
                        next_actions=["get_order"],
                    )
                self._no_live_link(conn, order["id"])
                mint(conn, order)
            elif cmd.cart_id is not None:
                assert call is not None
                # Only the link's own arguments are sent: the order takes the cart's buyer, address, option and codes.
                order_cmd = CreateOrder(
                    idempotency_key=call.key,
                    cart_id=cmd.cart_id,
                    email=email,
                    sent=("idempotency_key", "cart_id", "email"),
                )
                placed = self._orders.place(conn, principal, order_cmd, call, domain.new_id("ord"), also=mint)
                if not minted:  # the cart was ordered before, under another key: no second order, no new link
                    raise CartAlreadyOrdered(
                        f"Cart {cmd.cart_id} is already order {placed.order_id} ({placed.number}).",
                        details={"cart_id": cmd.cart_id, "order_id": placed.order_id},
                        next_actions=["get_order", "get_checkout_link"],
                    )
            else:
                assert call is not None and cmd.quantity is not None
                order_cmd = CreateOrder(
                    idempotency_key=call.key,
                    items=[(cmd.sku or "", cmd.quantity)],
                    email=email,
                    merchant_reference_id=cmd.merchant_reference_id,
                )
                self._orders.place(conn, principal, order_cmd, call, domain.new_id("ord"), also=mint)
            return None

        replayed = await self._db.write(run)
        if replayed is None:
            return await self._link_view(link_id, token)
        return await self._replay(replayed)

    def _no_live_link(self, conn: Connection, order_id: str) -> None:
        """The rule: one live link per order (also a partial unique index). A live link past its
        expiry time is marked expired here, which makes room for the new one."""
        live = checkout_store.live_link_of_order(conn, order_id)
        if live is None:
            return
        now = self._clock()
        if live["expires_at"] <= now:
            checkout_store.set_link_status(conn, live["id"], [live["status"]], LinkStatus.EXPIRED.value, now)
            return
        raise LinkExists(
            f"Order {order_id} already has a live checkout link ({live['id']}, {live['status']}). Send the buyer "
            "that link; if its URL was lost, call regenerate_checkout_link with its link_id for a new URL "
            "(the old one then stops working). To retry a create_checkout_link call, reuse its idempotency_key.",
            details={"order_id": order_id, "link_id": live["id"], "status": live["status"]},
            next_actions=["regenerate_checkout_link", "get_checkout_link"],
        )

    @staticmethod
    def _carried_lock(conn: Connection, order_id: str, email: str | None) -> str | None:
        """An email lock, once set on a link, carries over to every later link of the order."""
        earlier = checkout_store.email_lock_of_order(conn, order_id)
        if earlier is None or email is None or hmac.compare_digest(earlier.encode(), email.encode()):
            return earlier or email
        raise InvalidInput(
            "This order's checkout is locked to another email address; a new link keeps that lock. Call "
            "create_checkout_link without email (or with the email the first link was locked to).",
            details={"order_id": order_id},
            next_actions=["create_checkout_link"],
        )

    async def _replay(self, resource_id: str) -> LinkOut:
        """The link an earlier call with this key made, or the link that replaced it, with its URL."""

        def find(conn: Connection) -> tuple[str, str | None]:
            link = checkout_store.link_by_id(conn, resource_id)
            if link is None:  # recorded before links were the result: the key names the order
                link = checkout_store.links_of_order(conn, resource_id)[-1]
            for _ in range(100):  # follow regenerations to the current link
                if link["replaced_by"] is None:
                    break
                newer = checkout_store.link_by_id(conn, link["replaced_by"])
                if newer is None:
                    break
                link = newer
            return link["id"], link["token_sealed"]

        current, sealed = await self._db.read(find)
        token: str | None = None
        if sealed is not None:
            try:
                token = self._secrets.open(sealed)
            except SecretUnavailable:
                log.warning("a replayed checkout link's token cannot be opened with this server's secret key")
        return (await self._link_view(current, token)).model_copy(update={"replayed": True})

    async def regenerate(self, principal: Principal, link_id: str | None, url: str | None) -> LinkOut:
        if (link_id is None) == (url is None):
            raise InvalidInput("Pass exactly one of link_id or url.")
        token = secrets.token_urlsafe(32)
        new_id = domain.new_id("link")

        def run(conn: Connection) -> None:
            now = self._clock()
            old: RowMapping | None
            if link_id is not None:
                old = checkout_store.link_by_id(conn, link_id, for_update=True)
            else:
                old_token = token_from(url or "")
                old = checkout_store.link_by_hash(conn, hash_token(old_token), for_update=True) if old_token else None
            if old is None:
                raise LinkNotFound(
                    "No such checkout link. Pass the link_id (or URL) returned by create_checkout_link.",
                    next_actions=["create_checkout_link"],
                )
            order = visible_order(conn, principal, old["order_id"], lock=True)
            problem = link_problem(old, order, now)
            if isinstance(problem, LinkConsumed | LinkRevoked) or order["status"] != PAYABLE:
                raise InvalidState(
                    f"Link {old['id']} cannot be regenerated: "
                    + (str(problem) if problem else f"order is {order['status']}")
                    + (f" Its replacement is {old['replaced_by']}." if old["replaced_by"] else ""),
                    details={"link_id": old["id"], "status": old["status"], "replaced_by": old["replaced_by"]},
                    next_actions=["get_checkout_link", "create_checkout_link"],
                )
            values = dict(old)  # the email lock, reference and redirects carry over
            values.update(
                id=new_id,
                token_hash=hash_token(token),
                token_hint=token[:6],
                token_sealed=self._secrets.seal(token) if old["token_sealed"] is not None else None,
                status=old["status"] if old["status"] == LinkStatus.IN_SESSION.value else LinkStatus.ACTIVE.value,
                replaced_by=None,
                created_at=now,
                updated_at=now,
                expires_at=min(now + self._default_ttl, order["expires_at"]),
            )
            # Old link out first: an order has one live link (a partial unique index).
            checkout_store.set_link_status(
                conn, old["id"], [old["status"]], LinkStatus.REVOKED.value, now, replaced_by=new_id
            )
            self._no_live_link(conn, order["id"])  # a newer link of the order: regenerate that one
            checkout_store.insert_link(conn, values)
            checkout_store.move_session(conn, old["id"], new_id, now)

        await self._db.write(run)
        return await self._link_view(new_id, token)

    async def current_link(self, principal: Principal, order_id: str) -> LinkOut | None:
        """The order's newest link (following regenerations), with its URL when it was minted under an
        idempotency key (its token is kept sealed for replays); None when the order has no link."""

        def run(conn: Connection) -> str | None:
            visible_order(conn, principal, order_id)
            links = checkout_store.links_of_order(conn, order_id)
            return str(links[-1]["id"]) if links else None

        newest = await self._db.read(run)
        return await self._replay(newest) if newest is not None else None

    async def get_link(self, principal: Principal, link_id: str) -> LinkOut:
        def run(conn: Connection) -> None:
            link = checkout_store.link_by_id(conn, link_id)
            if link is None:
                raise LinkNotFound(f"No checkout link {link_id!r}.", next_actions=["create_checkout_link"])
            visible_order(conn, principal, link["order_id"])

        await self._db.read(run)
        return await self._link_view(link_id, None)

    async def _link_view(self, link_id: str, token: str | None) -> LinkOut:
        now = self._clock()

        def run(conn: Connection) -> LinkOut:
            link = checkout_store.link_by_id(conn, link_id)
            assert link is not None
            order = order_store.get(conn, link["order_id"])
            assert order is not None
            session = checkout_store.session_of_link(conn, link_id)
            problem = link_problem(link, order, now)
            status = link["status"]
            if isinstance(problem, LinkExpired):
                status = LinkStatus.EXPIRED.value
            elif isinstance(problem, LinkConsumed):
                status = LinkStatus.CONSUMED.value
            return LinkOut(
                link_id=link_id,
                url=f"{self._base}/checkout/{token}" if token else None,
                status=status,
                order_id=order["id"],
                order_number=order["number"],
                total=MoneyOut.of(Money(order["total_minor"], order["currency"])),
                email_locked=link["email_lock"] is not None,
                merchant_reference_id=link["merchant_reference_id"],
                success_url=link["success_url"],
                cancel_url=link["cancel_url"],
                expires_at=link["expires_at"],
                session_status=session["status"] if session else None,
                replaced_by=link["replaced_by"],
            )

        return await self._db.read(run)

    # ------------------------------------------------------------ buyer side
    async def _visit(self, token: str) -> Visit:
        return await self._db.write(lambda conn: self._claim(conn, token))

    def _claim(self, conn: Connection, token: str) -> Visit:
        """Find the link and claim (first open) or resume (later opens) its one session."""
        now = self._clock()
        link = checkout_store.link_by_hash(conn, hash_token(token), for_update=True)
        if link is None:
            raise LinkNotFound("This checkout link does not exist. Check that the whole link was copied.")
        order = order_store.get(conn, link["order_id"], for_update=True)
        assert order is not None
        problem = link_problem(link, order, now)
        if problem is not None:
            raise problem
        if link["status"] == LinkStatus.ACTIVE.value and checkout_store.set_link_status(
            conn, link["id"], [LinkStatus.ACTIVE.value], LinkStatus.IN_SESSION.value, now
        ):
            checkout_store.insert_session(conn, domain.new_id("cs"), link["id"], order["id"], now)
        session = checkout_store.session_of_link(conn, link["id"])
        assert session is not None
        return Visit(link=link, session=session, order=order)

    def _claim_to_pay(self, conn: Connection, token: str, proof: str | None) -> tuple[Visit, PreparedIntent | None]:
        """:meth:`_claim` and, once this buyer can pay (email proven, delivery chosen), the order's payment
        attempt (:meth:`PaymentService.prepare_intent`), in one write transaction."""
        visit = self._claim(conn, token)
        if self._email_pending(visit, proof) or delivery_missing(visit.order):
            return visit, None
        return visit, self._payments.prepare_intent(conn, visit.order["id"])

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
        self, conn: Connection, order: RowMapping, *, with_options: bool
    ) -> tuple[Sequence[RowMapping], StoreProfile, list[FulfillmentOptionOut]]:
        """The order's lines, the store profile and (for the delivery step) the options for its address."""
        items = order_store.items(conn, order["id"])
        config = self._config.get(conn)
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
        quotes.option_out(rate, price).model_copy(update={"price": MoneyOut.of(Money(price, currency), locale)})
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


__all__ = ["CREATE_CHECKOUT_LINK", "CheckoutService", "CreateLink", "SessionStatus"]
