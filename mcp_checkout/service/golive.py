"""The go-live checklist behind ``mcp-checkout doctor`` and the merchant tool ``readiness_check``.

Two answers in one report: is this install ready *in the mode it runs in now* (``ready``: no check
failed), and what would a live launch still need (``live_missing``: each missing setting by its
environment variable). A fresh demo (offline payments, http on localhost) is ready for test mode and
lists every live setting it lacks. Secret values are never shown, only their kind (``sk_test_…``).
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from mcp_checkout.config import PaymentMode, Settings
from mcp_checkout.domain import Principal
from mcp_checkout.errors import CheckoutError
from mcp_checkout.service import policy
from mcp_checkout.service.container import Services
from mcp_checkout.service.maintenance import readiness
from mcp_checkout.service.webhook_views import WebhookEndpointOut, WebhookMetrics
from mcp_checkout.store import catalog, demo_catalog, rates

CheckStatus = Literal["ok", "warn", "fail"]

SECRET_KEY_ENV = "MCP_CHECKOUT_STRIPE_SECRET_KEY"  # noqa: S105 - the variable name, not a secret
PUBLISHABLE_KEY_ENV = "MCP_CHECKOUT_STRIPE_PUBLISHABLE_KEY"
WEBHOOK_SECRET_ENV = "MCP_CHECKOUT_STRIPE_WEBHOOK_SECRET"  # noqa: S105 - the variable name
PUBLIC_URL_ENV = "MCP_CHECKOUT_PUBLIC_BASE_URL"

# Stripe key shapes: secret (sk_) or restricted (rk_) keys, publishable keys, webhook signing secrets.
_SECRET_KEY = re.compile(r"^(sk|rk)_(?P<env>test|live)_[A-Za-z0-9]{8,}$")
_PUBLISHABLE_KEY = re.compile(r"^pk_(?P<env>test|live)_[A-Za-z0-9]{8,}$")
_WEBHOOK_SECRET = re.compile(r"^whsec_[A-Za-z0-9+/=]{8,}$")
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
WEBHOOK_WINDOW_MINUTES = 24 * 60
WEBHOOK_MIN_SUCCESS = 0.95  # below this share of delivered (vs failed or abandoned) deliveries: a warning


class ReadinessCheck(BaseModel):
    name: str = Field(description="What was checked, e.g. database, schema, catalog, stripe_keys.")
    status: CheckStatus = Field(description="ok, warn (works, but look at it) or fail (not ready).")
    detail: str = Field(description="What was found and, unless ok, exactly what to set or run.")


class LiveSetting(BaseModel):
    setting: str = Field(description="The environment variable to set, e.g. MCP_CHECKOUT_STRIPE_SECRET_KEY.")
    detail: str = Field(description="What it must hold for live payments, and what it holds now (shape only).")


class ReadinessReport(BaseModel):
    ready: bool = Field(description="True when no check failed: ready to take orders in the current mode.")
    mode: PaymentMode = Field(description="offline (test payments, no Stripe), stripe_test or stripe_live.")
    ready_for_live: bool = Field(description="True when ready AND nothing is missing for live payments.")
    checks: list[ReadinessCheck]
    live_missing: list[LiveSetting] = Field(
        description="Each setting live payments still need (empty when ready for live)."
    )


def _key_kind(value: str | None) -> str:
    """A key's kind without its secret part: 'sk_test_…', 'whsec_…', or 'not set'."""
    if not value:
        return "not set"
    match = re.match(r"^(sk_test_|sk_live_|rk_test_|rk_live_|pk_test_|pk_live_|whsec_)", value)
    return f"{match.group(1)}…" if match else "a value of an unknown shape"


def _key_env(key: re.Match[str] | None) -> str | None:
    return key.group("env") if key else None


def _secret(settings: Settings) -> str | None:
    return settings.stripe_secret_key.get_secret_value() if settings.stripe_secret_key else None


def _webhook_secret(settings: Settings) -> str | None:
    return settings.stripe_webhook_secret.get_secret_value() if settings.stripe_webhook_secret else None


