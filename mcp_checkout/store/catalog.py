"""Catalog SQL: products, SKUs, stock, and full-text search (FTS5 on SQLite, tsvector on PostgreSQL).

The statements of the hot paths (look-ups, stock updates, the search pages) are built once, at import,
with bind parameters: building a SQLAlchemy Core statement costs ~100-150 us of Python per call, two to
three times what executing a prebuilt one costs (measured with bench/run.py's machine).

Search ranking. Ranking every match with bm25 (SQLite) or ts_rank_cd (PostgreSQL) is linear in the
number of matches: ~10 ms for a term in 10% of a 100,000-SKU catalog. So the ranked ids of a query
are computed once, to :data:`RANK_DEPTH`, and a query with more matches than that (a broad one) keeps
its ranked ids in a :class:`RankingCache` for as long as the catalog's searchable text is unchanged
(``sku_fts_version``, moved by triggers in the same transaction as any text change; migration 0003).
A page is then one indexed fetch of its rows, whose price and stock are always read live; filters are
applied to the ranked ids in rank order. Results are exactly what the full ranking gives, in the same
order (ties broken by SKU id); only a page beyond the cached depth, or filters too selective to fill
a page from it, fall back to ranking all matches.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Float,
    Integer,
    RowMapping,
    Select,
    String,
    and_,
    bindparam,
    column,
    func,
    literal_column,
    select,
    text,
    union_all,
    update,
)

from mcp_checkout.domain import MAX_CART_LINES
from mcp_checkout.store.hot_read import HotRead, IdList, InIds
from mcp_checkout.store.lean import LeanFamily
from mcp_checkout.store.models import Timestamp, products, skus
from mcp_checkout.store.store_profile import CONFIG_STAMP, stamp_of

if TYPE_CHECKING:
    from mcp_checkout.store.db import Database


class SkuRow(NamedTuple):
    """A SKU's columns (:data:`SKU_COLUMNS`, in this order), by name."""

    id: int
    sku: str
    product_id: str
    name: str
    title: str
    category: str
    price_minor: int
    currency: str
    stock_on_hand: int
    reserved: int
    image_url: str
    requires_shipping: bool
    tax_category: str
    weight_grams: int | None


class ProductRow(NamedTuple):
    """A product's columns (:data:`PRODUCT_COLUMNS`, in this order), by name."""

    id: str
    external_id: str | None
    name: str
    description: str
    category: str
    description_html: str


SKU_COLUMNS = tuple(skus.c[name] for name in SkuRow._fields)
PRODUCT_COLUMNS = tuple(products.c[name] for name in ProductRow._fields)

RANK_DEPTH = 500
"""How many ranked ids of a query are computed in one go and, for broad queries, cached."""


@dataclass(frozen=True, slots=True)
class SearchFilters:
    category_key: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    in_stock_only: bool = False

    @property
    def empty(self) -> bool:
        return (
            self.category_key is None and self.min_price is None and self.max_price is None and not self.in_stock_only
        )


# ---------------------------------------------------------------- look-ups
_PRODUCT = select(products).where(products.c.id == bindparam("product_id"))
_PRODUCT_BY_EXTERNAL_ID = select(products).where(products.c.external_id == bindparam("external_id"))
_SKUS_OF_PRODUCT = select(*SKU_COLUMNS).where(skus.c.product_id == bindparam("product_id")).order_by(skus.c.id)
_LISTED = skus.c.archived_at.is_(None)
"""Archived SKUs (deleted by the merchant but kept for their orders) are neither found nor sold."""
_SKU = select(*SKU_COLUMNS).where(skus.c.sku == bindparam("code"), _LISTED)
_SKUS = select(*SKU_COLUMNS).where(skus.c.sku.in_(bindparam("codes", expanding=True)), _LISTED)
# An expanding IN is compiled again on every execution; orders and carts look up a few SKUs at a time, so
# up to this many codes use a statement built once per count, with one plain parameter per code.
_FIXED_IN_MAX = 8
_SKUS_BY_COUNT = {
    count: select(*SKU_COLUMNS).where(skus.c.sku.in_([bindparam(f"c{i}") for i in range(count)]), _LISTED)
    for count in range(2, _FIXED_IN_MAX + 1)
}

