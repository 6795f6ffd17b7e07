"""Background upkeep every serving process runs: expire unpaid orders, purge old idempotency keys, deliver webhooks."""

from __future__ import annotations

import logging
from datetime import datetime

import anyio
from sqlalchemy import Connection

from mcp_checkout.domain import Principal
from mcp_checkout.errors import CheckoutError
from mcp_checkout.service import audit
from mcp_checkout.service.container import Services
from mcp_checkout.store import migrate, reset
from mcp_checkout.store.db import Database

log = logging.getLogger(__name__)


async def sweep_once(services: Services) -> tuple[int, int]:
    expired = await services.orders.expire_due()
    purged = await services.idempotency.purge()
    await services.access.purge_rate_windows()
    await services.webhooks.purge()
    await services.oauth.purge_expired()
    if expired or purged:
        log.info("sweep: expired %d unpaid orders, purged %d idempotency keys", expired, purged)
    return expired, purged


async def sweep_forever(services: Services, interval: float) -> None:
    while True:
        try:
            await sweep_once(services)
        except CheckoutError as exc:
            log.warning("sweep skipped: %s", exc.code)
        await anyio.sleep(interval)


async def upkeep_forever(services: Services, sweep_interval: float) -> None:
    """Everything a serving process runs beside its requests, until cancelled: the sweep and the
    webhook dispatcher."""
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(sweep_forever, services, sweep_interval)
        tasks.start_soon(services.webhooks.dispatch_forever)


async def readiness(services: Services) -> tuple[bool, dict[str, object]]:
    """Is this process ready for traffic: database reachable and its schema at the newest revision?"""
    try:
        current = await migrate.current_revision(services.db)
    except CheckoutError as exc:
        return False, {"database": "unreachable", "error": exc.code}
    except Exception:  # a driver error before our mapping (e.g. refused connection on connect)
        log.warning("readiness: database unreachable")
        return False, {"database": "unreachable"}
    head = migrate.head_revision()
    return current == head, {"database": "ok", "schema": current, "expected_schema": head}


async def reset_store(db: Database, who: Principal, now: datetime) -> dict[str, int]:
    """Empty the store (catalog, carts, orders, payments, webhooks, idempotency records) in one
    transaction, keeping the schema, API keys and the audit log (which records it); table → rows deleted."""

    def run(conn: Connection) -> dict[str, int]:
        deleted = reset.wipe(conn)
        audit.record(conn, who, "store.reset", None, after={"rows_deleted": sum(deleted.values())}, at=now)
        return deleted

    deleted = await db.write(run)
    log.info("store reset: %d rows deleted", sum(deleted.values()))
    return deleted
