"""Catalog SQL: products, SKUs, stock, and full-text search (FTS5 on SQLite, tsvector on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Float, Integer, RowMapping, and_, bindparam, column, func, literal_column, select, text, update

from mcp_checkout.store.models import products, skus

SKU_COLUMNS = (
    skus.c.id,
    skus.c.sku,
    skus.c.product_id,
    skus.c.name,
    skus.c.title,
    skus.c.category,
    skus.c.price_minor,
    skus.c.currency,
    skus.c.stock_on_hand,
    skus.c.reserved,
)


@dataclass(frozen=True, slots=True)
class SearchFilters:
    category_key: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    in_stock_only: bool = False


def get_product(conn: Connection, product_id: str) -> RowMapping | None:
    return conn.execute(select(products).where(products.c.id == product_id)).mappings().first()


def get_product_by_external_id(conn: Connection, external_id: str) -> RowMapping | None:
    return conn.execute(select(products).where(products.c.external_id == external_id)).mappings().first()


def skus_of_product(conn: Connection, product_id: str) -> Sequence[RowMapping]:
    query = select(*SKU_COLUMNS).where(skus.c.product_id == product_id).order_by(skus.c.id)
    return conn.execute(query).mappings().all()


def get_skus(conn: Connection, codes: Iterable[str]) -> dict[str, RowMapping]:
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    rows = conn.execute(select(*SKU_COLUMNS).where(skus.c.sku.in_(wanted))).mappings().all()
    return {row["sku"]: row for row in rows}


def reserve_stock(conn: Connection, sku: str, quantity: int, now: datetime) -> bool:
    """Reserve ``quantity`` if that much is still available; False (and no change) otherwise."""
    result = conn.execute(
        update(skus)
        .where(skus.c.sku == sku, skus.c.stock_on_hand - skus.c.reserved >= quantity)
        .values(reserved=skus.c.reserved + quantity, updated_at=now)
    )
    return result.rowcount == 1


def release_stock(conn: Connection, lines: Mapping[str, int], now: datetime) -> None:
    for sku, quantity in lines.items():
        conn.execute(
            update(skus)
            .where(skus.c.sku == sku, skus.c.reserved >= quantity)
            .values(reserved=skus.c.reserved - quantity, updated_at=now)
        )


def commit_stock(conn: Connection, lines: Mapping[str, int], now: datetime) -> None:
    """Turn a reservation into a sale: the units leave stock on hand and the reservation."""
    for sku, quantity in lines.items():
        conn.execute(
            update(skus)
            .where(skus.c.sku == sku, skus.c.reserved >= quantity)
            .values(
                reserved=skus.c.reserved - quantity,
                stock_on_hand=skus.c.stock_on_hand - quantity,
                updated_at=now,
            )
        )


def stock_totals(conn: Connection) -> RowMapping:
    query = select(
        func.coalesce(func.sum(skus.c.stock_on_hand), 0).label("on_hand"),
        func.coalesce(func.sum(skus.c.reserved), 0).label("reserved"),
        func.count().label("skus"),
    )
    return conn.execute(query).mappings().one()


# ---------------------------------------------------------------- search
def _filter_clauses(filters: SearchFilters) -> list[Any]:
    clauses: list[Any] = []
    if filters.category_key is not None:
        clauses.append(skus.c.category_key == filters.category_key)
    if filters.min_price is not None:
        clauses.append(skus.c.price_minor >= filters.min_price)
    if filters.max_price is not None:
        clauses.append(skus.c.price_minor <= filters.max_price)
    if filters.in_stock_only:
        clauses.append(skus.c.stock_on_hand > skus.c.reserved)
    return clauses


def fts5_query(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression that treats every term as a literal (no operators survive)."""
    quoted = ['"' + term.replace('"', '""') + '"' for term in terms]
    quoted[-1] += "*"  # the last word may still be being typed
    return " ".join(quoted)


def search(
    conn: Connection, terms: Sequence[str], filters: SearchFilters, limit: int, offset: int
) -> Sequence[RowMapping]:
    """Ranked matches (best first), ``limit`` rows from ``offset``. No terms: browse by title."""
    where = _filter_clauses(filters)
    if not terms:
        query = select(*SKU_COLUMNS).where(and_(True, *where)).order_by(skus.c.title, skus.c.id)
        return conn.execute(query.limit(limit).offset(offset)).mappings().all()
    if conn.dialect.name == "sqlite":
        return _search_sqlite(conn, terms, where, limit, offset)
    return _search_postgresql(conn, terms, where, limit, offset)


def _search_sqlite(
    conn: Connection, terms: Sequence[str], where: list[Any], limit: int, offset: int
) -> Sequence[RowMapping]:
    # Column weights: title, sku, category, description. The title weighs most.
    ranked = text(
        "SELECT rowid AS sku_rowid, bm25(sku_fts, 10.0, 8.0, 4.0, 1.0) AS score "
        "FROM sku_fts WHERE sku_fts MATCH :match"
    ).columns(column("sku_rowid", Integer), column("score", Float)).subquery("hits")
    query = (
        select(*SKU_COLUMNS, ranked.c.score)
        .join_from(ranked, skus, skus.c.id == ranked.c.sku_rowid)
        .where(and_(True, *where))
        .order_by(ranked.c.score, skus.c.id)
        .limit(limit)
        .offset(offset)
    )
    return conn.execute(query, {"match": fts5_query(terms)}).mappings().all()


def _search_postgresql(
    conn: Connection, terms: Sequence[str], where: list[Any], limit: int, offset: int
) -> Sequence[RowMapping]:
    tsquery = func.to_tsquery("english", bindparam("tsq"))
    vector = literal_column("skus.search_vector")
    score = func.ts_rank_cd(vector, tsquery, 1).label("score")
    query = (
        select(*SKU_COLUMNS, score)
        .where(vector.op("@@")(tsquery), *where)
        .order_by(score.desc(), skus.c.id)
        .limit(limit)
        .offset(offset)
    )
    return conn.execute(query, {"tsq": pg_tsquery(terms)}).mappings().all()


def pg_tsquery(terms: Sequence[str]) -> str:
    """A to_tsquery expression of literal terms joined by AND; the last one as a prefix."""
    parts = ["'" + term.replace("'", "''").replace("\\", "\\\\") + "'" for term in terms]
    parts[-1] += ":*"
    return " & ".join(parts)
