"""Lean statements: the few statements of the hot write path (create_order) run straight on the driver.

A :class:`Lean` statement is a Core statement built once and compiled once per dialect; running it hands the
SQL string and a tuple of parameters to the driver (the sqlite3 connection; on PostgreSQL the asyncpg
connection, through SQLAlchemy's greenlet bridge) and returns the driver's rows as plain tuples. It skips what
``Connection.execute`` does around every statement (the compiled-cache look-up, an execution context,
parameter dictionaries, a ``CursorResult`` and ``Row`` objects: 20-40 µs a statement against ~2 µs for
sqlite3 alone) and keeps what matters:

- the same SQL and the same type processing as ``Connection.execute`` (bind processors such as sealing and
  UTC datetimes, result processors such as SQLite's booleans and datetimes), both taken from the compiled
  statement;
- the connection's transaction: a statement on a connection without one begins it first, as SQLAlchemy's
  autobegin would, so ``commit`` and ``rollback`` cover it; on PostgreSQL asyncpg's transaction is started
  (BEGIN) before the first statement, as SQLAlchemy's adapter does;
- errors as SQLAlchemy raises them (``IntegrityError``, ``OperationalError``, a dropped connection
  invalidated), so :class:`~mcp_checkout.store.db.Database` retries and reports them as before;
- ``before_cursor_execute`` listeners (statement counters in tests and benchmarks) still hear every statement.

Behind PgBouncer (``pooler="pgbouncer"``) the asyncpg connection has no statement cache, so asyncpg prepares
every statement unnamed, inside the transaction: no named prepared statement reaches the pooler.

Use it for write-path statements run many times a second; anything else reads better as plain Core.
A statement whose SQL differs by backend takes a builder: ``Lean(lambda dialect: ...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.util import await_

Processor = Callable[[Any], Any]
Builder = Callable[[str], Executable]
_GIVEN: Any = object()  # a bind parameter whose value the caller passes


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    binds: tuple[tuple[str, Processor | None, Any], ...]  # positional: (name, processor, constant or _GIVEN)
    results: tuple[tuple[int, Processor], ...]  # result columns that need processing
    postgresql: bool


class Lean:
    """One statement of the write path, compiled once per dialect and run on the driver (see module doc)."""

    __slots__ = ("_build", "_compiled", "name")

    def __init__(self, statement: Executable | Builder, name: str = "") -> None:
        self._build = statement
        self._compiled: dict[Dialect, _Compiled] = {}
        self.name = name

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        """Run the statement with ``params`` (by bind name) in ``conn``'s transaction; its rows (RETURNING's
        for an INSERT or UPDATE) as tuples, in the order of the statement's columns."""
        dialect = conn.dialect
        compiled = self._compiled.get(dialect) or self._compile(dialect)
        values = tuple(
            [  # a list first: cheaper than a generator
                (params[name] if process is None else process(params[name])) if fixed is _GIVEN else fixed
                for name, process, fixed in compiled.binds
            ]
        )
        if not conn.in_transaction():
            conn.begin()  # as autobegin would: commit() and rollback() then cover this statement
        fairy = conn.connection
        if conn.dispatch.before_cursor_execute:
            for listener in conn.dispatch.before_cursor_execute:
                listener(conn, None, compiled.sql, values, None, False)
        try:
            if compiled.postgresql:
                rows = _pg_fetch(fairy.dbapi_connection, compiled.sql, values)
            else:
                rows = fairy.driver_connection.execute(compiled.sql, values).fetchall()  # type: ignore[union-attr]
        except Exception as exc:
            if isinstance(exc, dialect.loaded_dbapi.Error):
                # Wrapped and raised as Connection.execute would (IntegrityError, OperationalError, disconnects).
                conn._handle_dbapi_exception(exc, compiled.sql, values, None, None)
            raise
        if compiled.results:
            return [_processed(row, compiled.results) for row in rows]
        return rows

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Sequence[Any] | None:
        rows = self.rows(conn, params)
        return rows[0] if rows else None

    def _compile(self, dialect: Dialect) -> _Compiled:
        statement = self._build(dialect.name) if callable(self._build) else self._build
        compiled = cast(SQLCompiler, cast(ClauseElement, statement).compile(dialect=dialect))
        names = compiled.positiontup
        if names is None:
            raise TypeError(f"{dialect.name}: Lean needs a positional paramstyle")
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise TypeError("Lean statements take plain bind parameters (no expanding IN, no literal_execute)")
        processors = compiled._bind_processors  # the processors execute() applies (private, stable in 2.x)
        binds: list[tuple[str, Processor | None, Any]] = []
        for name in names:
            process = cast(Processor | None, processors.get(name))
            bind = compiled.binds[name]
            if bind.required:  # a value the caller passes
                binds.append((name, process, _GIVEN))
            else:  # a constant of the statement (e.g. a column's Python default), processed once
                binds.append((name, None, bind.value if process is None else process(bind.value)))
        results: list[tuple[int, Processor]] = []
        for index, column in enumerate(compiled._result_columns or ()):
            process = column.type._cached_result_processor(dialect, None)
            if process is not None:
                results.append((index, process))
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise TypeError(f"{self.name}: give every column with a Python-side default a value")
        built = _Compiled(compiled.string, tuple(binds), tuple(results), dialect.name == "postgresql")
        self._compiled[dialect] = built
        return built


