"""The store profile row (one per database), and the stamp of the store's pricing configuration
(``store_config_version``, migration 0016: moved by triggers whenever the profile, a rate or a code changes)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, literal_column, select, text, update

from mcp_checkout.domain.store_profile import PROFILE_FIELDS, StoreProfile
from mcp_checkout.store.db import dialect_insert
from mcp_checkout.store.models import store_profile

# Built once: the checkout page reads the profile on every open (building a statement costs more than running it).
_GET = select(store_profile).where(store_profile.c.id == 1)
_VERSION = text("SELECT version FROM store_config_version WHERE id = 1")
CONFIG_STAMP = (
    select(literal_column("version"))
    .select_from(text("store_config_version"))
    .where(literal_column("id") == 1)
    .scalar_subquery()
    .label("config_stamp")
)
"""A column for another statement's select list: the stamp read with that statement's rows (one round trip
fewer); :func:`stamp_of` reads it back."""


def config_version(conn: Connection) -> int | None:
    """The configuration's current stamp (None if its row is missing: then nothing may be cached)."""
    version = conn.execute(_VERSION).scalar()
    return None if version is None else int(version)


def stamp_of(row: Mapping[str, Any]) -> int | None:
    """The stamp a row read with :data:`CONFIG_STAMP` carries."""
    stamp = row["config_stamp"]
    return None if stamp is None else int(stamp)


def get(conn: Connection) -> StoreProfile | None:
    row = conn.execute(_GET).mappings().first()
    return None if row is None else StoreProfile(**{name: row[name] for name in PROFILE_FIELDS})


def seed(conn: Connection, profile: StoreProfile, now: datetime) -> None:
    """Write ``profile`` unless the store has one already (first start: seeded from settings)."""
    values = {"id": 1, **asdict(profile), "updated_at": now}
    conn.execute(dialect_insert(conn, store_profile).values(values).on_conflict_do_nothing(index_elements=["id"]))


def save(conn: Connection, profile: StoreProfile, now: datetime) -> None:
    values = {**asdict(profile), "updated_at": now}
    if not conn.execute(update(store_profile).where(store_profile.c.id == 1).values(values)).rowcount:
        conn.execute(store_profile.insert().values(id=1, **values))
