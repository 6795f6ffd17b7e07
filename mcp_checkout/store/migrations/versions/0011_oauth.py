"""OAuth 2.1 for remote MCP clients: clients, consents, codes, tokens, one-time approval codes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("client_name", sa.String(length=200), nullable=False),
        sa.Column("registration", sa.JSON(), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=True),
        _ts("created_at", False),
        _ts("revoked_at", True),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_oauth_clients")),
    )
    op.create_index(op.f("ix_oauth_clients_created_at"), "oauth_clients", ["created_at"])
    op.create_table(
        "oauth_consents",
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2048), nullable=False),
        sa.Column("redirect_uri_explicit", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=1024), nullable=True),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("resource", sa.String(length=2048), nullable=True),
        _ts("expires_at", False),
        _ts("used_at", True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["oauth_clients.client_id"], name=op.f("fk_oauth_consents_client_id_oauth_clients")
        ),
        sa.PrimaryKeyConstraint("request_hash", name=op.f("pk_oauth_consents")),
    )
    op.create_index(op.f("ix_oauth_consents_expires_at"), "oauth_consents", ["expires_at"])
    op.create_table(
        "oauth_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("family_id", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2048), nullable=False),
        sa.Column("redirect_uri_explicit", sa.Integer(), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("resource", sa.String(length=2048), nullable=True),
        _ts("expires_at", False),
        _ts("used_at", True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["oauth_clients.client_id"], name=op.f("fk_oauth_codes_client_id_oauth_clients")
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_oauth_codes")),
    )
    op.create_index(op.f("ix_oauth_codes_expires_at"), "oauth_codes", ["expires_at"])
    op.create_table(
        "oauth_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("family_id", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("resource", sa.String(length=2048), nullable=True),
        _ts("created_at", False),
        _ts("expires_at", False),
        _ts("rotated_at", True),
        _ts("revoked_at", True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["oauth_clients.client_id"], name=op.f("fk_oauth_tokens_client_id_oauth_clients")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_oauth_tokens")),
    )
    op.create_index(op.f("ix_oauth_tokens_client_id"), "oauth_tokens", ["client_id"])
    op.create_index(op.f("ix_oauth_tokens_family_id"), "oauth_tokens", ["family_id"])
    op.create_index(op.f("ix_oauth_tokens_expires_at"), "oauth_tokens", ["expires_at"])
    op.create_table(
        "oauth_approval_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        _ts("created_at", False),
        _ts("expires_at", False),
        _ts("used_at", True),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_oauth_approval_codes")),
    )
    op.create_index(op.f("ix_oauth_approval_codes_expires_at"), "oauth_approval_codes", ["expires_at"])


def downgrade() -> None:
    op.drop_table("oauth_approval_codes")
    op.drop_table("oauth_tokens")
    op.drop_table("oauth_codes")
    op.drop_table("oauth_consents")
    op.drop_table("oauth_clients")