def _payment_checks(settings: Settings) -> list[ReadinessCheck]:
    mode = settings.payment_mode
    if mode == "offline":
        return [
            ReadinessCheck(
                name="payments",
                status="ok",
                detail=f"offline test payments (no Stripe key): buyers see a 'test payment' button. For real "
                f"payments set {SECRET_KEY_ENV} and {PUBLISHABLE_KEY_ENV}.",
            )
        ]
    secret, publishable = _secret(settings), settings.stripe_publishable_key
    secret_match, publishable_match = _SECRET_KEY.match(secret or ""), _PUBLISHABLE_KEY.match(publishable or "")
    checks = [ReadinessCheck(name="payments", status="ok", detail=f"Stripe, {mode.removeprefix('stripe_')} mode")]
    problems: list[str] = []
    if secret_match is None:
        problems.append(
            f"{SECRET_KEY_ENV} is {_key_kind(secret)}: it must be a Stripe secret key (sk_test_… / sk_live_…) "
            "or restricted key (rk_…) from the Stripe dashboard"
        )
    if publishable_match is None:
        problems.append(
            f"{PUBLISHABLE_KEY_ENV} is {_key_kind(publishable)}: set the publishable key (pk_test_… / pk_live_…) "
            "that belongs to the secret key; the checkout page needs it"
        )
    if secret_match and publishable_match and _key_env(secret_match) != _key_env(publishable_match):
        problems.append(
            f"the keys disagree: {SECRET_KEY_ENV} is {_key_kind(secret)} but {PUBLISHABLE_KEY_ENV} is "
            f"{_key_kind(publishable)}; both must be test keys or both live keys of one Stripe account"
        )
    checks.append(
        ReadinessCheck(
            name="stripe_keys",
            status="fail" if problems else "ok",
            detail="; ".join(problems) + "." if problems else f"{_key_kind(secret)} with {_key_kind(publishable)}",
        )
    )
    webhook = _webhook_secret(settings)
    if _WEBHOOK_SECRET.match(webhook or ""):
        checks.append(ReadinessCheck(name="stripe_webhook_secret", status="ok", detail="whsec_… set"))
    else:
        checks.append(
            ReadinessCheck(
                name="stripe_webhook_secret",
                status="fail" if mode == "stripe_live" or webhook else "warn",
                detail=f"{WEBHOOK_SECRET_ENV} is {_key_kind(webhook)}: set the signing secret (whsec_…) of the "
                "Stripe webhook endpoint <public base URL>/webhooks/stripe. Without it orders are marked paid "
                "only when sync_payment is called.",
            )
        )
    return checks


def _public_url_check(settings: Settings) -> ReadinessCheck:
    url = settings.resolved_public_base_url()
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return ReadinessCheck(name="public_base_url", status="ok", detail=url)
    local = (parts.hostname or "") in _LOCAL_HOSTS
    if settings.payment_mode == "stripe_live":
        status: CheckStatus = "fail"
    else:
        status = "ok" if local and parts.scheme == "http" else "warn"
    return ReadinessCheck(
        name="public_base_url",
        status=status,
        detail=f"{url}: buyers open checkout links here. "
        + (
            "Fine for testing on this machine; "
            if status == "ok"
            else "Buyers on other machines cannot open it safely; "
        )
        + f"for live payments set {PUBLIC_URL_ENV} to the https:// address buyers reach.",
    )


def _live_missing(settings: Settings) -> list[LiveSetting]:
    secret, publishable, webhook = _secret(settings), settings.stripe_publishable_key, _webhook_secret(settings)
    missing: list[LiveSetting] = []
    if _key_env(_SECRET_KEY.match(secret or "")) != "live":
        missing.append(
            LiveSetting(
                setting=SECRET_KEY_ENV, detail=f"a live secret key sk_live_… (or rk_live_…); now {_key_kind(secret)}"
            )
        )
    if _key_env(_PUBLISHABLE_KEY.match(publishable or "")) != "live":
        missing.append(
            LiveSetting(
                setting=PUBLISHABLE_KEY_ENV, detail=f"a live publishable key pk_live_…; now {_key_kind(publishable)}"
            )
        )
    if not _WEBHOOK_SECRET.match(webhook or ""):
        missing.append(
            LiveSetting(
                setting=WEBHOOK_SECRET_ENV,
                detail=f"the live webhook endpoint's signing secret whsec_…; now {_key_kind(webhook)}",
            )
        )
    url = settings.resolved_public_base_url()
    if urlsplit(url).scheme != "https":
        missing.append(LiveSetting(setting=PUBLIC_URL_ENV, detail=f"an https:// URL buyers can reach; now {url}"))
    return missing


