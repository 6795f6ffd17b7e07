"""The one home of "exception → what the merchant reads": every command's failures end up here.

A failure is one line on stderr, ``error: <what failed>. <the setting or command that fixes it>``, never a
traceback, SQL, a password or a secret's value, and an exit code: 2 for configuration (a bad setting, a
database URL or data directory that cannot work as given), 1 for runtime failures (PostgreSQL down, a
refused operation, an unexpected bug). ``serve`` over stdio fails the same way before its first answer.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from mcp_checkout.config import Settings, default_data_dir
from mcp_checkout.errors import CheckoutError

RUNTIME_ERROR = 1
CONFIG_ERROR = 2
INTERRUPTED = 130
ENV_PREFIX = "MCP_CHECKOUT_"
DATA_DIR_FIX = "Choose a directory you can write to with --data-dir or MCP_CHECKOUT_DATA_DIR (default: {default})."
DATABASE_FIX = "Start PostgreSQL, or point --database-url / MCP_CHECKOUT_DATABASE_URL at a reachable database."
# Command-line options that set a Settings field (the rest are only environment variables).
OPTION_FOR_FIELD = {"data_dir": "--data-dir", "database_url": "--database-url"}


@dataclass(frozen=True)
class Failure:
    what: str
    fix: str
    exit_code: int

    def line(self) -> str:
        return f"error: {self.what}. {self.fix}".rstrip()


class CommandFailed(Exception):
    """Raised by a command that knows exactly what failed and what fixes it."""

    def __init__(self, what: str, fix: str, exit_code: int = RUNTIME_ERROR) -> None:
        super().__init__(what)
        self.failure = Failure(what, fix, exit_code)


def _leaf(exc: BaseException) -> BaseException:
    """The first real failure inside (nested) exception groups, e.g. from a task group in ``serve``."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _secret_fields() -> set[str]:
    return {
        name for name, info in Settings.model_fields.items() if SecretStr in getattr(info.annotation, "__args__", ())
    }


def _bad_setting(exc: ValidationError) -> Failure:
    secret = _secret_fields()
    problems, names = [], []
    for error in exc.errors()[:3]:
        name = str(error["loc"][0]) if error["loc"] else ""
        variable = ENV_PREFIX + name.upper()
        option = f" ({OPTION_FOR_FIELD[name]})" if name in OPTION_FOR_FIELD else ""
        shown = "" if name in secret or error["type"] == "missing" else f"={str(error.get('input'))[:60]!r}"
        problems.append(f"{variable}{option}{shown}: {error['msg'].removeprefix('Value error, ')}")
        names.append(variable)
    return Failure(
        "invalid setting " + "; ".join(problems),
        f"Fix or unset {', '.join(names)} (every setting is listed in the README's Configuration section).",
        CONFIG_ERROR,
    )


def _raised_by_driver(exc: BaseException) -> bool:
    """Did the failure come out of the database driver / SQLAlchemy (rather than our own file handling)?"""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        module = str(frame.f_globals.get("__name__", ""))
        if module.startswith(("asyncpg", "sqlalchemy", "sqlite3", "alembic")):
            return True
    return False


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, the driver error SQLAlchemy wraps (``orig``) and their causes, outermost first."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__ or current.__context__
    return found


def _sqlite(exc: BaseException, database: str | None) -> Failure | None:
    original = next(
        (error for error in _chain(exc) if type(error) in (sqlite3.OperationalError, sqlite3.DatabaseError)), None
    )  # DatabaseError itself: "file is not a database"; subclasses such as IntegrityError are not about the file
    if original is None:
        return None
    reason = str(original).splitlines()[0][:200]
    if "locked" in reason or "busy" in reason:
        return Failure(
            f"the SQLite database {database} is busy ({reason})",
            "Another process holds a long write; retry, or move to PostgreSQL for several processes.",
            RUNTIME_ERROR,
        )
    return Failure(
        f"cannot use the SQLite database {database} ({reason})",
        DATA_DIR_FIX.format(default=default_data_dir()),
        CONFIG_ERROR,
    )


