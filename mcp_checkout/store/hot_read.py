"""Hot reads of ONE prebuilt statement (get_product, get_order, a page of a cached search ranking), straight on
the PostgreSQL driver. A list of ids is one parameter (:class:`IdList`, :class:`InIds`), so the statement is the
same for any number of them.

Through SQLAlchemy a one-statement read paid, on top of asyncpg, for a Connection and its execution
context, the statement's parameters put together again from the compiled statement (get_order's has 80
columns and literal LIMITs), a cursor emulation that rebuilds the result's description at every call, and a
Result with its Row objects (service get_product: ~635 k instructions a call, asyncpg alone fetching the
same SQL: ~125 k; callgrind, bench/README.md). A :class:`HotRead` is compiled once per engine; its statement
is prepared once per pooled connection (asyncpg's own cache skips statements over 15 KiB, get_order's among
them) and run with one round trip (Bind/Execute), outside any transaction: a statement is its own snapshot.
Rows come back as asyncpg Records, or as tuples when a column's type converts its values (UTC timestamps,
sealed text): the same values, by position, as ``Connection.execute(...).all()`` gives.

Each :class:`~mcp_checkout.store.db.Database` keeps one connection of its own for these reads (:class:`Pinned`,
detached from the pool: one connection more than the pool's), used straight from the event loop, one read at a
time; a read that finds it busy takes a pooled connection in the greenlet bridge (:func:`fetch`). Inside an MCP
call the pool's checkout and check-in and the bridge cost get_product ~0.12 ms (bench/README.md, third pass).

Only without a transaction-pooling PgBouncer in front (pooler="none"): behind one, a prepared statement may
not exist on the server connection the next call gets, and :meth:`Database.fetch` reads as before, in a
transaction. A statement prepared before a schema change that alters its result is prepared again and run
once more (as asyncpg's own statement cache does). Errors come back as SQLAlchemy's :class:`DBAPIError`
(the driver's exception kept as ``orig``), and a connection the driver found closed is invalidated, as on
SQLAlchemy's own path. The engine's ``before_cursor_execute`` listeners hear the statement (with no
Connection or cursor: statement counters only look at the SQL).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from asyncpg.exceptions import InvalidCachedStatementError, OutdatedSchemaCacheError
from sqlalchemy import BigInteger, Boolean, ColumnElement, CompoundSelect, Dialect, Engine, Select, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.type_api import TypeEngine
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import await_only

_PREPARED = "mcp_checkout_hot_reads"  # pooled connection's info: (driver connection, {HotRead: _Prepared})
Processor = Callable[[Any], Any]
_STALE_STATEMENT = (InvalidCachedStatementError, OutdatedSchemaCacheError)


class HotRead:
    """A SELECT of one statement, built once at import, and the names of the parameters it is called with
    (:meth:`Database.fetch` takes their values in this order)."""

    __slots__ = ("names", "statement")

    def __init__(self, statement: Select[Any] | CompoundSelect[Any], *names: str) -> None:
        self.statement = statement
        self.names = names


class IdList(TypeDecorator[list[int]]):
    """Integer ids bound as ONE parameter, so a statement stays the same for any number of them: a ``bigint[]``
    on PostgreSQL, JSON text on SQLite (read there with ``json_each``). Use it with :class:`InIds`."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(BigInteger()))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: list[int] | None, dialect: Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value
        return json.dumps(value)


class InIds(ColumnElement[bool]):
    """``column`` is one of the ids bound to ``ids`` (a parameter of type :class:`IdList`)."""

    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # a predicate: no "= 1" after it on SQLite
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's own declaration, read per class)
        ("column", InternalTraversal.dp_clauseelement),
        ("ids", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[int], ids: ColumnElement[list[int]]) -> None:
        self.column = column
        self.ids = ids


@compiles(InIds)
def _in_ids_in_json(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.ids, **kw)
    return f"{column} IN (SELECT value FROM json_each({ids}))"  # noqa: S608 (compiled SQL: a bound parameter)


@compiles(InIds, "postgresql")
def _in_ids_any(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} = ANY({compiler.process(element.ids, **kw)})"


