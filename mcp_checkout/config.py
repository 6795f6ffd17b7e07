"""Settings: the only place that reads the environment (prefix ``MCP_CHECKOUT_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PrincipalKind = Literal["buyer", "merchant"]


class Settings(BaseSettings):
    """Runtime configuration. Every field can be set as ``MCP_CHECKOUT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="MCP_CHECKOUT_", env_file=None, extra="ignore")

    data_dir: Path = Field(default=Path("./data"), description="Where the embedded SQLite database lives.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite:///<data_dir>/checkout.db. "
        "PostgreSQL: postgresql+asyncpg://user@host:5432/db",
    )
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=20, ge=0, le=500)
    db_busy_timeout_ms: int = Field(default=10_000, ge=100, le=120_000)

    merchant_name: str = Field(default="Demo Store", max_length=120)
    default_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")

    local_principal_kind: PrincipalKind = "merchant"
    local_principal_id: str = Field(default="local", pattern=r"^[A-Za-z0-9._:-]{1,64}$")

    order_ttl_minutes: int = Field(default=60, ge=1, le=60 * 24 * 30)
    idempotency_retention_hours: int = Field(default=48, ge=24, le=24 * 365)
    idempotency_lease_seconds: int = Field(default=30, ge=1, le=3600)
    sweep_interval_seconds: float = Field(default=30.0, gt=0, le=3600)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("default_currency", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'checkout.db').resolve()}"