_by_code = skus.alias("by_code")
_PRODUCT_SKU_LABELS = tuple(f"sku_{col.name}" for col in SKU_COLUMNS)
_PRODUCT_WITH_SKUS = (
    select(*PRODUCT_COLUMNS, *(col.label(label) for col, label in zip(SKU_COLUMNS, _PRODUCT_SKU_LABELS, strict=True)))
    .select_from(products.outerjoin(skus, and_(skus.c.product_id == products.c.id, _LISTED)))
    .order_by(skus.c.id)
)
_PRODUCT_WITH_SKUS_BY_ID = _PRODUCT_WITH_SKUS.where(products.c.id == bindparam("product_id"))
_PRODUCT_WITH_SKUS_BY_CODE = _PRODUCT_WITH_SKUS.where(
    products.c.id
    == select(_by_code.c.product_id)
    .where(_by_code.c.sku == bindparam("code"), _by_code.c.archived_at.is_(None))
    .scalar_subquery()
)


@dataclass(frozen=True, slots=True)
class ProductWithSkus:
    product: ProductRow
    skus: list[SkuRow]


def get_product(conn: Connection, product_id: str) -> RowMapping | None:
    return conn.execute(_PRODUCT, {"product_id": product_id}).mappings().first()


def get_product_by_external_id(conn: Connection, external_id: str) -> RowMapping | None:
    return conn.execute(_PRODUCT_BY_EXTERNAL_ID, {"external_id": external_id}).mappings().first()


def skus_of_product(conn: Connection, product_id: str) -> Sequence[RowMapping]:
    return conn.execute(_SKUS_OF_PRODUCT, {"product_id": product_id}).mappings().all()


PRODUCT_WITH_SKUS_BY_ID = HotRead(_PRODUCT_WITH_SKUS_BY_ID, "product_id")
PRODUCT_WITH_SKUS_BY_CODE = HotRead(_PRODUCT_WITH_SKUS_BY_CODE, "code")
"""A product and all its listed SKUs (by id), found by its id or by one of its SKU codes, in one statement:
``Database.fetch(PRODUCT_WITH_SKUS_BY_CODE, code)``; :func:`product_of_rows` reads the rows."""


def product_with_skus(
    conn: Connection, *, product_id: str | None = None, sku: str | None = None
) -> ProductWithSkus | None:
    """A product and all its SKUs (by id order) in one statement, found by its id or by one of its SKU codes."""
    if product_id is not None:
        result = conn.execute(_PRODUCT_WITH_SKUS_BY_ID, {"product_id": product_id})
    else:
        result = conn.execute(_PRODUCT_WITH_SKUS_BY_CODE, {"code": sku})
    return product_of_rows(result.all())


def product_of_rows(rows: Sequence[Sequence[Any]]) -> ProductWithSkus | None:
    """The product and its SKUs from the rows of :data:`PRODUCT_WITH_SKUS_BY_ID` / ``_BY_CODE``."""
    if not rows:
        return None
    width = len(PRODUCT_COLUMNS)
    make_sku = SkuRow._make
    variants = [make_sku(row[width:]) for row in rows if row[width] is not None]
    return ProductWithSkus(ProductRow._make(rows[0][:width]), variants)


def get_skus(conn: Connection, codes: Iterable[str]) -> dict[str, RowMapping]:
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    if len(wanted) == 1:
        rows = conn.execute(_SKU, {"code": wanted[0]}).mappings().all()
    else:
        fixed = _SKUS_BY_COUNT.get(len(wanted))
        if fixed is not None:
            rows = conn.execute(fixed, {f"c{i}": code for i, code in enumerate(wanted)}).mappings().all()
        else:
            rows = conn.execute(_SKUS, {"codes": wanted}).mappings().all()
    return {row["sku"]: row for row in rows}


# ---------------------------------------------------------------- stock
_SKU_CODE: BindParameter[str] = bindparam("b_sku")
_QUANTITY: BindParameter[int] = bindparam("b_qty", type_=Integer)
_NOW: BindParameter[datetime] = bindparam("b_now", type_=Timestamp)
ORDER_LINES_MAX = MAX_CART_LINES
"""Lines an order's statements are built for; a longer one (not from a tool) goes in parts."""
_SKU_NAMES = tuple(col.name for col in SKU_COLUMNS)
# The SKUs of a new order with the configuration stamp (store_profile.CONFIG_STAMP), locked on PostgreSQL in
# SKU order: the order's stock update then waits for nobody, and two orders never lock two rows in opposite
# orders. One statement per line count (a lean statement: run on the driver).
_SKUS_TO_ORDER = LeanFamily(
    lambda count: (
        select(*SKU_COLUMNS, CONFIG_STAMP)
        .where(skus.c.sku.in_([bindparam(f"c{i}", type_=String) for i in range(count)]), _LISTED)
        .order_by(skus.c.sku)
        .with_for_update(of=skus)
    ),
    ORDER_LINES_MAX,
)