@dataclass(frozen=True, slots=True)
class Compiled:
    """A :class:`HotRead` compiled for one engine: its SQL and how to fill each positional parameter."""

    sql: str
    slots: tuple[tuple[int, Any, Processor | None], ...]  # (index in the caller's values or -1, fixed value, bind)
    sqlite_results: tuple[tuple[int, Processor], ...] = ()  # SQLite: (column, result processor) that convert

    def arguments(self, values: Sequence[Any]) -> list[Any]:
        arguments = []
        for index, fixed, bind in self.slots:
            value = values[index] if index >= 0 else fixed
            arguments.append(bind(value) if bind is not None else value)
        return arguments


def compile_for(read: HotRead, engine: Engine) -> Compiled:
    dialect = engine.dialect
    compiled = read.statement.compile(dialect=dialect)
    positions = compiled.positiontup or []
    fixed = compiled.construct_params(dict.fromkeys(read.names))
    binds = {name: bind for bind, name in compiled.bind_names.items()}  # by the name the SQL renders
    unknown = {name for name in read.names if name not in positions}
    if unknown:
        raise ValueError(f"HotRead names parameters its statement does not have: {sorted(unknown)}")
    slots = tuple(
        (
            read.names.index(name) if name in read.names else -1,
            fixed[name],
            dialect.type_descriptor(binds[name].type).bind_processor(dialect),
        )
        for name in positions
    )
    sqlite_results: list[tuple[int, Processor]] = []
    if dialect.name == "sqlite":
        for index, column in enumerate(read.statement.selected_columns):
            processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if processor is not None:
                sqlite_results.append((index, processor))
    return Compiled(compiled.string, slots, tuple(sqlite_results))


@dataclass(frozen=True, slots=True)
class _Prepared:
    statement: Any  # asyncpg.prepared_stmt.PreparedStatement
    # (column, result processor) of the columns that convert: of values only (the processor gives NULL for
    # NULL, so a NULL is left as it is: most of a UNION ALL's columns in most rows), or of every value.
    value_processors: tuple[tuple[int, Processor], ...]
    processors: tuple[tuple[int, Processor], ...]


def _prepared(read: HotRead, engine: Engine, statement: Any) -> _Prepared:
    dialect = engine.dialect
    value_processors: list[tuple[int, Processor]] = []
    processors: list[tuple[int, Processor]] = []
    columns = zip(read.statement.selected_columns, statement.get_attributes(), strict=True)
    for index, (column, attribute) in enumerate(columns):
        processor = dialect.type_descriptor(column.type).result_processor(dialect, attribute.type.oid)
        if processor is None:
            continue
        # SQLAlchemy hands a NULL to the processor like any value; what it makes of one is asked once, here.
        (value_processors if processor(None) is None else processors).append((index, processor))
    return _Prepared(statement, tuple(value_processors), tuple(processors))


def fetch(engine: Engine, read: HotRead, compiled: Compiled, values: Sequence[Any]) -> Sequence[Sequence[Any]]:
    """Run ``read`` on a pooled connection, in SQLAlchemy's greenlet bridge (``greenlet_spawn``); its rows."""
    pooled = engine.raw_connection()
    try:
        info = pooled.info  # cleared by the pool whenever it replaces the DBAPI connection
        cached = info.get(_PREPARED)
        if cached is None:
            cached = info[_PREPARED] = (pooled.driver_connection, {})
        driver: Any = cached[0]
        prepared_reads: dict[HotRead, _Prepared] = cached[1]
        arguments = _heard(engine, compiled, values)
        try:
            prepared, records = await_only(_fetched(driver, prepared_reads, engine, read, compiled, arguments))
        except Exception as exc:
            prepared_reads.pop(read, None)  # prepared again by the next call
            broken = bool(driver.is_closed())
            if broken:
                pooled.invalidate(exc)
            if isinstance(exc, OSError):
                raise
            raise DBAPIError(compiled.sql, None, exc, connection_invalidated=broken) from exc
    finally:
        pooled.close()
    return _rows(records, prepared.value_processors, prepared.processors)


