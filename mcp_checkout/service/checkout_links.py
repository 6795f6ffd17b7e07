"""Checkout links, the agent's side: minting an order's one live link (exactly once per key), regenerating its
URL, and reading it back. A link's token has 256 random bits; only its SHA-256 is stored (and, for links minted
under an idempotency key, the token sealed, so a replay can answer the same URL).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, RowMapping

from mcp_checkout import domain
from mcp_checkout.domain import Clock, LinkStatus, OrderStatus, Principal
from mcp_checkout.errors import (
    CartAlreadyOrdered,
    InvalidInput,
    InvalidState,
    LinkConsumed,
    LinkExists,
    LinkExpired,
    LinkNotFound,
    LinkRevoked,
)
from mcp_checkout.service.idempotency import Idempotency, Operation
from mcp_checkout.service.order_state import visible_order
from mcp_checkout.service.orders import CreateOrder, OrderService
from mcp_checkout.service.secretbox import SecretBox, SecretUnavailable
from mcp_checkout.service.views import (
    LinkOut,
    MoneyOut,
)
from mcp_checkout.store import checkout as checkout_store
from mcp_checkout.store import orders as order_store
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


def link_problem(link: Mapping[Any, Any], order: Mapping[Any, Any], now: datetime) -> Exception | None:
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


class LinkService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        orders: OrderService,
        idempotency: Idempotency,
        secrets: SecretBox,
        public_base_url: str,
        default_ttl: timedelta,
    ) -> None:
        self._db = db
        self._clock = clock
        self._orders = orders
        self._idempotency = idempotency
        self._secrets = secrets
        self._base = public_base_url.rstrip("/")
        self._default_ttl = default_ttl

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
                total=MoneyOut.minor(order["total_minor"], order["currency"]),
                email_locked=link["email_lock"] is not None,
                merchant_reference_id=link["merchant_reference_id"],
                success_url=link["success_url"],
                cancel_url=link["cancel_url"],
                expires_at=link["expires_at"],
                session_status=session["status"] if session else None,
                replaced_by=link["replaced_by"],
            )

        return await self._db.read(run)


__all__ = ["CREATE_CHECKOUT_LINK", "CreateLink", "LinkService", "hash_token", "link_problem", "token_from"]