def _wanted(count: int) -> Any:
    return union_all(
        *(
            select(bindparam(f"s{i}", type_=String).label("sku"), bindparam(f"q{i}", type_=Integer).label("qty"))
            for i in range(count)
        )
    ).subquery("wanted")


def _reserve(count: int) -> Any:
    wanted = _wanted(count)
    return (
        update(skus)
        .where(skus.c.sku == wanted.c.sku, skus.c.stock_on_hand - skus.c.reserved >= wanted.c.qty, _LISTED)
        .values(reserved=skus.c.reserved + wanted.c.qty, updated_at=_NOW)
        .returning(skus.c.sku)
    )


_RESERVE = LeanFamily(_reserve, ORDER_LINES_MAX)
_RELEASE = (
    update(skus)
    .where(skus.c.sku == _SKU_CODE, skus.c.reserved >= _QUANTITY)
    .values(reserved=skus.c.reserved - _QUANTITY, updated_at=_NOW)
)
_COMMIT = (
    update(skus)
    .where(skus.c.sku == _SKU_CODE, skus.c.reserved >= _QUANTITY)
    .values(reserved=skus.c.reserved - _QUANTITY, stock_on_hand=skus.c.stock_on_hand - _QUANTITY, updated_at=_NOW)
)

_RESTOCK = (
    update(skus).where(skus.c.sku == _SKU_CODE).values(stock_on_hand=skus.c.stock_on_hand + _QUANTITY, updated_at=_NOW)
)


def skus_to_order(conn: Connection, codes: Sequence[str]) -> tuple[dict[str, dict[str, Any]], int | None]:
    """The listed SKUs among ``codes`` (distinct) by code, locked for this transaction on PostgreSQL (in SKU
    order, see :func:`reserve`), and the configuration stamp read with them (None if no SKU matched)."""
    if not 1 <= len(codes) <= ORDER_LINES_MAX:
        return {code: dict(row) for code, row in get_skus(conn, codes).items()}, None
    rows = _SKUS_TO_ORDER.get(len(codes)).rows(conn, {f"c{i}": code for i, code in enumerate(codes)})
    found = {row[1]: dict(zip(_SKU_NAMES, row, strict=False)) for row in rows}
    return found, (stamp_of({"config_stamp": rows[0][-1]}) if rows else None)


def reserve(conn: Connection, lines: Sequence[tuple[str, int]], now: datetime) -> set[str]:
    """Reserve each (sku, quantity) whose SKU still has that much available, in ONE conditional update; the
    SKUs reserved (a line left out changed nothing). On PostgreSQL the rows are locked in the plan's order:
    several lines at once only on rows this transaction locked already (:func:`skus_to_order`), else one
    line per call in SKU order, so two orders never wait on each other's rows in opposite orders."""
    if not lines:
        return set()
    if len(lines) > ORDER_LINES_MAX:
        head, tail = lines[:ORDER_LINES_MAX], lines[ORDER_LINES_MAX:]
        return reserve(conn, head, now) | reserve(conn, tail, now)
    params: dict[str, Any] = {"b_now": now}
    for i, (sku, quantity) in enumerate(lines):
        params[f"s{i}"], params[f"q{i}"] = sku, quantity
    return {row[0] for row in _RESERVE.get(len(lines)).rows(conn, params)}


def reserve_stock(conn: Connection, sku: str, quantity: int, now: datetime) -> bool:
    """Reserve ``quantity`` if that much is still available; False (and no change) otherwise."""
    return bool(reserve(conn, [(sku, quantity)], now))


def release_stock(conn: Connection, lines: Mapping[str, int], now: datetime) -> None:
    for sku, quantity in lines.items():
        conn.execute(_RELEASE, {"b_sku": sku, "b_qty": quantity, "b_now": now})


