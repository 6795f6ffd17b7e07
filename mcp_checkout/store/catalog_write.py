"""Catalog writes: upsert products and SKUs (by SKU code) in bulk.

Everything here runs inside the caller's transaction (``Database.write``), so a bulk import is all
or nothing. Rows are written in chunks with ``executemany``.

SQLite search index: ``sku_fts`` is an external-content FTS5 table kept in step by triggers on
``skus``. Row-by-row trigger work costs ~5 s per 100,000 new SKUs, so a large upsert suspends the
insert/update triggers *inside the same transaction*, writes the index entries itself in bulk
(a ``delete`` with the old values for every SKU whose text changed, then the new values), and
re-creates the triggers from the exact SQL stored in ``sqlite_master`` before committing. DDL is
transactional in SQLite: readers (WAL) keep seeing the last committed catalog, schema and index
until the commit; other writers are excluded by the write lock; a crash or error rolls the
triggers back in with everything else.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Insert,
    Select,
    String,
    Table,
    Update,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    select,
    update,
)

from mcp_checkout.domain import CatalogRow, category_key
from mcp_checkout.errors import InvalidInput
from mcp_checkout.store.models import products, skus

_LOOKUP_CHUNK = 10_000
_WRITE_CHUNK = 5_000
BULK_INDEX_THRESHOLD = 2_000
"""From this many rows on, SQLite search-index entries are written in bulk (see module docstring)."""

PRODUCT_FIELDS: frozenset[str] = frozenset({"name", "description", "category", "description_html"})
"""Product columns an upsert may overwrite. Leave one out to keep the stored value."""

_FTS_TRIGGERS = ("skus_fts_insert", "skus_fts_update")
_VERSION_TRIGGERS = ("sku_fts_version_insert", "sku_fts_version_update")
_VERSION_BUMP = "UPDATE sku_fts_version SET text_version = text_version + 1"
_TEXT_COLUMNS = frozenset({"title", "category", "search_text"})
_COMPARED = (
    "product_id", "name", "title", "category", "search_text", "price_minor", "currency", "stock_on_hand", "image_url",
    "requires_shipping", "tax_category", "weight_grams",
)  # fmt: skip
_FTS_DELETE = "INSERT INTO sku_fts(sku_fts, rowid, title, sku, category, search_text) VALUES ('delete', ?, ?, ?, ?, ?)"
_FTS_REBUILD = "INSERT INTO sku_fts(sku_fts) VALUES ('rebuild')"
_FTS_INSERT = "INSERT INTO sku_fts(rowid, title, sku, category, search_text) VALUES (?, ?, ?, ?, ?)"
_FTS_INSERT_NEW = (
    "INSERT INTO sku_fts(rowid, title, sku, category, search_text) "
    "SELECT id, title, sku, category, search_text FROM skus WHERE id > ?"
)


@dataclass(frozen=True)
class UpsertCounts:
    created: int
    updated: int


@dataclass(slots=True)
class ExistingSku:
    """A stored SKU and the product it belongs to, as an upsert needs to know it."""

    id: int
    sku: str
    product_id: str
    name: str
    title: str
    category: str
    search_text: str
    price_minor: int
    currency: str
    stock_on_hand: int
    reserved: int
    product_name: str
    product_external_id: str | None
    product_description: str
    product_category: str
    archived: bool = False
    """Deleted by the merchant but kept for its orders; an upsert lists it again."""
    image_url: str = ""
    product_description_html: str = ""
    requires_shipping: bool = True
    tax_category: str = "standard"
    weight_grams: int | None = None

    @property
    def product_key(self) -> str:
        return product_key(self.product_external_id, self.product_name)


@dataclass(frozen=True, slots=True)
class _Product:
    id: str
    name: str
    description: str
    category: str
    description_html: str = ""


def product_key(external_id: str | None, name: str) -> str:
    """The same key as :attr:`CatalogRow.product_key`, for stored products."""
    return f"ext:{external_id}" if external_id else f"name:{' '.join(name.lower().split())}"


def _new_product_ids(count: int) -> list[str]:
    """``count`` random product ids (96 bits each), drawn in one call: per-id ``token_hex`` costs 0.3 s per 100,000."""
    hexed = secrets.token_bytes(12 * count).hex()
    return [f"prod_{hexed[start : start + 24]}" for start in range(0, 24 * count, 24)]


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def one_of(conn: Connection, column: ColumnElement[str], values: Sequence[str]) -> ColumnElement[bool]:
    """``column IN values`` with the values in ONE bound parameter (a JSON array on SQLite, an array
    on PostgreSQL): an expanding IN costs SQLAlchemy ~4 us per value to compile."""
    if conn.dialect.name == "sqlite":
        listed: Select[tuple[str]] = select(literal_column("value")).select_from(
            func.json_each(bindparam("listed", json.dumps(values)))
        )
        return column.in_(listed)
    # Not "= ANY(:array)": under a generic plan (asyncpg prepares statements) that scans the array
    # once per row, 43 s for 100,000 codes; a semi-join on unnest probes the unique index instead.
    array_type = ARRAY(String())
    unnested = select(func.unnest(cast(bindparam("listed", list(values), type_=array_type), array_type)))
    return column.in_(unnested)


# ---------------------------------------------------------------- reads
def existing_skus(conn: Connection, codes: Collection[str], *, lock: bool = False) -> dict[str, ExistingSku]:
    """The stored SKUs among ``codes``, with their products.

    ``lock=True`` takes row locks on PostgreSQL (``FOR UPDATE``) so that no order can reserve more of
    these SKUs until the transaction ends; SQLite's write transaction already excludes other writers.
    """
    columns = (
        skus.c.id,
        skus.c.sku,
        skus.c.product_id,
        skus.c.name,
        skus.c.title,
        skus.c.category,
        skus.c.search_text,
        skus.c.price_minor,
        skus.c.currency,
        skus.c.stock_on_hand,
        skus.c.reserved,
        products.c.name.label("product_name"),
        products.c.external_id.label("product_external_id"),
        products.c.description.label("product_description"),
        products.c.category.label("product_category"),
        skus.c.archived_at.is_not(None).label("archived"),
        skus.c.image_url,
        products.c.description_html.label("product_description_html"),
        skus.c.requires_shipping,
        skus.c.tax_category,
        skus.c.weight_grams,
    )
    found: dict[str, ExistingSku] = {}
    for chunk in _chunks(sorted(set(codes)), _LOOKUP_CHUNK):
        query = (
            select(*columns)
            .join_from(skus, products, products.c.id == skus.c.product_id)
            .where(one_of(conn, skus.c.sku, chunk))
        )
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update(of=skus).order_by(skus.c.id)  # one lock order: no deadlocks
        for row in conn.execute(query).all():
            values: tuple[Any, ...] = tuple(row)
            found[values[1]] = ExistingSku(*values)
    return found


def existing_sku_codes(conn: Connection, codes: Sequence[str]) -> dict[str, int]:
    """SKU code → reserved units, for the codes that exist."""
    return {code: found.reserved for code, found in existing_skus(conn, codes).items()}


def _resolve_products(
    conn: Connection, rows: Sequence[CatalogRow], keys: Sequence[str], existing: Mapping[str, ExistingSku]
) -> dict[str, _Product]:
    """Product key → stored product, for the keys these rows name that already exist.

    Precedence: a product with that external id; the product a row's SKU already belongs to; any
    product without an external id whose normalised name matches (so a variant added in a later
    file joins its product instead of creating a twin).
    """
    found: dict[str, _Product] = {}
    wanted = set(keys)
    external = sorted({row.external_id for row in rows if row.external_id})
    for chunk in _chunks(external, _LOOKUP_CHUNK):
        query = (
            select(
                products.c.id,
                products.c.external_id,
                products.c.name,
                products.c.description,
                products.c.category,
                products.c.description_html,
            )
            .where(one_of(conn, products.c.external_id, chunk))
            .order_by(products.c.id)
        )
        for pid, ext, name, description, category, body in conn.execute(query):
            found.setdefault(f"ext:{ext}", _Product(pid, name, description, category, body))
    for sku in existing.values():
        found.setdefault(
            sku.product_key,
            _Product(
                sku.product_id,
                sku.product_name,
                sku.product_description,
                sku.product_category,
                sku.product_description_html,
            ),
        )
    if any(key.startswith("name:") and key not in found for key in wanted):
        query = (
            select(
                products.c.id, products.c.name, products.c.description, products.c.category, products.c.description_html
            )
            .where(products.c.external_id.is_(None))
            .order_by(products.c.id)
        )
        for pid, name, description, category, body in conn.execute(query):
            key = product_key(None, name)
            if key in wanted:
                found.setdefault(key, _Product(pid, name, description, category, body))
    return found


# ---------------------------------------------------------------- the search index (SQLite)
@dataclass(frozen=True)
class _SuspendedTriggers:
    statements: list[str]
    """The CREATE TRIGGER statements to run again before the transaction ends."""
    bump_version: bool
    """Whether the search-text version counter's triggers were suspended too (bump it once instead)."""