def _rows(
    records: list[Any],
    value_processors: tuple[tuple[int, Processor], ...],
    processors: tuple[tuple[int, Processor], ...],
) -> Sequence[Sequence[Any]]:
    """``records`` with their converting columns converted: ``value_processors`` skip NULLs, ``processors``
    take every value."""
    if not value_processors and not processors:
        return records
    rows = []
    for record in records:
        row = list(record)
        for index, processor in value_processors:
            value = row[index]
            if value is not None:
                row[index] = processor(value)
        for index, processor in processors:
            row[index] = processor(row[index])
        rows.append(tuple(row))
    return rows


async def _fetched(
    driver: Any,
    prepared_reads: dict[HotRead, _Prepared],
    engine: Engine,
    read: HotRead,
    compiled: Compiled,
    arguments: list[Any],
) -> tuple[_Prepared, list[Any]]:
    """``read``'s records on ``driver``, its statement prepared once (``prepared_reads`` keeps it)."""
    for attempt in (1, 2):
        prepared = prepared_reads.get(read)
        if prepared is None:
            prepared = prepared_reads[read] = _prepared(read, engine, await driver.prepare(compiled.sql))
        try:
            return prepared, await prepared.statement.fetch(*arguments)
        except _STALE_STATEMENT:  # a schema change since it was prepared: prepare it again, once
            prepared_reads.pop(read, None)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _heard(engine: Engine, compiled: Compiled, values: Sequence[Any]) -> list[Any]:
    """The statement's arguments, after its ``before_cursor_execute`` listeners (statement counters) heard it."""
    arguments = compiled.arguments(values)
    for listener in engine.dispatch.before_cursor_execute:
        listener(None, None, compiled.sql, arguments, None, False)
    return arguments


class Pinned:
    """One connection taken out of the pool for good (detached) on which hot reads run straight from the event
    loop: no pool checkout and check-in, no greenlet bridge. One read at a time (``busy``); a read that finds it
    busy takes the pooled path (:func:`fetch`)."""

    __slots__ = ("busy", "driver", "pooled", "prepared")

    def __init__(self, pooled: Any, driver: Any) -> None:
        self.pooled = pooled
        self.driver = driver
        self.prepared: dict[HotRead, _Prepared] = {}
        self.busy = False


def pin(engine: Engine) -> Pinned:
    """A new connection for :class:`Pinned`, detached from the pool (closed, not returned, when it is closed);
    in the greenlet bridge."""
    pooled = engine.raw_connection()
    driver = pooled.driver_connection  # asked before detaching: the pool's record of it goes with detach()
    pooled.detach()
    return Pinned(pooled, driver)


async def fetch_pinned(
    pinned: Pinned, engine: Engine, read: HotRead, compiled: Compiled, values: Sequence[Any]
) -> Sequence[Sequence[Any]]:
    """Run ``read`` on ``pinned`` (the caller marked it busy); its rows, as :func:`fetch` gives them. A driver
    error comes back as :class:`DBAPIError`; if it closed the connection, ``pinned`` must be dropped."""
    arguments = _heard(engine, compiled, values)
    try:
        prepared, records = await _fetched(pinned.driver, pinned.prepared, engine, read, compiled, arguments)
    except Exception as exc:
        pinned.prepared.pop(read, None)
        if isinstance(exc, OSError):
            raise
        raise DBAPIError(compiled.sql, None, exc, connection_invalidated=bool(pinned.driver.is_closed())) from exc
    return _rows(records, prepared.value_processors, prepared.processors)


def fetch_sqlite(engine: Engine, read: HotRead, compiled: Compiled, values: Sequence[Any]) -> Sequence[Sequence[Any]]:
    """Run ``read`` on a pooled SQLite connection, outside any transaction (pysqlite leaves BEGIN to us, so the
    SELECT is its own snapshot), on the calling thread: a few indexed look-ups. The driver's rows with the
    statement's result processors applied: the same values, by position, as ``Connection.execute(...).all()``.
    Driver errors come back as SQLAlchemy's :class:`DBAPIError` (a busy database is retried by the caller)."""
    arguments = _heard(engine, compiled, values)
    pooled = engine.raw_connection()
    try:
        driver: Any = pooled.driver_connection
        records = driver.execute(compiled.sql, arguments).fetchall()
    except sqlite3.Error as exc:
        raise DBAPIError.instance(compiled.sql, arguments, exc, sqlite3.Error) from exc
    finally:
        pooled.close()
    return _rows(records, (), compiled.sqlite_results)