def commit_stock(conn: Connection, lines: Mapping[str, int], now: datetime) -> None:
    """Turn a reservation into a sale: the units leave stock on hand and the reservation."""
    for sku, quantity in lines.items():
        conn.execute(_COMMIT, {"b_sku": sku, "b_qty": quantity, "b_now": now})


def restock(conn: Connection, lines: Mapping[str, int], now: datetime) -> None:
    """Put sold units back on hand (an order canceled after payment, before it shipped)."""
    for sku, quantity in lines.items():
        conn.execute(_RESTOCK, {"b_sku": sku, "b_qty": quantity, "b_now": now})


def stock_totals(conn: Connection) -> RowMapping:
    """Units on hand and reserved over all SKUs, how many SKUs there are and how many can still be ordered."""
    query = select(
        func.coalesce(func.sum(skus.c.stock_on_hand), 0).label("on_hand"),
        func.coalesce(func.sum(skus.c.reserved), 0).label("reserved"),
        func.count().label("skus"),
        func.count().filter(skus.c.stock_on_hand > skus.c.reserved).label("in_stock"),
    ).where(_LISTED)
    return conn.execute(query).mappings().one()


# ---------------------------------------------------------------- search
def _filter_clauses(filters: SearchFilters) -> list[Any]:
    clauses: list[Any] = [_LISTED]
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


def pg_tsquery(terms: Sequence[str]) -> str:
    """A to_tsquery expression of literal terms joined by AND; the last one as a prefix."""
    parts = ["'" + term.replace("'", "''").replace("\\", "\\\\") + "'" for term in terms]
    parts[-1] += ":*"
    return " & ".join(parts)


class RankingCache:
    """Ranked SKU ids of queries, each valid for one version of the catalog's searchable text.

    One per database per process (``CatalogService`` owns one). Entries are least-recently-used
    evicted; an entry is only ever used after checking, in the same statement that reads the page,
    that the text version it was ranked at is still current. Thread-safe.
    """

    def __init__(self, max_entries: int = 256) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[str, ...], Ranking] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, terms: Sequence[str]) -> Ranking | None:
        key = tuple(terms)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, terms: Sequence[str], ranking: Ranking) -> None:
        key = tuple(terms)
        with self._lock:
            self._entries[key] = ranking
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def covers(self, terms: Sequence[str], filters: SearchFilters, end: int) -> bool:
        """Whether a page ending at ``end`` can come from the cached ranking (if it is still current):
        one bounded fetch, no ranking. Filters on a partial ranking may need every match ranked."""
        entry = self._entries.get(tuple(terms))
        return entry is not None and (entry.complete or (filters.empty and end <= len(entry.ids)))

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True, slots=True)
class Ranking:
    """The best ``RANK_DEPTH`` ids of a query at one text version; ``complete``: they are all its matches."""

    version: int
    ids: tuple[int, ...]
    complete: bool


_VERSION = select(literal_column("text_version")).select_from(text("sku_fts_version")).scalar_subquery()
_SQLITE_RANKED_IDS = text(
    "SELECT rowid, (SELECT text_version FROM sku_fts_version) AS text_version FROM sku_fts "
    "WHERE sku_fts MATCH :match ORDER BY bm25(sku_fts, 10.0, 8.0, 4.0, 1.0), rowid LIMIT :depth"
)
_PG_RANKED_IDS = text(
    "SELECT id, (SELECT text_version FROM sku_fts_version) AS text_version FROM skus "
    "WHERE search_vector @@ to_tsquery('english', :tsq) "
    "ORDER BY ts_rank_cd(search_vector, to_tsquery('english', :tsq), 1) DESC, id LIMIT :depth"
)
_IN_PAGE = InIds(skus.c.id, bindparam("ids", type_=IdList()))
ROWS_BY_IDS = HotRead(select(*SKU_COLUMNS, _VERSION.label("text_version")).where(_IN_PAGE, _LISTED), "ids")
"""Listed SKUs by id (in any order) and the catalog's text version: a ranked page's rows, for any page size."""
_PAGE_NAMES = (*SkuRow._fields, "text_version")
SearchRow = Mapping[Any, Any]  # a SKU's columns by name (a RowMapping or, from a cached ranking, a dict)
_filtered_rows_by_id: dict[tuple[bool, bool, bool, bool], Select[*tuple[Any, ...]]] = {}