async def _database_checks(services: Services) -> list[ReadinessCheck]:
    ok, facts = await readiness(services)
    where = "PostgreSQL" if services.db.dialect == "postgresql" else f"SQLite in {services.settings.data_dir}"
    if facts.get("database") != "ok":
        return [
            ReadinessCheck(
                name="database",
                status="fail",
                detail=f"{where} is unreachable: start it, or fix MCP_CHECKOUT_DATABASE_URL / MCP_CHECKOUT_DATA_DIR.",
            ),
            ReadinessCheck(name="catalog", status="fail", detail="not checked: the database is unreachable."),
        ]
    checks = [ReadinessCheck(name="database", status="ok", detail=f"{where} reachable")]
    current, head = facts.get("schema"), facts.get("expected_schema")
    if not ok:
        checks.append(
            ReadinessCheck(
                name="schema",
                status="fail",
                detail=f"schema at {current or 'nothing (empty database)'}, expected {head}: run `mcp-checkout "
                "migrate` (the server also migrates when it starts).",
            )
        )
        if current is None:
            checks.append(ReadinessCheck(name="catalog", status="fail", detail="not checked: no schema yet."))
            return checks
    else:
        checks.append(ReadinessCheck(name="schema", status="ok", detail=f"at {head} (newest)"))
    checks.append(await _catalog_check(services))
    return checks


async def _catalog_check(services: Services) -> ReadinessCheck:
    try:
        totals = await services.db.read(catalog.stock_totals)
    except CheckoutError as exc:
        return ReadinessCheck(name="catalog", status="fail", detail=f"could not read the catalog ({exc.code}).")
    count, in_stock = int(totals["skus"]), int(totals["in_stock"])
    if count == 0:
        return ReadinessCheck(
            name="catalog",
            status="fail",
            detail="the catalog is empty: import it with `mcp-checkout import-catalog FILE.csv` (or the "
            "import_catalog_csv tool); `mcp-checkout seed-demo` loads a demo catalog.",
        )
    if in_stock == 0:
        return ReadinessCheck(
            name="catalog",
            status="fail",
            detail=f"{count} SKUs but none in stock: add stock with adjust_inventory or a CSV import.",
        )
    return ReadinessCheck(name="catalog", status="ok", detail=f"{count} SKUs, {in_stock} in stock")


async def shipping_check(services: Services) -> ReadinessCheck:
    """SKUs that ship, in a currency without an active shipping rate: their orders ask for no address and
    charge no shipping (a store without rates is treated as one that does not ship)."""
    try:
        gaps = await services.db.read(rates.unshipped_currencies)
    except CheckoutError as exc:
        return ReadinessCheck(name="shipping", status="warn", detail=f"could not check shipping rates ({exc.code}).")
    if not gaps:
        return ReadinessCheck(
            name="shipping", status="ok", detail="every SKU that ships has an active shipping rate in its currency"
        )
    found = ", ".join(f"{count} in {currency}" for currency, count in gaps.items())
    return ReadinessCheck(
        name="shipping",
        status="warn",
        detail=f"SKUs that require shipping ({found}) have no active shipping rate in their currency: their orders "
        "ask the buyer for no address and charge no shipping. Add one with upsert_shipping_rate (e.g. "
        'countries=["*"] for everywhere), or mark goods that do not ship requires_shipping=false '
        "(upsert_product, or the CSV column).",
    )


async def demo_data_check(services: Services) -> ReadinessCheck:
    """Demo products or the demo's webhook endpoint in this store: harmless while testing, a warning when live."""
    try:
        demo_skus, demo_endpoints = await services.db.read(demo_catalog.demo_footprint)
    except CheckoutError as exc:
        return ReadinessCheck(name="demo_data", status="warn", detail=f"could not check for demo data ({exc.code}).")
    if not demo_skus and not demo_endpoints:
        return ReadinessCheck(name="demo_data", status="ok", detail="no demo products or demo webhook endpoints")
    found = [f"{demo_skus} demo SKU(s)"] if demo_skus else []
    found += [f"{demo_endpoints} active 'demo ERP' webhook endpoint(s)"] if demo_endpoints else []
    live = services.settings.payment_mode == "stripe_live"
    return ReadinessCheck(
        name="demo_data",
        status="warn" if live else "ok",
        detail=f"{' and '.join(found)} in this store{' taking live payments' if live else ''}: remove them before "
        "selling for real (`mcp-checkout reset --yes` empties the store; `mcp-checkout delete-product` or the "
        "delete_product tool removes single products; `mcp-checkout webhooks deactivate ID` stops an endpoint).",
    )