def _suspend_search_triggers(conn: Connection) -> _SuspendedTriggers | None:
    """Drop the search-index triggers on ``skus`` (inside this transaction only) and return how to
    put them back, or None when the schema is not the one this code knows: then the triggers stay
    and do the work row by row.

    These are the FTS5 insert/update triggers and, where present (migration 0003), the triggers
    that bump ``sku_fts_version`` on every text change; the caller then writes the index entries
    itself and bumps the version once."""
    if conn.dialect.name != "sqlite":
        return None
    query = "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'skus'"
    found: dict[str, str] = {str(name): str(sql) for name, sql in conn.exec_driver_sql(query).all()}
    if not all(name in found for name in _FTS_TRIGGERS):
        return None
    names = list(_FTS_TRIGGERS)
    bump = all(_VERSION_BUMP in " ".join(found.get(name, "").split()) for name in _VERSION_TRIGGERS)
    if bump:
        names += _VERSION_TRIGGERS
    for name in names:
        conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
    return _SuspendedTriggers([found[name] for name in names], bump)


def _write_index_entries(
    conn: Connection,
    old_entries: list[tuple[Any, ...]],
    new_entries: list[tuple[Any, ...]],
    max_id_before: int,
    created: int,
) -> None:
    """Do the suspended triggers' work in bulk: remove the old text of changed SKUs from the index
    and add their new text and every new SKU. When that touches most of the catalog, rebuilding the
    whole index from ``skus`` is cheaper (each entry is tokenized once instead of twice)."""
    total = conn.exec_driver_sql("SELECT count(*) FROM skus").scalar_one()
    if 2 * (len(old_entries) + created) >= total:
        conn.exec_driver_sql(_FTS_REBUILD)
        return
    if old_entries:
        conn.exec_driver_sql(_FTS_DELETE, old_entries)
    if new_entries:
        conn.exec_driver_sql(_FTS_INSERT, new_entries)
    if created:
        conn.exec_driver_sql(_FTS_INSERT_NEW, (max_id_before,))