def _rows_by_id_filtered(filters: SearchFilters) -> tuple[Select[*tuple[Any, ...]], dict[str, Any]]:
    """The page fetch with these filters' clauses (built once per combination of filters)."""
    shape = (filters.category_key is not None, filters.min_price is not None, filters.max_price is not None,
             filters.in_stock_only)  # fmt: skip
    statement = _filtered_rows_by_id.get(shape)
    if statement is None:
        clauses: list[Any] = [_IN_PAGE, _LISTED]
        if shape[0]:
            clauses.append(skus.c.category_key == bindparam("category_key"))
        if shape[1]:
            clauses.append(skus.c.price_minor >= bindparam("min_price", type_=Integer))
        if shape[2]:
            clauses.append(skus.c.price_minor <= bindparam("max_price", type_=Integer))
        if shape[3]:
            clauses.append(skus.c.stock_on_hand > skus.c.reserved)
        statement = select(*SKU_COLUMNS, _VERSION.label("text_version")).where(*clauses)
        _filtered_rows_by_id[shape] = statement
    params: dict[str, Any] = {}
    if filters.category_key is not None:
        params["category_key"] = filters.category_key
    if filters.min_price is not None:
        params["min_price"] = filters.min_price
    if filters.max_price is not None:
        params["max_price"] = filters.max_price
    return statement, params


def search(
    conn: Connection,
    terms: Sequence[str],
    filters: SearchFilters,
    limit: int,
    offset: int,
    *,
    cache: RankingCache | None = None,
) -> Sequence[SearchRow]:
    """Ranked matches (best first, ties by SKU id), ``limit`` rows from ``offset``. No terms: browse by title.

    With a ``cache`` the ranking of a broad query is reused while the catalog's text is unchanged
    (see the module docstring); the rows are the same either way.
    """
    if not terms:
        where = _filter_clauses(filters)
        query = select(*SKU_COLUMNS).where(and_(True, *where)).order_by(skus.c.title, skus.c.id)
        return conn.execute(query.limit(limit).offset(offset)).mappings().all()
    if cache is not None:
        page = _search_ranked(conn, terms, filters, limit, offset, cache)
        if page is not None:
            return page
    if conn.dialect.name == "sqlite":
        return _search_sqlite(conn, terms, _filter_clauses(filters), limit, offset)
    return _search_postgresql(conn, terms, _filter_clauses(filters), limit, offset)


def _ranked_ids(conn: Connection, terms: Sequence[str]) -> Ranking | None:
    """The best RANK_DEPTH ids and the text version, from one statement (one consistent snapshot);
    None when nothing matches."""
    if conn.dialect.name == "sqlite":
        result = conn.execute(_SQLITE_RANKED_IDS, {"match": fts5_query(terms), "depth": RANK_DEPTH})
    else:
        result = conn.execute(_PG_RANKED_IDS, {"tsq": pg_tsquery(terms), "depth": RANK_DEPTH})
    rows = result.all()
    if not rows:
        return None
    return Ranking(int(rows[0][1]), tuple(int(row[0]) for row in rows), complete=len(rows) < RANK_DEPTH)


async def cached_page(
    db: Database, terms: Sequence[str], limit: int, offset: int, cache: RankingCache
) -> list[SearchRow] | None:
    """The page :func:`search` gives without filters, from the cached ranking of ``terms`` in ONE prebuilt statement
    (:data:`ROWS_BY_IDS`, with the version check); None (then call :func:`search`) for no, a stale or a short one."""
    cached = cache.get(terms)
    window = cached.ids[offset : offset + limit] if cached is not None else ()
    if cached is None or not window:  # nothing cached, or no row to check its version against
        return None
    rows = await db.fetch(ROWS_BY_IDS, list(window))
    return _ranked_page(rows, window, cached.version, limit, cached.complete)


def _ranked_page(
    rows: Sequence[Sequence[Any]], window: tuple[int, ...], version: int | None, limit: int, complete: bool
) -> list[SearchRow] | None:
    """``rows`` of :data:`ROWS_BY_IDS` in the order of ``window``; None if ``version`` (of a cached ranking) is
    not the rows' own, or if the page falls short while the ranking is not ``complete``."""
    if version is not None and (not rows or rows[0][len(SkuRow._fields)] != version):
        return None
    by_id = {row[0]: row for row in rows}
    page: list[SearchRow] = [dict(zip(_PAGE_NAMES, by_id[i], strict=True)) for i in window if i in by_id]
    return page if complete or len(page) == limit else None


