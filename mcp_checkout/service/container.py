"""The set of services one server process uses, built from settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from mcp_checkout.config import Settings
from mcp_checkout.domain import Clock, utc_now
from mcp_checkout.payments.gateway import PaymentGateway
from mcp_checkout.payments.offline import OfflineGateway
from mcp_checkout.service.access import AccessService
from mcp_checkout.service.audit import AuditService
from mcp_checkout.service.buyer_data import BuyerDataService
from mcp_checkout.service.carts import CartService
from mcp_checkout.service.catalog import CatalogService
from mcp_checkout.service.checkout import CheckoutService
from mcp_checkout.service.checkout_links import LinkService
from mcp_checkout.service.completions import CompletionService
from mcp_checkout.service.discount_codes import DiscountCodeService
from mcp_checkout.service.email_proof import EmailProofs
from mcp_checkout.service.fulfillment import FulfillmentService
from mcp_checkout.service.idempotency import Idempotency
from mcp_checkout.service.merchant import MerchantService
from mcp_checkout.service.oauth import OAuthService
from mcp_checkout.service.order_watch import OrderWatch
from mcp_checkout.service.orders import OrderService
from mcp_checkout.service.payments import PaymentService
from mcp_checkout.service.rates import RateService
from mcp_checkout.service.refunds import RefundService
from mcp_checkout.service.secretbox import SecretBox
from mcp_checkout.service.signing_keys import SigningKeys
from mcp_checkout.service.store_profile import ConfigCache, StoreProfileService, from_settings
from mcp_checkout.service.webhook_urls import Resolver, system_resolver
from mcp_checkout.service.webhooks import WebhookService
from mcp_checkout.store import migrate
from mcp_checkout.store.db import Database
from mcp_checkout.store.offline_intents import OfflineIntentRepository
from mcp_checkout.store.sealing import Keyring, bind_database


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    idempotency: Idempotency
    catalog: CatalogService
    completions: CompletionService
    carts: CartService
    orders: OrderService
    order_watch: OrderWatch
    payments: PaymentService
    refunds: RefundService
    links: LinkService
    checkout: CheckoutService
    access: AccessService
    merchant: MerchantService
    webhooks: WebhookService
    keyring: Keyring
    audit: AuditService
    buyer_data: BuyerDataService
    oauth: OAuthService
    fulfillment: FulfillmentService
    store_profile: StoreProfileService
    rates: RateService
    discount_codes: DiscountCodeService
    signing_keys: SigningKeys

    async def close(self) -> None:
        await self.webhooks.close()
        await self.db.dispose()

    async def prepare_database(self) -> None:
        """Every process on start: migrate the schema, then seed the store profile from the settings if the
        store has none yet (both idempotent and safe from several processes at once)."""
        await migrate.upgrade(self.db)
        await self.store_profile.seed()


async def open_services(settings: Settings) -> Services:
    """Services for ``settings`` over a migrated database (what every process opens on start)."""
    services = build_services(settings)
    await services.prepare_database()
    return services


def open_keyring(settings: Settings) -> Keyring:
    return Keyring(settings.secret_keys(), settings.resolved_secret_key_file())


def open_database(settings: Settings, keyring: Keyring | None = None) -> Database:
    """The database, its sealed columns (buyer data) sealed with the settings' secret keys."""
    db = Database(
        settings.resolved_database_url(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        busy_timeout_ms=settings.db_busy_timeout_ms,
        pooler=settings.database_pooler,
        busy_poll_ms=settings.db_busy_poll_ms,
    )
    bind_database(db, keyring or open_keyring(settings))
    return db


def build_gateway(settings: Settings, db: Database, clock: Clock) -> PaymentGateway:
    """Stripe when a secret key is configured; otherwise the offline gateway."""
    if settings.stripe_secret_key is None:
        return OfflineGateway(OfflineIntentRepository(db), clock)
    from mcp_checkout.payments.stripe_gateway import StripeGateway  # the SDK is slow to import; load on need

    return StripeGateway(
        settings.stripe_secret_key.get_secret_value(),
        settings.stripe_publishable_key,
        settings.stripe_webhook_secret.get_secret_value() if settings.stripe_webhook_secret else None,
        api_base=settings.stripe_api_base,
        max_network_retries=settings.stripe_max_network_retries,
        timeout_seconds=settings.stripe_timeout_seconds,
    )


def build_services(
    settings: Settings,
    db: Database | None = None,
    clock: Clock = utc_now,
    gateway: PaymentGateway | None = None,
    resolver: Resolver = system_resolver,
) -> Services:
    keyring = open_keyring(settings)
    db = db or open_database(settings, keyring)
    bind_database(db, keyring)
    idempotency = Idempotency(
        db,
        clock,
        retention=timedelta(hours=settings.idempotency_retention_hours),
        lease=timedelta(seconds=settings.idempotency_lease_seconds),
    )
    config = ConfigCache(from_settings(settings))  # the store's pricing configuration, one copy per process
    orders = OrderService(
        db, clock, idempotency, order_ttl=timedelta(minutes=settings.order_ttl_minutes), config=config
    )
    payments = PaymentService(db, clock, gateway or build_gateway(settings, db, clock), idempotency)
    orders.on_closed(payments.cancel_open_intent)
    refunds = RefundService(db, clock, payments.gateway, idempotency)
    orders.on_paid_cancel(refunds.cancel_paid)
    secret_box = SecretBox(keyring)
    catalog = CatalogService(db)
    access = AccessService(
        db,
        clock,
        key_mode="live" if settings.payment_mode == "stripe_live" else "test",
        per_minute=settings.rate_limit_per_minute,
    )
    return Services(
        settings=settings,
        db=db,
        idempotency=idempotency,
        catalog=catalog,
        completions=CompletionService(db),
        carts=CartService(db, clock, settings.default_currency, idempotency, config=config),
        orders=orders,
        order_watch=OrderWatch(db, orders, clock, poll_interval=settings.order_watch_poll_seconds),
        payments=payments,
        refunds=refunds,
        links=LinkService(
            db,
            clock,
            orders=orders,
            idempotency=idempotency,
            secrets=secret_box,
            public_base_url=settings.resolved_public_base_url(),
            default_ttl=timedelta(minutes=settings.link_ttl_minutes),
        ),
        checkout=CheckoutService(
            db,
            clock,
            orders=orders,
            payments=payments,
            public_base_url=settings.resolved_public_base_url(),
            config=config,
            email_proofs=EmailProofs(db, clock, SecretBox(keyring)),
        ),
        access=access,
        merchant=MerchantService(
            db,
            clock,
            orders=orders,
            catalog=catalog,
            default_currency=settings.default_currency,
            import_dir=settings.resolved_import_dir(),
        ),
        webhooks=WebhookService(
            db,
            clock,
            secrets=secret_box,
            live=settings.payment_mode == "stripe_live",
            max_attempts=settings.webhook_max_attempts,
            timeout_seconds=settings.webhook_timeout_seconds,
            backoff_base_seconds=settings.webhook_backoff_base_seconds,
            backoff_cap_seconds=settings.webhook_backoff_cap_seconds,
            poll_interval_seconds=settings.webhook_poll_interval_seconds,
            batch_size=settings.webhook_batch_size,
            retention=timedelta(days=settings.webhook_retention_days),
            resolver=resolver,
        ),
        keyring=keyring,
        audit=AuditService(db, clock),
        buyer_data=BuyerDataService(db, clock, orders),
        oauth=OAuthService(
            db,
            clock,
            access=access,
            secrets_box=SecretBox(keyring),
            resource_url=f"{settings.resolved_public_base_url()}/mcp",
            access_ttl=timedelta(minutes=settings.oauth_access_token_minutes),
            refresh_ttl=timedelta(days=settings.oauth_refresh_token_days),
            auto_approve_buyer=settings.oauth_auto_approve_buyer,
            registrations_per_hour=settings.oauth_registrations_per_hour,
        ),
        fulfillment=FulfillmentService(db, clock, idempotency),
        store_profile=StoreProfileService(db, clock, from_settings(settings), config),
        rates=RateService(db, clock, from_settings(settings)),
        discount_codes=DiscountCodeService(db, clock, from_settings(settings)),
        signing_keys=SigningKeys(db, clock),
    )