def _postgresql(exc: BaseException, shown: str) -> Failure | None:
    chain = _chain(exc)
    names = {type(error).__name__ for error in chain}
    innermost = chain[-1]
    reason = (str(innermost).splitlines() or [type(innermost).__name__])[0][:200]
    if names & {"InvalidCatalogNameError", "InvalidPasswordError", "InvalidAuthorizationSpecificationError"} or any(
        isinstance(error, socket.gaierror) for error in chain
    ):  # no such database or role, a wrong password, an unknown host: the URL itself is wrong
        return Failure(
            f"cannot connect to the database at {shown} ({reason})",
            "Fix --database-url / MCP_CHECKOUT_DATABASE_URL (host, database name, user, password), or create "
            "the database.",
            CONFIG_ERROR,
        )
    if names & {"CannotConnectNowError", "ConnectionDoesNotExistError", "TooManyConnectionsError"} or any(
        isinstance(error, OSError) for error in chain
    ):
        return Failure(f"cannot reach the database at {shown} ({reason})", DATABASE_FIX, RUNTIME_ERROR)
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return Failure(f"lost the connection to the database at {shown} ({reason})", DATABASE_FIX, RUNTIME_ERROR)
    return None


def _database(exc: BaseException, settings: Settings) -> Failure | None:
    url = make_url(settings.resolved_database_url())
    if url.get_backend_name() == "sqlite":
        return _sqlite(exc, url.database)
    return _postgresql(exc, url.render_as_string(hide_password=True))


def _within(path: Path, directory: Path) -> bool:
    path, directory = path.absolute(), directory.absolute()
    return path == directory or directory in path.parents or path in directory.parents


def _file(exc: OSError, settings: Settings | None) -> Failure:
    where = exc.filename or ""
    reason = exc.strerror or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        return Failure(f"no space left on the device ({where})", "Free some disk space and run the command again.", 1)
    if settings is not None and where and _within(Path(where), settings.data_dir):
        return Failure(
            f"the data directory {settings.data_dir} is not usable: {reason} ({where})",
            DATA_DIR_FIX.format(default=default_data_dir()),
            CONFIG_ERROR,
        )
    return Failure(f"{reason}: {where}" if where else reason, "Check the path and its permissions.", RUNTIME_ERROR)


def _unexpected(exc: BaseException) -> Failure:
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if "mcp_checkout" in frame.filename]
    where = f" in {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return Failure(
        f"unexpected {type(exc).__name__}{where}",
        "This is a bug in mcp-checkout: please report it with the command you ran.",
        RUNTIME_ERROR,
    )


def explain(exc: BaseException, settings: Settings | None) -> Failure:
    """What failed, what fixes it, and the exit code, for any exception a command raises."""
    exc = _leaf(exc)
    if isinstance(exc, CommandFailed):
        return exc.failure
    if isinstance(exc, ValidationError) and exc.title == Settings.__name__:
        return _bad_setting(exc)
    if isinstance(exc, CheckoutError):
        return Failure(f"[{exc.code}] {exc.message.rstrip('.')}", "", RUNTIME_ERROR)
    if isinstance(exc, sa_exc.ArgumentError | sa_exc.NoSuchModuleError):  # its text may quote the URL: not shown
        return Failure(
            "the database URL is not usable",
            "Set --database-url / MCP_CHECKOUT_DATABASE_URL to sqlite:///path/checkout.db or "
            "postgresql+asyncpg://user@host:5432/db.",
            CONFIG_ERROR,
        )
    if settings is not None and (isinstance(exc, sa_exc.DBAPIError) or _raised_by_driver(exc)):
        found = _database(exc, settings)
        if found is not None:
            return found
    if isinstance(exc, OSError):
        return _file(exc, settings)
    return _unexpected(exc)


def report(exc: BaseException, settings: Settings | None, stream: Any = None) -> int:
    """Print the failure's one line on stderr; return its exit code."""
    if isinstance(_leaf(exc), KeyboardInterrupt):
        print("interrupted", file=stream or sys.stderr)
        return INTERRUPTED
    failure = explain(exc, settings)
    print(failure.line(), file=stream or sys.stderr)
    return failure.exit_code