def _search_ranked(
    conn: Connection, terms: Sequence[str], filters: SearchFilters, limit: int, offset: int, cache: RankingCache
) -> list[SearchRow] | None:
    """The page from ranked ids (cached or fresh); None when they cannot fill it (then rank everything)."""
    cached = cache.get(terms)
    if cached is not None:
        page = _page(conn, cached.ids, cached.version, filters, limit, offset, complete=cached.complete)
        if page is not None:
            return page
    fresh = _ranked_ids(conn, terms)
    if fresh is None:
        return []
    cache.put(terms, fresh)
    return _page(conn, fresh.ids, None, filters, limit, offset, complete=fresh.complete)


def _page(
    conn: Connection,
    ids: tuple[int, ...],
    version: int | None,
    filters: SearchFilters,
    limit: int,
    offset: int,
    *,
    complete: bool,
) -> list[SearchRow] | None:
    """Rows ``offset``..``offset+limit`` of ``ids`` that pass ``filters``, in the order of ``ids``.

    ``version``: the text version a cached ``ids`` was ranked at, checked against the current one in
    the statement that reads the rows; None for ids ranked in this transaction. Returns None when the
    version moved on (stale ranking), or when ``ids`` run out before the page is full and they are
    not ``complete`` (there are more matches than were ranked): the caller then ranks afresh.
    """
    wanted = offset + limit
    verified = version is None
    if filters.empty:
        window = ids[offset:wanted]
        if not window:
            return [] if complete and verified else None
        return _ranked_page(conn.execute(ROWS_BY_IDS.statement, {"ids": list(window)}).all(), window, version, limit,
                            complete)  # fmt: skip
    statement, params = _rows_by_id_filtered(filters)
    passing: list[SearchRow] = []
    chunk = max(4 * wanted, 100)
    for start in range(0, len(ids), chunk):
        window = ids[start : start + chunk]
        rows = conn.execute(statement, {**params, "ids": list(window)}).mappings().all()
        if rows and not verified:
            if rows[0]["text_version"] != version:
                return None
            verified = True
        by_id = {row["id"]: row for row in rows}
        passing.extend(by_id[i] for i in window if i in by_id)
        if len(passing) >= wanted:
            return passing[offset:wanted]
    return passing[offset:wanted] if complete and verified else None


def _search_sqlite(
    conn: Connection, terms: Sequence[str], where: list[Any], limit: int, offset: int
) -> Sequence[RowMapping]:
    # Column weights: title, sku, category, description. The title weighs most. Without filters only
    # the page's hits are joined to skus; with filters every hit is (a filter may drop any of them).
    inner = (
        "SELECT rowid AS sku_rowid, bm25(sku_fts, 10.0, 8.0, 4.0, 1.0) AS score FROM sku_fts WHERE sku_fts MATCH :match"
    )
    if not where:
        inner += " ORDER BY score, rowid LIMIT :n"
    ranked = text(inner).columns(column("sku_rowid", Integer), column("score", Float)).subquery("hits")
    query = (
        select(*SKU_COLUMNS, ranked.c.score)
        .join_from(ranked, skus, skus.c.id == ranked.c.sku_rowid)
        .where(and_(True, *where))
        .order_by(ranked.c.score, skus.c.id)
        .limit(limit)
        .offset(offset)
    )
    params: dict[str, Any] = {"match": fts5_query(terms)}
    if not where:
        params["n"] = offset + limit
    return conn.execute(query, params).mappings().all()


def _search_postgresql(
    conn: Connection, terms: Sequence[str], where: list[Any], limit: int, offset: int
) -> Sequence[RowMapping]:
    tsquery = func.to_tsquery("english", bindparam("tsq"))
    vector: ColumnElement[Any] = literal_column("skus.search_vector")
    score = func.ts_rank_cd(vector, tsquery, 1).label("score")
    query = (
        select(*SKU_COLUMNS, score)
        .where(vector.op("@@")(tsquery), *where)
        .order_by(score.desc(), skus.c.id)
        .limit(limit)
        .offset(offset)
    )
    return conn.execute(query, {"tsq": pg_tsquery(terms)}).mappings().all()
