"""Engine factory and the transaction runner.

Repositories are plain synchronous SQLAlchemy Core code. A whole transaction runs in one go:
on SQLite in one worker thread (one thread hop per transaction instead of one per statement,
which is what caps aiosqlite near 400 order transactions/s); on PostgreSQL through asyncpg in one
greenlet (SQLAlchemy's bridge, the one ``AsyncConnection.run_sync`` uses; no threads). Services only ever see
:meth:`Database.write` and :meth:`Database.read`.

Every read sees ONE snapshot, however many statements it runs (a view such as get_order or the checkout
page is built from several queries, and must not mix two commits): on PostgreSQL a read is a
``REPEATABLE READ READ ONLY`` transaction (asyncpg starts it with one ``BEGIN ISOLATION LEVEL …``
statement; at READ COMMITTED each statement would take its own snapshot); on SQLite a read is a
deferred transaction, which reads one snapshot of the WAL. On SQLite a read marked ``quick`` (a few
indexed look-ups) runs on the calling thread: a WAL reader never waits for the write lock, and the
thread hop (two wake-ups and two GIL hand-overs, 0.1 ms on an idle machine, several times that on a
busy one) would cost more than the read itself.

A read of ONE statement (``one_statement=True``) needs no transaction for its snapshot: a statement
always sees one snapshot of its own. On PostgreSQL it runs in autocommit, one round trip to the server
instead of three (BEGIN, the statement, COMMIT): the two extra round trips, each a wake-up of the server
process and of ours, were most of what a read cost on top of the driver. A second statement in such a
read raises (:class:`OneStatementOnly`), so a view that grows a query cannot silently mix two commits.
Behind PgBouncer (``pooler="pgbouncer"``) it stays a transaction: asyncpg prepares and executes a
statement in two exchanges, which the pooler may send to two server connections unless a transaction
holds them together.

On PostgreSQL the isolation of a read (REPEATABLE READ READ ONLY, or autocommit) is set on the pooled
driver connection through the dialect and put back when the read ends, not with execution options on a
second engine: those re-run SQLAlchemy's connection-characteristics and event machinery on every
checkout and check-in, a quarter of an empty read's cost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sqlite3
import stat
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn

from mcp_checkout.errors import StorageBusy, StorageUnavailable
from mcp_checkout.store import hot_read
from mcp_checkout.store.busy_poll import BusyPoll
from mcp_checkout.store.hot_read import HotRead

log = logging.getLogger(__name__)

T = TypeVar("T")
Dialect = Literal["sqlite", "postgresql"]
_BUSY_ATTEMPTS = 4
_CHANGED = "mcp_checkout_changed"  # Connection.info key: what the running write transaction changed
CommitListener = Callable[[frozenset[str]], None]


def note_changed(conn: Connection, key: str) -> None:
    """Record that this write transaction changed ``key`` (an order id); once it commits, the
    database's commit listeners hear of it (see :meth:`Database.after_commit`)."""
    changed = conn.info.get(_CHANGED)
    if changed is not None:
        changed.add(key)


def dialect_insert(conn: Connection, table: Table) -> SqliteInsert | PgInsert:
    """An INSERT with this backend's ON CONFLICT support (both SQLite and PostgreSQL have it)."""
    return sqlite_insert(table) if conn.dialect.name == "sqlite" else pg_insert(table)


_INSERTS_OR_IGNORE: dict[tuple[str, str, tuple[str, ...]], SqliteInsert | PgInsert] = {}


def insert_or_ignore(conn: Connection, table: Table, index_elements: tuple[str, ...]) -> SqliteInsert | PgInsert:
    """``INSERT … ON CONFLICT (index_elements) DO NOTHING`` for this backend, built once per table: execute it
    with the row as parameters (its ``rowcount`` is 0 when the row was already there)."""
    key = (conn.dialect.name, table.name, index_elements)
    statement = _INSERTS_OR_IGNORE.get(key)
    if statement is None:
        statement = dialect_insert(conn, table).on_conflict_do_nothing(index_elements=list(index_elements))
        _INSERTS_OR_IGNORE[key] = statement
    return statement


