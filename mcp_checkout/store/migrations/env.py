"""Alembic environment: runs on the connection that mcp_checkout.store.migrate hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from mcp_checkout.store.migrate import include_object
from mcp_checkout.store.models import metadata

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `mcp-checkout migrate`, which supplies the connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, include_object=include_object)
with context.begin_transaction():
    context.run_migrations()
