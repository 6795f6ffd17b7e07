"""Wipe a store's data (``mcp-checkout reset --yes``), keeping its schema and who may connect to it."""

from __future__ import annotations

from sqlalchemy import Connection, delete, func, select

from mcp_checkout.store.models import metadata

KEPT_TABLES = frozenset({"api_keys", "audit_events", "signing_keys"})
"""Access credentials survive a reset (so do tables whose name starts with ``oauth_``), so connected
clients keep working against the emptied store; so do the business's signing keys (platforms cache the
published ones) and the audit log, which records the reset."""


def kept(table_name: str) -> bool:
    return table_name in KEPT_TABLES or table_name.startswith("oauth_")


def wipe(conn: Connection) -> dict[str, int]:
    """Delete every row of every table but the kept ones, children first; table → rows deleted.
    Runs in the caller's write transaction: all or nothing. (The search index and its text version,
    which cached rankings check, follow the deleted SKUs through their triggers.)"""
    deleted: dict[str, int] = {}
    for table in reversed(metadata.sorted_tables):
        if kept(table.name):
            continue
        count = conn.execute(select(func.count()).select_from(table)).scalar_one()
        if count:
            conn.execute(delete(table))
        deleted[table.name] = int(count)
    return deleted
