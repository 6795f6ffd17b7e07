"""Buyer data rights and key care: erase one buyer's personal data; re-seal everything with the newest key.

Both are merchant/operator actions and land in the audit log in the transactions that make the change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from pydantic import BaseModel
from sqlalchemy import Connection

from mcp_checkout.domain import Clock, Principal
from mcp_checkout.errors import InvalidInput, InvalidState
from mcp_checkout.service import audit, policy
from mcp_checkout.service.orders import OrderService
from mcp_checkout.store import buyer_data as store
from mcp_checkout.store.db import Database

log = logging.getLogger(__name__)
ERASURE_REASON = "buyer data erased at the buyer's request"


class ErasureOut(BaseModel):
    orders_erased: int
    canceled_order_ids: list[str]
    links_erased: int
    webhook_events_scrubbed: int
    tombstone: str = store.ERASED


class RotationOut(BaseModel):
    resealed: dict[str, int]
    batches: int
    complete: bool


def _email(email: str) -> str:
    cleaned = email.strip().lower()
    if not 3 <= len(cleaned) <= 254 or "@" not in cleaned or "\x00" in cleaned:
        raise InvalidInput("email must be the buyer's email address (at most 254 characters).")
    return cleaned


class BuyerDataService:
    def __init__(self, db: Database, clock: Clock, orders: OrderService) -> None:
        self._db = db
        self._clock = clock
        self._orders = orders

    async def erase(self, principal: Principal, email: str) -> ErasureOut:
        """Cancel the buyer's unpaid orders (stock released, links closed), then replace their email, name,
        address and email locks with a tombstone everywhere; amounts and lines stay. Safe to repeat."""
        policy.require(principal, "erase_buyer_data")
        email = _email(email)
        canceled: list[str] = []
        for order_id in await self._db.read(lambda conn: store.open_orders_of(conn, email)):
            try:
                await self._orders.cancel(principal, order_id, ERASURE_REASON)
            except InvalidState:  # paid or expired meanwhile: erased below all the same
                continue
            canceled.append(order_id)

        def run(conn: Connection) -> store.Erased:
            now = self._clock()
            erased = store.erase(conn, email, now)
            change = {"orders": len(erased.order_ids), "order_ids": erased.order_ids, "canceled": canceled}
            change |= {"links": erased.links, "webhook_events": erased.webhook_events}
            audit.record(conn, principal, "buyer.erase", None, after=change, at=now)
            return erased

        erased = await self._db.write(run)
        log.info("buyer data erased by %s: %d orders, %d links", principal.id, len(erased.order_ids), erased.links)
        return ErasureOut(
            orders_erased=len(erased.order_ids),
            canceled_order_ids=canceled,
            links_erased=erased.links,
            webhook_events_scrubbed=erased.webhook_events,
        )

    async def rotate_secret(
        self,
        principal: Principal,
        *,
        batch_size: int = 500,
        after_batch: Callable[[str, int], None] | None = None,
    ) -> RotationOut:
        """Re-seal every sealed value (buyer data, webhook bodies and signing secrets) with the newest key,
        one transaction per batch. Stopping anywhere loses nothing; running again finishes the job."""
        # Command line only (mcp-checkout keys rotate-secret): no MCP tool exposes it. principal is for the audit.
        if not 1 <= batch_size <= 10_000:
            raise InvalidInput("batch_size must be 1 to 10,000.")
        resealed: dict[str, int] = {}
        batches = 0
        for sealed in store.sealed_tables():
            after: str | None = None
            resealed[sealed.table] = 0
            while True:
                changed, after = await self._db.write(partial(self._reseal, principal, sealed, after, batch_size))
                batches += 1
                resealed[sealed.table] += changed
                if after_batch is not None:
                    after_batch(sealed.table, changed)
                if after is None:
                    break
        log.info("secret rotation by %s: %s", principal.id, resealed)
        return RotationOut(resealed=resealed, batches=batches, complete=True)

    def _reseal(
        self, principal: Principal, sealed: store.SealedColumns, after: str | None, limit: int, conn: Connection
    ) -> tuple[int, str | None]:
        changed, last = store.reseal_batch(conn, sealed, after, limit)
        if changed:
            now = self._clock()
            change = {"table": sealed.table, "resealed": changed}
            audit.record(conn, principal, "secret.rotate", sealed.table, after=change, at=now)
        return changed, last