def _restore_search_triggers(conn: Connection, suspended: _SuspendedTriggers, text_changed: bool) -> None:
    if suspended.bump_version and text_changed:
        conn.exec_driver_sql(f"{_VERSION_BUMP} WHERE id = 1")
    for statement in suspended.statements:
        conn.exec_driver_sql(statement)


# ---------------------------------------------------------------- the upsert
def _driver_timestamp(conn: Connection, now: datetime) -> Any:
    """``now`` as the driver takes it for our timestamp columns (see :func:`_bulk_write`)."""
    if conn.dialect.name != "sqlite":
        return now
    process = skus.c.updated_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process(now) if process is not None else now


def _bulk_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) in one go; see :func:`_bulk_write`."""
    _bulk_write(conn, table, rows, key=None)


def _bulk_update(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Update the rows whose ``id`` is each dict's ``b_id`` with the dict's other values."""
    _bulk_write(conn, table, rows, key="b_id")


def _bulk_write(conn: Connection, table: Table, rows: list[dict[str, Any]], key: str | None) -> None:
    """Write many rows with one statement shape.

    SQLite: ``executemany`` with the parameters handed to the driver as they are (timestamps already
    converted by :func:`_driver_timestamp`); SQLAlchemy's per-row parameter processing costs more
    than the inserts themselves (~3 s per 100,000 SKUs).

    PostgreSQL: one statement per chunk over ``unnest`` of one array per column. ``executemany``
    runs one statement per row, and the statement-level trigger that bumps the search-text version
    (migration 0003) then updates one row 100,000 times in a transaction, which PostgreSQL does in
    quadratic time (362 s for 100,000 SKUs, against ~20 s this way).
    """
    names = list(rows[0])
    if conn.dialect.name == "sqlite":
        if key is None:
            statement: Insert | Update = insert(table)
        else:
            values: dict[str, Any] = {name: bindparam(name) for name in names if name != key}
            statement = update(table).where(table.c.id == bindparam(key)).values(values)
        compiled = statement.compile(dialect=conn.dialect, column_keys=names)
        order = compiled.positiontup or []
        pick = itemgetter(*order) if len(order) > 1 else (lambda row: (row[order[0]],))
        conn.exec_driver_sql(str(compiled), [pick(row) for row in rows])
        return
    arrays = []
    for name in names:
        column_type = table.c.id.type if name == key else table.c[name].type
        array_type = ARRAY(column_type)
        arrays.append(cast(bindparam(f"a_{name}", [row[name] for row in rows], type_=array_type), array_type))
    source = func.unnest(*arrays).table_valued(*names).render_derived()
    if key is None:
        conn.execute(insert(table).from_select(names, select(*(source.c[name] for name in names))))
    else:
        changes = {name: source.c[name] for name in names if name != key}
        conn.execute(update(table).where(table.c.id == source.c[key]).values(changes))


