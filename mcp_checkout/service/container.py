"""The set of services one server process uses, built from settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from mcp_checkout.config import Settings
from mcp_checkout.domain import Clock, utc_now
from mcp_checkout.service.carts import CartService
from mcp_checkout.service.catalog import CatalogService
from mcp_checkout.service.orders import OrderService
from mcp_checkout.store.db import Database


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    catalog: CatalogService
    carts: CartService
    orders: OrderService

    async def close(self) -> None:
        await self.db.dispose()


def open_database(settings: Settings) -> Database:
    return Database(
        settings.resolved_database_url(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        busy_timeout_ms=settings.db_busy_timeout_ms,
    )


def build_services(settings: Settings, db: Database | None = None, clock: Clock = utc_now) -> Services:
    db = db or open_database(settings)
    return Services(
        settings=settings,
        db=db,
        catalog=CatalogService(db),
        carts=CartService(db, clock, settings.default_currency),
        orders=OrderService(
            db,
            clock,
            order_ttl=timedelta(minutes=settings.order_ttl_minutes),
            idempotency_retention=timedelta(hours=settings.idempotency_retention_hours),
            idempotency_lease=timedelta(seconds=settings.idempotency_lease_seconds),
        ),
    )
