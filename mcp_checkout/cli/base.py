"""What every command shares: the global options, the per-run context, and ``add_command``.

Adding a command: in a module of this package write ``def register(commands: Commands) -> None`` that
calls ``add_command(commands, name, help=…, description=…, examples=[…], handler=…)`` (or ``add_group`` for
``keys create|list|…``), and list the module in ``app.COMMAND_MODULES``. A handler takes the ``Context``
and returns the exit code; it raises for failures (``CheckoutError``, database and file errors, a bad
setting) and ``failures.explain`` turns them into one line on stderr and exit code 1 or 2.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import anyio

from mcp_checkout.config import Settings, default_data_dir

if TYPE_CHECKING:
    from mcp_checkout.service.container import Services

T = TypeVar("T")
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler = Callable[["Context"], int]
HELP_WIDTH = 100


def global_options(*, top_level: bool) -> argparse.ArgumentParser:
    """``--data-dir`` and ``--database-url``, accepted before the command and after it (``doctor --data-dir x``).
    Defaults are SUPPRESS so an option given after the command is not overwritten by the top level's default."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("store options (before or after the command)" if top_level else "store options")
    group.add_argument(
        "--data-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help=f"where the SQLite database, secret key and imports live (MCP_CHECKOUT_DATA_DIR; default: "
        f"{default_data_dir()})",
    )
    group.add_argument(
        "--database-url",
        default=argparse.SUPPRESS,
        help="SQLAlchemy URL instead of SQLite, e.g. postgresql+asyncpg://user@host:5432/db "
        "(MCP_CHECKOUT_DATABASE_URL)",
    )
    return options


@dataclass
class Context:
    """One CLI run: the parsed arguments and, built on first use, the settings (env + global options)."""

    args: argparse.Namespace
    _settings: Settings | None = field(default=None, init=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            overrides: dict[str, Any] = {}
            if getattr(self.args, "data_dir", None) is not None:
                overrides["data_dir"] = self.args.data_dir
            if getattr(self.args, "database_url", None):
                overrides["database_url"] = self.args.database_url
            self._settings = Settings(**overrides)
        return self._settings

    @property
    def settings_if_valid(self) -> Settings | None:
        """The settings if they were (or can be) built; None when they are invalid."""
        if self._settings is not None:
            return self._settings
        try:
            return self.settings
        except Exception:  # a bad setting: the caller is already reporting a failure
            return None

    def with_services(self, work: Callable[[Services], Awaitable[T]]) -> T:
        """Open the services (migrating the database first), run ``work`` with them, close them. Imports no
        server (MCP, HTTP, UCP): a command that only needs the store starts in about half the CPU."""
        from mcp_checkout.service.container import open_services

        async def run() -> T:
            services = await open_services(self.settings)
            try:
                return await work(services)
            finally:
                await services.close()

        return anyio.run(run)


def describe_database(settings: Settings) -> str:
    """Where the store's data is, for messages (never a password)."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.resolved_database_url())
    if url.get_backend_name() == "sqlite":
        return f"SQLite {url.database}"
    return f"PostgreSQL {url.render_as_string(hide_password=True)}"


def _epilog(examples: Sequence[str]) -> str | None:
    if not examples:
        return None
    return "examples:\n" + "\n".join(f"  {line}" for line in examples)


def add_command(
    commands: Commands,
    name: str,
    *,
    help: str,
    description: str,
    examples: Sequence[str],
    handler: Handler | None = None,
) -> argparse.ArgumentParser:
    """A (sub)command with a one-line ``help`` for the list, a ``description`` and ``examples`` for its own
    ``--help``, and the global options."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=textwrap.fill(description, width=HELP_WIDTH),
        epilog=_epilog(examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[global_options(top_level=False)],
    )
    parser.set_defaults(handler=handler, help_parser=parser)
    return parser


def add_group(
    commands: Commands,
    name: str,
    *,
    help: str,
    description: str,
    examples: Sequence[str],
) -> Commands:
    """A command with its own subcommands (``keys create``); bare ``mcp-checkout keys`` shows its help."""
    group = add_command(commands, name, help=help, description=description, examples=examples)
    return group.add_subparsers(dest=f"{name}_command", metavar="COMMAND", title="commands")
