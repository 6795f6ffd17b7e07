"""Settings: the only place that reads the environment (prefix ``MCP_CHECKOUT_``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mcp_checkout.domain import parse_secret_keys

PrincipalKind = Literal["buyer", "merchant"]


PaymentMode = Literal["offline", "stripe_test", "stripe_live"]
Toolset = Literal["catalog", "cart", "orders", "checkout", "merchant", "webhooks"]

APP_NAME = "mcp-checkout"


def default_data_dir() -> Path:
    """The per-user data directory used when neither MCP_CHECKOUT_DATA_DIR nor --data-dir is given:
    ``~/.local/share/mcp-checkout`` on Linux (``$XDG_DATA_HOME``), ``~/Library/Application Support/mcp-checkout``
    on macOS, ``%LOCALAPPDATA%\\mcp-checkout`` on Windows. It does not depend on the current folder."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


class Settings(BaseSettings):
    """Runtime configuration. Every field can be set as ``MCP_CHECKOUT_<NAME>``."""

    # An empty variable counts as unset: hosts that fill env from optional fields (the Claude Desktop
    # bundle's user_config) pass "" for a field left blank, which must not turn Stripe on with an empty key.
    model_config = SettingsConfigDict(env_prefix="MCP_CHECKOUT_", env_file=None, extra="ignore", env_ignore_empty=True)

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where the embedded SQLite database, the secret key and imports live (default: per user).",
    )
    import_dir: Path | None = Field(
        default=None,
        description="The only directory import_catalog_csv may read files from (default <data_dir>/imports).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite:///<data_dir>/checkout.db. "
        "PostgreSQL: postgresql+asyncpg://user@host:5432/db",
    )
    database_pooler: Literal["none", "pgbouncer"] = Field(
        default="none",
        description="What stands between the servers and PostgreSQL: 'pgbouncer' (transaction pooling, or any "
        "pooler that hands a server connection out per transaction) turns off prepared-statement caching, "
        "which such a pooler cannot carry across transactions.",
    )
    # Connections kept open per process. Keep it at or above the requests a process serves at once: a
    # connection opened beyond the pool is closed again on return, and that churn (a new PostgreSQL
    # backend, or a new SQLite handle with its PRAGMAs, per request) cost a third of the HTTP throughput
    # in bench/http_scale.py. 4 processes x (15 + 5, + 1 for hot reads) stay under PostgreSQL's default 100.
    db_pool_size: int = Field(default=15, ge=1, le=200)
    db_max_overflow: int = Field(default=5, ge=0, le=500)
    db_busy_timeout_ms: int = Field(default=10_000, ge=100, le=120_000)
    db_busy_poll_ms: float = Field(
        default=0.5,
        ge=0,
        le=10,
        description="PostgreSQL: how long the event loop polls for a statement's answer before it sleeps "
        "(store/busy_poll.py): CPU for latency while it has nothing else to do; 0 turns it off.",
    )

    # These two only seed the store profile on first start; after that the profile decides (service/store_profile).
    merchant_name: str = Field(default="Demo Store", max_length=120)
    default_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")

    local_principal_kind: PrincipalKind = "merchant"
    local_principal_id: str = Field(default="local", pattern=r"^[A-Za-z0-9._:-]{1,64}$")

    order_ttl_minutes: int = Field(default=60, ge=1, le=60 * 24 * 30)
    idempotency_retention_hours: int = Field(default=48, ge=24, le=24 * 365)
    idempotency_lease_seconds: int = Field(default=30, ge=1, le=3600)
    sweep_interval_seconds: float = Field(default=30.0, gt=0, le=3600)
    order_watch_poll_seconds: float = Field(
        default=0.5,
        ge=0.05,
        le=60,
        description="While anyone waits for an order (wait_for_order, orders:// subscriptions), how often the "
        "database is checked for changes other processes made (this process's own are heard at once).",
    )

    # Outbound webhooks (signed order events to the merchant's systems).
    webhook_max_attempts: int = Field(default=12, ge=1, le=50, description="Attempts before a delivery is abandoned.")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120, description="Per-attempt HTTP timeout.")
    webhook_backoff_base_seconds: float = Field(default=5.0, gt=0, le=3600)
    webhook_backoff_cap_seconds: float = Field(default=3600.0, gt=0, le=86_400)
    webhook_poll_interval_seconds: float = Field(
        default=2.0, gt=0, le=600, description="How often the dispatcher looks for deliveries other processes queued."
    )
    webhook_batch_size: int = Field(default=20, ge=1, le=500)
    webhook_retention_days: int = Field(default=30, ge=1, le=3650, description="How long delivery history is kept.")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # The buyer-facing checkout page (served beside stdio MCP, or with --http).
    public_base_url: str | None = Field(
        default=None, description="Base URL buyers reach the checkout page at; default http://<web_host>:<web_port>."
    )
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8765, ge=0, le=65535)
    serve_checkout_page: bool = Field(default=True, description="stdio serve also serves the checkout page.")
    link_ttl_minutes: int = Field(default=24 * 60, ge=5, le=10080)

    # Remote access (serve --http): API keys and their per-key call budget.
    rate_limit_per_minute: int = Field(default=1000, ge=1, le=1_000_000)
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Extra Host header values accepted by /mcp (DNS-rebinding protection)."
    )
    allowed_origins: list[str] = Field(default_factory=list, description="Extra Origin values accepted by /mcp.")
    shutdown_grace_seconds: float = Field(
        default=20.0, ge=0, le=600, description="How long a stopping HTTP server waits for running tool calls."
    )
    http_body_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="A request must have sent its whole body within this time."
    )
    toolsets: Annotated[list[Toolset] | None, NoDecode] = Field(
        default=None,
        description="Expose only these groups of tools, comma-separated: catalog, cart, orders, checkout, "
        "merchant, webhooks (default: all).",
    )
    read_only: bool = Field(default=False, description="Expose only the tools that change nothing.")
    http_stateless: bool = Field(
        default=False,
        description="Serve /mcp without sessions, so any process behind a load balancer can answer any "
        "request (on automatically with --workers > 1).",
    )

    ucp_allow_http_profiles: bool = Field(
        default=False,
        description="Accept http:// UCP platform profile URLs (local development and tests; the spec requires https).",
    )
    ucp_public: bool = Field(
        default=False,
        description="Open the UCP surface (REST and /ucp/mcp) to platforms without an API key (guest checkout), "
        "rate limited per client address. Off: every UCP call needs an API key.",
    )
    ucp_public_rate_limit_per_minute: int = Field(
        default=120, ge=1, le=1_000_000, description="UCP calls per minute per client address in guest mode."
    )

    # OAuth 2.1 for remote MCP clients (serve --http): this server is its own authorization server.
    oauth_enabled: bool = Field(default=True, description="Offer OAuth (registration, consent, tokens) on /mcp.")
    oauth_access_token_minutes: int = Field(default=60, ge=1, le=24 * 60, description="Access token lifetime.")
    oauth_refresh_token_days: int = Field(default=30, ge=1, le=365, description="Refresh token lifetime.")
    oauth_auto_approve_buyer: bool = Field(
        default=False,
        description="Clients asking only for the buyer scope are approved without the merchant's consent page.",
    )
    oauth_registrations_per_hour: int = Field(
        default=30, ge=1, le=10_000, description="Dynamic client registrations accepted per hour (all clients)."
    )
    # An external identity provider instead of (or beside) the built-in authorization server.
    oauth_jwt_issuer: str | None = Field(
        default=None,
        max_length=2048,
        description="Also accept JWT access tokens from this identity provider (its `iss`, e.g. "
        "https://login.example.com/); their audience must be <public base URL>/mcp and their scope buyer or "
        "merchant. Needs MCP_CHECKOUT_OAUTH_JWT_JWKS_URL.",
    )
    oauth_jwt_jwks_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://\S+$",
        description="The identity provider's signing keys (JWKS), e.g. https://login.example.com/.well-known/jwks.json.",
    )

    # Payments: without a Stripe secret key everything runs on the offline gateway.
    stripe_secret_key: SecretStr | None = None
    stripe_publishable_key: str | None = None
    stripe_webhook_secret: SecretStr | None = None
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key (44 url-safe base64 characters) that seals buyer data and webhook signing secrets "
        "at rest; several keys separated by commas, newest first, while rotating (`mcp-checkout keys "
        "rotate-secret`). Default: <data_dir>/secret.key (one key a line, newest first), created on first use. "
        "Every process must have the same keys.",
    )
    stripe_api_base: str | None = Field(default=None, description="Only for tests against a local fake Stripe.")
    stripe_max_network_retries: int = Field(default=2, ge=0, le=10)
    stripe_timeout_seconds: float = Field(
        default=30.0, gt=0, le=120, description="Per request to Stripe (each retry waits as long again)."
    )

    @field_validator("toolsets", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str) and value.lstrip().startswith("["):
            return json.loads(value)  # how a supervisor hands the setting to its workers
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()] or None
        return value

    @model_validator(mode="after")
    def _jwt_issuer_with_keys(self) -> Settings:
        if (self.oauth_jwt_issuer is None) != (self.oauth_jwt_jwks_url is None):
            raise ValueError(
                "MCP_CHECKOUT_OAUTH_JWT_ISSUER and MCP_CHECKOUT_OAUTH_JWT_JWKS_URL go together: set both "
                "(the identity provider and where its signing keys are) or neither"
            )
        return self

    @field_validator("default_currency", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        """``~`` and ``${HOME}``-style variables, as a host may pass them through unexpanded (a merchant may
        type either into the Claude Desktop bundle's data directory field; left empty, it is this default)."""
        return Path(os.path.expandvars(value)).expanduser()

    @field_validator("secret_key", mode="after")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        try:
            keys = parse_secret_keys(value.get_secret_value())
        except ValueError as exc:
            raise ValueError(
                f"MCP_CHECKOUT_SECRET_KEY: {exc}; make a key with: "
                "python -c 'import base64,os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'"
            ) from None
        if not keys:
            raise ValueError("MCP_CHECKOUT_SECRET_KEY is empty: unset it, or give one key or several (newest first)")
        return value

    def secret_keys(self) -> list[str]:
        """The configured secret keys, newest first (empty: use the key file)."""
        return parse_secret_keys(self.secret_key.get_secret_value()) if self.secret_key else []

    def resolved_secret_key_file(self) -> Path:
        return (self.data_dir / "secret.key").resolve()

    def resolved_public_base_url(self) -> str:
        return (self.public_base_url or f"http://{self.web_host}:{self.web_port}").rstrip("/")

    @property
    def payment_mode(self) -> PaymentMode:
        if self.stripe_secret_key is None:
            return "offline"
        live = self.stripe_secret_key.get_secret_value().startswith(("sk_live_", "rk_live_"))  # rk_: restricted key
        return "stripe_live" if live else "stripe_test"

    def resolved_import_dir(self) -> Path:
        return (self.import_dir or self.data_dir / "imports").resolve()

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'checkout.db').resolve()}"