async def _webhook_check(services: Services, principal: Principal) -> tuple[ReadinessCheck, bool]:
    """Outbound webhook endpoints (the merchant's own systems): does live mode accept every active one, and
    how many deliveries of the last day succeeded. The flag: an endpoint live mode would refuse."""
    try:
        endpoints = [e for e in (await services.webhooks.list_endpoints(principal)).endpoints if e.status == "active"]
        refused = await services.webhooks.live_refusals(principal)
        metrics = await services.webhooks.metrics(principal, WEBHOOK_WINDOW_MINUTES)
    except CheckoutError as exc:
        return ReadinessCheck(name="webhook_endpoints", status="warn", detail=f"not checked ({exc.code})."), False
    if not endpoints:
        return ReadinessCheck(
            name="webhook_endpoints", status="ok", detail="no outbound webhook endpoints (optional)."
        ), False
    if refused:
        listing = "; ".join(f"{endpoint.endpoint_id} {endpoint.url}: {why}" for endpoint, why in refused[:5])
        more = f" and {len(refused) - 5} more" if len(refused) > 5 else ""
        detail = (
            f"{len(refused)} of {len(endpoints)} active endpoints are not public https receivers, and live mode "
            f"sends them nothing ({listing}{more}). Deactivate them with deactivate_webhook_endpoint and register "
            "each receiver's public https address."
        )
        if services.settings.payment_mode == "stripe_live":
            return ReadinessCheck(name="webhook_endpoints", status="fail", detail=detail), True
        note = ReadinessCheck(name="webhook_endpoints", status="ok", detail=f"Fine in test mode, but {detail}")
        return note, True
    return _webhook_health(services, endpoints, metrics), False


def _webhook_health(services: Services, endpoints: list[WebhookEndpointOut], metrics: WebhookMetrics) -> ReadinessCheck:
    if services.settings.secret_key is None and services.db.dialect == "postgresql":
        return ReadinessCheck(
            name="webhook_endpoints",
            status="warn",
            detail=f"{len(endpoints)} active, their signing secrets sealed with the key file "
            f"{services.settings.resolved_secret_key_file()}: a server on another host cannot sign with them. Set "
            "MCP_CHECKOUT_SECRET_KEY to that file's content on every server process.",
        )
    backlog = f"; {metrics.pending} waiting for a retry" if metrics.pending else ""
    if metrics.success_rate is None:
        return ReadinessCheck(
            name="webhook_endpoints",
            status="ok",
            detail=f"{len(endpoints)} active; no deliveries finished in the last 24 h{backlog}.",
        )
    finished = metrics.delivered + metrics.failed + metrics.abandoned
    detail = (
        f"{len(endpoints)} active; {metrics.delivered} of {finished} deliveries in the last 24 h succeeded "
        f"({metrics.success_rate:.0%}){backlog}."
    )
    if metrics.success_rate >= WEBHOOK_MIN_SUCCESS:
        return ReadinessCheck(name="webhook_endpoints", status="ok", detail=detail)
    return ReadinessCheck(
        name="webhook_endpoints",
        status="warn",
        detail=f"{detail} Look at list_webhook_deliveries for the receivers' answers, fix the receiver (or "
        "deactivate_webhook_endpoint), then replay_webhook_delivery the failed ones.",
    )


def _secret_key_check(services: Services) -> ReadinessCheck:
    """The keys that seal buyer data and webhook secrets: shared by every process, rotation finished."""
    keyring, settings = services.keyring, services.settings
    if settings.secret_key is None and services.db.dialect == "postgresql":
        return ReadinessCheck(
            name="secret_key",
            status="warn",
            detail="buyer data and webhook secrets are sealed with the key file "
            f"{settings.resolved_secret_key_file()}; a server on another host cannot read them. Set "
            "MCP_CHECKOUT_SECRET_KEY to that file's content on every server process.",
        )
    try:
        count = keyring.key_count()
    except CheckoutError:
        return ReadinessCheck(name="secret_key", status="ok", detail=f"{keyring.describe()}; nothing sealed yet.")
    if count > 1:
        return ReadinessCheck(
            name="secret_key",
            status="ok",
            detail=f"{keyring.describe()}: a rotation is under way. Run `mcp-checkout keys rotate-secret`, then "
            "remove the older keys.",
        )
    return ReadinessCheck(name="secret_key", status="ok", detail=f"buyer data sealed with {keyring.describe()}")


async def go_live_report(services: Services, principal: Principal) -> ReadinessReport:
    """Run every check (read-only: nothing is migrated, created or sent) and report."""
    policy.require(principal, "readiness_check")
    settings = services.settings
    checks = await _database_checks(services)
    schema_ready = all(check.status == "ok" for check in checks if check.name in ("database", "schema"))
    checks += _payment_checks(settings)
    checks.append(_public_url_check(settings))
    checks.append(_secret_key_check(services))
    webhooks_block_live = False
    if schema_ready:
        webhook_check, webhooks_block_live = await _webhook_check(services, principal)
        checks.append(webhook_check)
        checks.append(await demo_data_check(services))
        checks.append(await shipping_check(services))
    live_missing = _live_missing(settings)
    ready = all(check.status != "fail" for check in checks)
    return ReadinessReport(
        ready=ready,
        mode=settings.payment_mode,
        ready_for_live=ready and not live_missing and not webhooks_block_live,
        checks=checks,
        live_missing=live_missing,
    )