def _processed(row: Sequence[Any], processors: tuple[tuple[int, Processor], ...]) -> tuple[Any, ...]:
    values = list(row)
    for index, process in processors:
        values[index] = process(values[index])
    return tuple(values)


def _pg_fetch(adapted: Any, sql: str, values: tuple[Any, ...]) -> Sequence[Sequence[Any]]:
    """Run one statement on the asyncpg connection behind SQLAlchemy's adapter, in the adapter's transaction
    (started here, as the adapter's cursor would: asyncpg's ``transaction()``), from the greenlet the
    transaction runs in. Driver errors come back as the adapter's DB-API errors."""
    try:
        if adapted._transaction is None and adapted.isolation_level != "autocommit":
            await_(adapted._start_transaction())
        return cast(Sequence[Sequence[Any]], await_(adapted._connection.fetch(sql, *values)))
    except Exception as error:
        if isinstance(error, adapted.dbapi.Error):
            raise
        adapted._handle_exception(error)  # raises the translated error
        raise


class LeanFamily:
    """Lean statements that differ by a count (the lines of an order): ``family.get(n)`` builds the statement
    for ``n`` once (``build(n)``) and keeps it."""

    __slots__ = ("_build", "_limit", "_members")

    def __init__(self, build: Callable[[int], Executable | Builder], limit: int) -> None:
        self._build = build
        self._members: dict[int, Lean] = {}
        self._limit = limit

    def get(self, count: int) -> Lean:
        member = self._members.get(count)
        if member is None:
            if not 1 <= count <= self._limit:
                raise ValueError(f"count {count} outside 1..{self._limit}")
            member = self._members.setdefault(count, Lean(self._build(count)))
        return member


def bound_values(table: Table, fields: Iterable[str], suffix: str = "", **fixed: Any) -> dict[str, Any]:
    """The values of an INSERT into ``table`` for a lean statement: each of ``fields`` a bind parameter named
    ``field + suffix`` (typed as its column), ``fixed`` as given (e.g. another bind parameter), and every other
    column with a Python-side default at that default (execute() would add it; a lean statement cannot)."""
    values: dict[str, Any] = {name: bindparam(name + suffix, type_=table.c[name].type) for name in fields}
    values.update(fixed)
    for column in table.c:
        default = column.default
        if column.name not in values and default is not None and default.is_scalar:
            values[column.name] = default.arg  # type: ignore[attr-defined]
    return values