def upsert_catalog(
    conn: Connection,
    rows: Sequence[CatalogRow],
    now: datetime,
    *,
    existing: Mapping[str, ExistingSku] | None = None,
    product_fields: Collection[str] = PRODUCT_FIELDS,
    progress: Callable[[int], None] | None = None,
    bulk_index: bool | None = None,
) -> UpsertCounts:
    """Insert or update products and SKUs; the SKU code is the identity, stock is set absolutely.

    ``rows`` must not repeat a SKU code. ``existing`` is what :func:`existing_skus` returned for
    these codes in this transaction (looked up here when omitted). Products are grouped by external
    id or, lacking one, by name; ``product_fields`` names the product columns the rows are
    authoritative for (the others keep their stored values, and new variants of a stored product
    take them from it). ``progress(rows_done)`` is called after each chunk. ``bulk_index`` forces
    (True) or forbids (False) the bulk search-index path on SQLite; by default it is used from
    :data:`BULK_INDEX_THRESHOLD` rows on.

    Raises :class:`InvalidInput` (and writes nothing) if a row would set stock on hand below the
    units reserved by unpaid orders; callers that report per row check this first.
    """
    if not rows:
        return UpsertCounts(0, 0)
    if existing is None:
        existing = existing_skus(conn, [row.sku for row in rows], lock=True)
    short = [
        (row.sku, row.stock, existing[row.sku].reserved)
        for row in rows
        if row.sku in existing and row.stock < existing[row.sku].reserved
    ]
    if short:
        sku, stock, reserved = short[0]
        raise InvalidInput(
            f"Stock for SKU {sku} would be {stock}, below the {reserved} units reserved by unpaid orders "
            f"({len(short)} SKU(s) affected); set at least the reserved quantity.",
            details={"sku": sku, "stock": stock, "reserved": reserved, "affected": len(short)},
        )
    keys = [row.product_key for row in rows]
    stored = _resolve_products(conn, rows, keys, existing)
    stamp = _driver_timestamp(conn, now)
    keep_description = "description" not in product_fields
    keep_category = "category" not in product_fields

    # Decide every product first: variants of one product may sit in different chunks.
    product_ids: dict[str, str] = {key: product.id for key, product in stored.items()}
    new_products: dict[str, dict[str, Any]] = {}
    product_updates: dict[str, dict[str, Any]] = {}
    decided: set[str] = set()
    fresh_ids = iter(_new_product_ids(len({*keys} - stored.keys())))
    for row, key in zip(rows, keys, strict=True):  # a product's first row speaks for it
        if key in decided:
            continue
        decided.add(key)
        wanted = {
            "name": row.product_name,
            "description": row.description,
            "category": row.category,
            "description_html": row.description_html,
        }
        product = stored.get(key)
        if product is None:
            pid = next(fresh_ids)
            product_ids[key] = pid
            new_products[key] = {
                "id": pid,
                "external_id": row.external_id,
                "created_at": stamp,
                "updated_at": stamp,
                **wanted,
            }
            continue
        current = {
            "name": product.name,
            "description": product.description,
            "category": product.category,
            "description_html": product.description_html,
        }
        changed = {name: wanted[name] for name in product_fields if wanted[name] != current[name]}
        if changed:
            product_updates[key] = {**current, **changed, "b_id": product.id, "updated_at": stamp}

    bulk = bulk_index if bulk_index is not None else len(rows) >= BULK_INDEX_THRESHOLD
    suspended = _suspend_search_triggers(conn) if bulk else None
    max_id_before = 0
    if suspended is not None:
        max_id_before = conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM skus").scalar_one()

    created = updated = done = 0
    category_keys: dict[str, str] = {}
    # Search-index entries of SKUs whose text changes (bulk path): written after the loop.
    old_index_entries: list[tuple[Any, ...]] = []
    new_index_entries: list[tuple[Any, ...]] = []
    inserted_products: set[str] = set()
    for start in range(0, len(rows), _WRITE_CHUNK):
        chunk = zip(rows[start : start + _WRITE_CHUNK], keys[start : start + _WRITE_CHUNK], strict=True)
        chunk_products: list[dict[str, Any]] = []
        chunk_product_updates: list[dict[str, Any]] = []
        inserts: list[dict[str, Any]] = []
        # Updates grouped by the columns that change: an unchanged SKU costs nothing, a price change
        # touches no index, and only a text change fires the search-index triggers.
        sku_updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row, key in chunk:
            if key in new_products and key not in inserted_products:
                inserted_products.add(key)
                chunk_products.append(new_products[key])
            if key in product_updates:
                chunk_product_updates.append(product_updates.pop(key))
            description, category = row.description, row.category
            product = stored.get(key)
            if product is not None and row.sku not in existing:
                # A new variant of a stored product: product-level text it does not own comes from the product.
                description = product.description if keep_description else description
                category = product.category if keep_category else category
            category_compared = category_keys.get(category)
            if category_compared is None:
                category_compared = category_keys[category] = category_key(category)
            values: dict[str, Any] = {
                "product_id": product_ids[key],
                "name": row.sku_name,
                "title": row.title,
                "category": category,
                "category_key": category_compared,
                "search_text": description,
                "price_minor": row.price_minor,
                "currency": row.currency,
                "stock_on_hand": row.stock,
                "image_url": row.image_url,
                "requires_shipping": row.requires_shipping,
                "tax_category": row.tax_category,
                "weight_grams": row.weight_grams,
            }
            old = existing.get(row.sku)
            if old is None:
                values.update(sku=row.sku, reserved=0, created_at=stamp, updated_at=stamp)
                inserts.append(values)
                created += 1
                continue
            updated += 1
            stored_values = (
                old.product_id,
                old.name,
                old.title,
                old.category,
                old.search_text,
                old.price_minor,
                old.currency,
                old.stock_on_hand,
                old.image_url,
                old.requires_shipping,
                old.tax_category,
                old.weight_grams,
            )
            changed_columns = tuple(
                name for name, before in zip(_COMPARED, stored_values, strict=True) if before != values[name]
            )
            if old.archived:  # upserting a deleted (archived) SKU puts it on sale again
                changed_columns += ("archived_at",)
                values["archived_at"] = None
            if not changed_columns:
                continue
            if "category" in changed_columns:
                changed_columns += ("category_key",)
            change = {name: values[name] for name in changed_columns}
            sku_updates.setdefault(changed_columns, []).append({"b_id": old.id, "updated_at": stamp, **change})
            if suspended is not None and _TEXT_COLUMNS.intersection(changed_columns):
                old_index_entries.append((old.id, old.title, old.sku, old.category, old.search_text))
                new_index_entries.append((old.id, row.title, row.sku, category, description))

        if chunk_products:
            _bulk_insert(conn, products, chunk_products)
        if chunk_product_updates:
            _bulk_update(conn, products, chunk_product_updates)
        if inserts:
            _bulk_insert(conn, skus, inserts)
        for batch in sku_updates.values():
            _bulk_update(conn, skus, batch)
        done = min(start + _WRITE_CHUNK, len(rows))
        if progress is not None:
            progress(done)

    if suspended is not None:
        _write_index_entries(conn, old_index_entries, new_index_entries, max_id_before, created)
        _restore_search_triggers(conn, suspended, bool(old_index_entries) or created > 0)
    return UpsertCounts(created=created, updated=updated)
