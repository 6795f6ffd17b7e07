"""OAuth 2.1 tables (migration 0011), on the one schema of store/models.py, which imports this module so that
``metadata`` holds every table."""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Integer, String, Table, Text

from mcp_checkout.store.models import Timestamp, metadata

# OAuth 2.1 for remote MCP clients: registered clients, pending consents, codes and tokens. Every code
# and token is stored only as its SHA-256 (hex); a confidential client's secret is sealed (Fernet).
oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("client_name", String(200), nullable=False),
    Column("registration", JSON, nullable=False),  # the RFC 7591 metadata as registered
    Column("secret_sealed", Text, nullable=True),
    Column("created_at", Timestamp, nullable=False, index=True),
    Column("revoked_at", Timestamp, nullable=True),
)

oauth_consents = Table(
    "oauth_consents",
    metadata,
    Column("request_hash", String(64), primary_key=True),
    Column("client_id", String(64), ForeignKey("oauth_clients.client_id"), nullable=False),
    Column("redirect_uri", String(2048), nullable=False),
    Column("redirect_uri_explicit", Integer, nullable=False),
    Column("scope", String(100), nullable=False),
    Column("state", String(1024), nullable=True),
    Column("code_challenge", String(128), nullable=False),
    Column("resource", String(2048), nullable=True),
    Column("expires_at", Timestamp, nullable=False, index=True),
    Column("used_at", Timestamp, nullable=True),
)

oauth_codes = Table(
    "oauth_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(64), ForeignKey("oauth_clients.client_id"), nullable=False),
    Column("family_id", String(32), nullable=False),
    Column("scope", String(100), nullable=False),
    Column("redirect_uri", String(2048), nullable=False),
    Column("redirect_uri_explicit", Integer, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("resource", String(2048), nullable=True),
    Column("expires_at", Timestamp, nullable=False, index=True),
    Column("used_at", Timestamp, nullable=True),
)

oauth_tokens = Table(
    "oauth_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("kind", String(10), nullable=False),  # access | refresh
    Column("client_id", String(64), ForeignKey("oauth_clients.client_id"), nullable=False, index=True),
    Column("family_id", String(32), nullable=False, index=True),  # one authorization and its refreshes
    Column("scope", String(100), nullable=False),
    Column("resource", String(2048), nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False, index=True),
    Column("rotated_at", Timestamp, nullable=True),  # a refresh token already exchanged
    Column("revoked_at", Timestamp, nullable=True),
)

oauth_approval_codes = Table(
    "oauth_approval_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False, index=True),
    Column("used_at", Timestamp, nullable=True),
)