def normalise_url(url: str) -> str:
    """Accept the URL spellings merchants paste and pick the drivers this store runs on."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ArgumentError(f"unsupported database backend {backend!r}: use sqlite:/// or postgresql+asyncpg://")


# Behind a transaction-pooling PgBouncer each transaction may run on another server connection, where
# a statement prepared on the last one does not exist (asyncpg: "prepared statement ... already exists" /
# "does not exist"). So no statement caches, and every prepared statement gets a name of its own.
_POOLER_CONNECT_ARGS: dict[str, Any] = {
    "statement_cache_size": 0,
    "prepared_statement_name_func": lambda: f"__mcpco_{uuid.uuid4().hex}__",
}


def _behind_pooler(url: str) -> str:
    """The URL with SQLAlchemy's own asyncpg prepared-statement cache off."""
    parsed = make_url(url)
    return parsed.update_query_dict({"prepared_statement_cache_size": "0"}).render_as_string(hide_password=False)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> Engine:
    """Set up ``engine``; return the engine for work that takes the write lock at BEGIN without a
    transaction of Database's (:meth:`Database.run_on_connection`: migrations, bulk loads).

    pysqlite leaves BEGIN to us (``isolation_level = None``). ``engine`` issues a deferred BEGIN from its
    dialect's ``do_begin``, unless the connection is already in a transaction (Database's write transactions
    send BEGIN IMMEDIATE to the driver first), and has no "begin" event listener: any listener makes
    SQLAlchemy dispatch events around every statement of its engine (a quarter of a one-statement read).
    Only the returned engine, used for migrations and bulk loads, keeps one."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    def do_begin(dbapi_conn: Any) -> None:
        if not dbapi_conn.in_transaction:
            dbapi_conn.execute("BEGIN")

    engine.dialect.do_begin = do_begin  # type: ignore[method-assign, assignment]
    immediate = engine.execution_options()  # shares the pool; its listener is its own

    @event.listens_for(immediate, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred BEGIN that reads and then writes fails with "database is locked" under
        # concurrency; a write transaction takes the write lock up front instead.
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]

    return immediate


def _sqlite_in_transaction(conn: Connection, work: Callable[[Connection], T], begin: str | None) -> T:
    """``work`` in one transaction: ``begin`` (BEGIN IMMEDIATE) straight to the driver first, else the deferred
    BEGIN the engine's ``do_begin`` sends with the first statement; then COMMIT. If ``work`` raises, closing
    ``conn`` rolls back."""
    if begin is not None:
        try:
            conn.connection.driver_connection.execute(begin)  # type: ignore[union-attr]
        except sqlite3.Error as exc:  # e.g. "database is locked" after busy_timeout: retried like any busy error
            raise DBAPIError.instance(begin, None, exc, sqlite3.Error) from exc
    result = work(conn)
    conn.commit()
    return result


_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def secure_sqlite_file(database: Path) -> None:
    """The SQLite file holds buyer data: its directory is private to this user (0700) and the database,
    WAL, SHM and journal files are 0600. A missing database file is created empty with mode 0600 before
    SQLite opens it, so it is never readable by others, not even for a moment; SQLite then gives its WAL,
    SHM and journal files the database file's mode. Existing files and a directory of our own are
    tightened (group and other bits removed) on every start; a shared sticky directory (/tmp), the working
    directory and the home directory are left as they are."""
    directory = database.parent.resolve()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    facts = directory.stat()
    shared = facts.st_mode & stat.S_ISVTX or directory in (Path.cwd(), Path.home())  # /tmp, or not a data dir
    if facts.st_uid == os.getuid() and not shared:
        _tighten(directory, facts.st_mode)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in _SQLITE_COMPANIONS:
        path = database.with_name(database.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            _tighten(path, path.stat().st_mode)


def _tighten(path: Path, mode: int) -> None:
    if stat.S_IMODE(mode) & 0o077:
        path.chmod(stat.S_IMODE(mode) & 0o700)


def _is_busy(exc: DBAPIError) -> bool:
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in ("40001", "40P01"):  # serialization failure, deadlock
        return True
    text = str(orig).lower()
    return "database is locked" in text or "database is busy" in text


class Database:
    """One database, SQLite or PostgreSQL, and the way to run a transaction on it."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 20,
        busy_timeout_ms: int = 10_000,
        pooler: Literal["none", "pgbouncer"] = "none",
        busy_poll_ms: float = 0.5,
    ) -> None:
        self.url = normalise_url(url)
        backend = make_url(self.url).get_backend_name()
        self.dialect: Dialect = "sqlite" if backend == "sqlite" else "postgresql"
        self._sync_engine: Engine | None = None
        self._sqlite_immediate_engine: Engine | None = None
        self._async_engine: AsyncEngine | None = None
        self._sqlite_write_lock = threading.Lock()
        self._commit_listeners: list[CommitListener] = []
        self._hot_reads: dict[HotRead, hot_read.Compiled] = {}
        self._pinned: hot_read.Pinned | None = None  # PostgreSQL hot reads' own connection, made on first use
        self._pinning = False
        self._busy_poll: BusyPoll | None = None  # PostgreSQL: store/busy_poll.py
        # Behind a transaction-pooling PgBouncer a statement outside a transaction may be prepared on one
        # server connection and executed on another: there every read is a transaction.
        self._autocommit_reads = pooler == "none"
        if self.dialect == "sqlite":
            database = make_url(self.url).database
            if database and database != ":memory:" and not database.startswith("file:"):
                secure_sqlite_file(Path(database))
            engine = create_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=max_overflow,
                connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
            )
            self._sqlite_immediate_engine = _configure_sqlite(engine, busy_timeout_ms)
            self._sync_engine = engine
        else:
            self._async_engine = create_async_engine(
                _behind_pooler(self.url) if pooler == "pgbouncer" else self.url,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_pre_ping=False,
                # The connection returned last goes out next: calls made one after another stay on one warm
                # connection (its prepared statements, and the generic plans PostgreSQL settles on after a
                # statement's fifth run) instead of going round every connection a burst opened.
                pool_use_lifo=True,
                connect_args=_POOLER_CONNECT_ARGS if pooler == "pgbouncer" else {},
            )
            if busy_poll_ms > 0:
                poll = self._busy_poll = BusyPoll(busy_poll_ms / 1000)
                event.listen(self._async_engine.sync_engine, "before_cursor_execute", lambda *_: poll.extend())

    @property
    def sync_engine(self) -> Engine:
        """The engine behind SQLite transactions (also used by bulk import and migrations)."""
        if self._sync_engine is None:
            raise RuntimeError("sync engine exists only for SQLite")
        return self._sync_engine

    @property
    def async_engine(self) -> AsyncEngine:
        if self._async_engine is None:
            raise RuntimeError("async engine exists only for PostgreSQL")
        return self._async_engine

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction; commit if it returns, roll back if it raises."""
        if not self._commit_listeners:
            return await self._run(work, write=True)
        changed: set[str] = set()

        def noting(conn: Connection) -> T:
            changed.clear()  # a retried attempt starts over
            info = conn.info  # held: a failed statement can make conn.info itself raise
            info[_CHANGED] = changed
            try:
                return work(conn)
            finally:
                info.pop(_CHANGED, None)  # the pooled connection outlives this transaction

        result = await self._run(noting, write=True)
        if changed:
            keys = frozenset(changed)
            for listener in list(self._commit_listeners):
                try:
                    listener(keys)
                except Exception:  # the transaction is committed: a listener must not turn it into a failure
                    log.exception("commit listener failed")
        return result

    def after_commit(self, listener: CommitListener) -> Callable[[], None]:
        """Call ``listener(keys)`` on the event loop after each write transaction that committed and
        noted changed keys (:func:`note_changed`); returns a function that removes it. In this
        process only: other processes' commits are not heard (poll the database for those)."""
        self._commit_listeners.append(listener)
        return lambda: self._commit_listeners.remove(listener) if listener in self._commit_listeners else None

    async def read(self, work: Callable[[Connection], T], *, quick: bool = False, one_statement: bool = False) -> T:
        """Run ``work`` as a read that sees one snapshot of the database, whatever it runs (a
        REPEATABLE READ READ ONLY transaction on PostgreSQL, a deferred transaction on SQLite).

        ``quick``: ``work`` is a few indexed look-ups (well under a millisecond). On SQLite it then
        runs on the calling thread, blocking the event loop for that long instead of paying for a
        thread hop. Leave it False for anything that may scan or rank many rows.

        ``one_statement``: ``work`` runs at most one statement, which is its own snapshot, so it runs
        without a transaction (on PostgreSQL one round trip instead of three). A second statement
        raises :class:`OneStatementOnly` (a bug in the caller, never a data error).
        """
        return await self._run(work, write=False, inline=quick, one_statement=one_statement)

    async def fetch(self, read: HotRead, *values: Any) -> Sequence[Sequence[Any]]:
        """The rows of ``read`` (one statement of a few indexed look-ups, built once) with its parameters
        ``values``, by position: a one-statement quick read (:meth:`read`). On PostgreSQL without a pooler
        it runs straight on the driver (store/hot_read.py), one round trip and none of SQLAlchemy's
        per-statement machinery."""
        if self._sync_engine is not None:
            compiled = self._hot_read(read, self._sync_engine)
            return await self._run(
                _no_work, write=False, driver_call=lambda engine: hot_read.fetch_sqlite(engine, read, compiled, values)
            )
        if not self._autocommit_reads:
            params = dict(zip(read.names, values, strict=True))
            return await self.read(
                lambda conn: conn.execute(read.statement, params).all(), quick=True, one_statement=True
            )
        compiled = self._hot_read(read, self.async_engine.sync_engine)
        pinned = self._pinned
        # One read at a time on the pinned connection (made by the first read that finds none); the others
        # meanwhile take a pooled connection.
        if (pinned is None and not self._pinning) or (pinned is not None and not pinned.busy):
            if pinned is None:
                self._pinning = True
            else:
                pinned.busy = True
            return await self._run(
                _no_work, write=False, async_call=lambda: self._fetch_pinned(pinned, read, compiled, values)
            )
        return await self._run(
            _no_work, write=False, driver_call=lambda engine: hot_read.fetch(engine, read, compiled, values)
        )

    async def _fetch_pinned(
        self, pinned: hot_read.Pinned | None, read: HotRead, compiled: hot_read.Compiled, values: Sequence[Any]
    ) -> Sequence[Sequence[Any]]:
        engine = self.async_engine.sync_engine
        pinning = pinned is None
        try:
            if pinned is None:
                pinned = self._pinned = await greenlet_spawn(hot_read.pin, engine)
            pinned.busy = True
            return await hot_read.fetch_pinned(pinned, engine, read, compiled, values)
        except BaseException:
            if pinned is not None and pinned.driver.is_closed():  # lost: the next read pins a new one
                if self._pinned is pinned:
                    self._pinned = None
                await self._unpin(pinned)
            raise
        finally:
            if pinning:
                self._pinning = False
            if pinned is not None:
                pinned.busy = False

    async def _unpin(self, pinned: hot_read.Pinned) -> None:
        with contextlib.suppress(Exception):
            await greenlet_spawn(pinned.pooled.close)  # detached: closed, not returned to the pool

    def _hot_read(self, read: HotRead, engine: Engine) -> hot_read.Compiled:
        compiled = self._hot_reads.get(read)
        if compiled is None:
            compiled = self._hot_reads[read] = hot_read.compile_for(read, engine)
        return compiled

    async def run_on_connection(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` with a connection and no transaction of ours (migrations, bulk loads)."""
        if self._sqlite_immediate_engine is not None:
            engine = self._sqlite_immediate_engine

            def in_thread() -> T:
                with engine.connect() as conn:
                    return work(conn)

            return await anyio.to_thread.run_sync(in_thread)
        async with self.async_engine.connect() as aconn:
            return await aconn.run_sync(work)

    async def _run(
        self,
        work: Callable[[Connection], T],
        *,
        write: bool,
        inline: bool = False,
        one_statement: bool = False,
        driver_call: Callable[[Engine], T] | None = None,
        async_call: Callable[[], Awaitable[T]] | None = None,
    ) -> T:
        for attempt in range(1, _BUSY_ATTEMPTS + 1):
            try:
                if self._sync_engine is not None:
                    if driver_call is not None:  # a hot read: one quick statement on the driver, inline
                        return driver_call(self._sync_engine)
                    if inline and not write:
                        return self._sqlite_transaction(work, write, one_statement)
                    return await anyio.to_thread.run_sync(self._sqlite_transaction, work, write, one_statement)
                poll = self._busy_poll
                if poll is None:
                    return await self._run_pg(work, write, one_statement, driver_call, async_call)
                poll.start()
                try:
                    return await self._run_pg(work, write, one_statement, driver_call, async_call)
                finally:
                    poll.stop()
            except IntegrityError:
                raise  # a broken invariant, not an outage: reported as internal_error upstream
            except DBAPIError as exc:
                if _is_busy(exc) and attempt < _BUSY_ATTEMPTS:
                    await anyio.sleep(random.uniform(0.01, 0.05) * attempt)  # noqa: S311 (jitter, not a secret)
                    continue
                raise _storage_error(exc) from None
            except OSError as exc:  # connection refused, socket closed
                log.warning("database unreachable: %s", type(exc).__name__)
                raise StorageUnavailable(
                    "The order database is unreachable; nothing was changed. Retry in a few seconds.",
                    retry_after_seconds=2,
                ) from None
        raise AssertionError("unreachable")

    async def _run_pg(
        self,
        work: Callable[[Connection], T],
        write: bool,
        one_statement: bool,
        driver_call: Callable[[Engine], T] | None,
        async_call: Callable[[], Awaitable[T]] | None,
    ) -> T:
        # Checkout, work and return to the pool in ONE greenlet: what AsyncConnection would
        # do in three (connect, run_sync, close), each a round through the event loop.
        engine = self.async_engine.sync_engine
        if async_call is not None:  # straight on the driver, from the event loop
            return await async_call()
        if driver_call is not None:
            return await greenlet_spawn(driver_call, engine)
        if write:
            return await greenlet_spawn(_pg_write, engine, work)
        one = one_statement and self._autocommit_reads
        return await greenlet_spawn(_pg_read_one if one else _pg_read, engine, work)

    def _sqlite_transaction(self, work: Callable[[Connection], T], write: bool, one_statement: bool = False) -> T:
        engine = self.sync_engine
        if not write:
            with _OneStatementConnection(engine) if one_statement else engine.connect() as conn:
                return _sqlite_in_transaction(conn, work, None)
        # One writer at a time inside this process: threads queue on a lock instead of spinning in
        # SQLite's busy handler (which sleeps up to 100 ms a try). Other processes still meet
        # BEGIN IMMEDIATE and busy_timeout.
        with self._sqlite_write_lock:
            started = time.perf_counter()
            with engine.connect() as conn:
                result = _sqlite_in_transaction(conn, work, "BEGIN IMMEDIATE")
            elapsed = time.perf_counter() - started
            if elapsed > 1.0:
                log.warning("slow write transaction: %.2fs", elapsed)
            return result

    async def dispose(self) -> None:
        if self._sync_engine is not None:
            self._sync_engine.dispose()
        if self._pinned is not None:
            pinned, self._pinned = self._pinned, None
            await self._unpin(pinned)
        if self._async_engine is not None:
            await self._async_engine.dispose()


def _no_work(_conn: Connection) -> Any:
    raise AssertionError("a hot read runs on the driver, without a Connection")


class OneStatementOnly(RuntimeError):
    """A read declared ``one_statement`` ran a second statement (it would not see the first one's snapshot)."""


class _OneStatementConnection(Connection):
    """A connection that refuses its second statement (every execution passes ``_execute_context``)."""

    _statements = 0

    def _execute_context(self, *args: Any, **kwargs: Any) -> Any:
        self._statements += 1
        if self._statements > 1:
            raise OneStatementOnly(
                "a read marked one_statement ran a second statement; drop one_statement (it then reads one snapshot)"
            )
        return super()._execute_context(*args, **kwargs)


def _pg_read(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.connect() as conn:
        dialect: Any = conn.dialect  # PGDialect_asyncpg (its isolation and read-only setters are untyped)
        driver = conn.connection.dbapi_connection
        assert driver is not None
        # asyncpg then starts the transaction with BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY. Set here,
        # not by execution options, which run SQLAlchemy's characteristics and events at checkout and check-in.
        dialect.set_isolation_level(driver, "REPEATABLE READ")
        dialect.set_readonly(driver, True)
        try:
            with conn.begin():
                return work(conn)
        finally:  # after COMMIT or ROLLBACK: the pooled connection's next user gets the engine's defaults
            dialect.set_readonly(driver, False)
            dialect.set_isolation_level(driver, _default_isolation(dialect))


def _pg_read_one(engine: Engine, work: Callable[[Connection], T]) -> T:
    with _OneStatementConnection(engine) as conn:
        dialect: Any = conn.dialect
        driver = conn.connection.dbapi_connection
        assert driver is not None
        dialect.set_isolation_level(driver, "AUTOCOMMIT")  # no BEGIN, no COMMIT: the statement is its own snapshot
        try:
            return work(conn)
        finally:
            dialect.set_isolation_level(driver, _default_isolation(dialect))


def _default_isolation(dialect: Any) -> Any:
    level = dialect.default_isolation_level  # detected on the engine's first connection (READ COMMITTED)
    return level or "READ COMMITTED"


def _pg_write(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.connect() as conn, conn.begin():
        return work(conn)


def _storage_error(exc: DBAPIError) -> StorageUnavailable | StorageBusy:
    kind = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
    # Never log the statement or its parameters: they can carry buyer data.
    log.error("storage failure: %s: %s", kind, str(exc.orig).splitlines()[0][:200] if exc.orig else "")
    if _is_busy(exc):
        return StorageBusy(
            "The order database is busy; nothing was changed. Retry the same call in a second "
            "(reuse the same idempotency_key).",
            retry_after_seconds=1,
        )
    if isinstance(exc, OperationalError) or exc.connection_invalidated:
        return StorageUnavailable(
            "The order database is unavailable; nothing was changed. Retry in a few seconds "
            "(reuse the same idempotency_key).",
            retry_after_seconds=2,
        )
    return StorageUnavailable(
        "The order database rejected the request; nothing was changed. Retry later, and tell the "
        "merchant if it keeps failing (run `mcp-checkout doctor`).",
        retry_after_seconds=5,
    )
