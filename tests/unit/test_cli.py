"""The command line in process: help, version, global options anywhere, and each kind of failure as one
line with the right exit code (tests/e2e/test_cli_errors.py runs the real console script)."""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import sys
from pathlib import Path

import pytest

import mcp_checkout
from mcp_checkout.cli import build_parser, main
from mcp_checkout.config import Settings, default_data_dir
from tests.support import PG_ADMIN_URL


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [name for name in os.environ if name.startswith("MCP_CHECKOUT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # the per-user default, inside the test
    monkeypatch.chdir(tmp_path)


def subparsers(parser: argparse.ArgumentParser, path: str = "mcp-checkout") -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found[f"{path} {name}"] = child
                found |= subparsers(child, f"{path} {name}")
    return found


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"mcp-checkout {mcp_checkout.__version__}"


@pytest.mark.parametrize("argv", [[], ["keys"], ["webhooks"]], ids=["bare", "keys", "webhooks"])
def test_a_command_without_a_subcommand_shows_its_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: mcp-checkout {' '.join(argv)}".rstrip())
    assert "examples:" in out


def test_every_command_has_a_description_and_examples() -> None:
    commands = subparsers(build_parser())
    assert {"mcp-checkout serve", "mcp-checkout keys create", "mcp-checkout webhooks replay"} <= set(commands)
    for name, parser in commands.items():
        assert parser.description and len(parser.description) > 30, name
        assert parser.epilog and parser.epilog.startswith("examples:\n  mcp-checkout "), name


@pytest.mark.parametrize(
    "argv",
    [
        ["--data-dir", "store", "doctor", "--json"],
        ["doctor", "--data-dir", "store", "--json"],
        ["doctor", "--json", "--data-dir", "store"],
        ["--data-dir", "elsewhere", "doctor", "--data-dir", "store", "--json"],  # the later one wins
    ],
)
def test_global_options_before_or_after_the_command(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(argv)
    assert f"SQLite in {Path('store')}" in capsys.readouterr().out
    assert (tmp_path / "store" / "checkout.db").exists()


def test_the_default_data_directory_is_per_user_not_the_current_folder(tmp_path: Path) -> None:
    assert default_data_dir() == tmp_path / "xdg" / "mcp-checkout"
    assert Settings().data_dir == default_data_dir()
    assert main(["migrate"]) == 0
    assert (tmp_path / "xdg" / "mcp-checkout" / "checkout.db").exists()
    assert not (tmp_path / "data").exists()


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, captured.err
    return code, errors[0]


@pytest.mark.parametrize(
    ("variable", "value", "phrases"),
    [
        ("MCP_CHECKOUT_ORDER_TTL_MINUTES", "0", ["MCP_CHECKOUT_ORDER_TTL_MINUTES='0'", "greater than or equal to 1"]),
        ("MCP_CHECKOUT_LOCAL_PRINCIPAL_KIND", "admin", ["MCP_CHECKOUT_LOCAL_PRINCIPAL_KIND='admin'", "'buyer' or"]),
        ("MCP_CHECKOUT_DEFAULT_CURRENCY", "dollars", ["MCP_CHECKOUT_DEFAULT_CURRENCY", "pattern"]),
        ("MCP_CHECKOUT_SECRET_KEY", "too-short-secret-value", ["MCP_CHECKOUT_SECRET_KEY:", "44 characters"]),
        ("MCP_CHECKOUT_STRIPE_SECRET_KEY", "x" * 200, []),
        ("MCP_CHECKOUT_DATABASE_URL", "mysql://shop:pw@db/shop", ["MCP_CHECKOUT_DATABASE_URL", "sqlite:///"]),
        ("MCP_CHECKOUT_DATABASE_URL", "not a url", ["MCP_CHECKOUT_DATABASE_URL", "sqlite:///"]),
    ],
)
def test_a_bad_setting_exits_2_naming_it_and_never_echoing_a_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str, phrases: list[str]
) -> None:
    monkeypatch.setenv(variable, value)
    if variable == "MCP_CHECKOUT_STRIPE_SECRET_KEY":  # a valid secret: the run fails on another setting
        monkeypatch.setenv("MCP_CHECKOUT_WEB_PORT", "99999")
        phrases = ["MCP_CHECKOUT_WEB_PORT='99999'"]
    code, line = run(["migrate"], capsys)
    assert code == 2, line
    for phrase in phrases:
        assert phrase in line
    assert "pw@" not in line and "too-short-secret-value" not in line and "x" * 50 not in line


@pytest.mark.parametrize(
    ("url", "code", "phrase"),
    [
        ("postgresql+asyncpg://shop:hunter2@127.0.0.1:1/shop", 1, "cannot reach the database"),
        (PG_ADMIN_URL.rsplit("/", 1)[0] + "/mcp_checkout_no_such_db", 2, 'database "mcp_checkout_no_such_db" does not'),
        ("postgresql+asyncpg://no_such_role_here@127.0.0.1:5432/postgres", 2, 'role "no_such_role_here"'),
        ("postgresql+asyncpg://shop@no-such-host.invalid:5432/shop", 2, "cannot connect to the database"),
    ],
    ids=["down", "no-such-database", "no-such-role", "unknown-host"],
)
def test_a_database_that_cannot_be_used(capsys: pytest.CaptureFixture[str], url: str, code: int, phrase: str) -> None:
    exit_code, line = run(["keys", "list", "--database-url", url], capsys)
    assert (exit_code, phrase in line, "--database-url" in line) == (code, True, True), line
    assert "hunter2" not in line


@pytest.mark.parametrize(
    "data_dir",
    ["a-file", "a-file/below", "/proc/mcp-checkout-missing/data"],
    ids=["a-file", "below-a-file", "cannot-be-created"],
)
@pytest.mark.parametrize("command", [["migrate"], ["webhooks", "list"], ["seed-demo"]])
def test_an_unusable_data_directory_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data_dir: str, command: list[str]
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    code, line = run([*command, "--data-dir", data_dir], capsys)
    assert code == 2, line
    assert "data directory" in line and "--data-dir or MCP_CHECKOUT_DATA_DIR" in line


def test_an_unreadable_sqlite_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "checkout.db").write_text("this is not an SQLite database " * 100)
    code, line = run(["migrate", "--data-dir", "store"], capsys)
    assert code == 2, line
    assert "cannot use the SQLite database" in line and "--data-dir" in line


def test_a_refused_operation_is_its_coded_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, line = run(["keys", "revoke", "mcpk_nothing", "--data-dir", "store"], capsys)
    assert code == 1
    assert line.startswith("error: [")


def test_store_show_and_set_change_the_profile_and_explain_bad_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["store", "show", "--json", "--data-dir", "store"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "Demo Store"  # seeded from the settings
    argv = ["store", "set", "--name", "Ada Ceramics", "--prices-include-tax", "yes", "--locale", "de-DE", "--json"]
    assert main([*argv, "--data-dir", "store"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["name"], shown["prices_include_tax"], shown["locale"]) == ("Ada Ceramics", True, "de_DE")
    assert main(["store", "show", "--data-dir", "store"]) == 0
    assert "Ada Ceramics" in capsys.readouterr().out
    code, line = run(["store", "set", "--origin-country", "XX", "--data-dir", "store"], capsys)
    assert code == 1 and line.startswith("error: [invalid_input] origin_country") and not line.endswith("..")
    code, line = run(["store", "set", "--data-dir", "store"], capsys)
    assert code == 2 and "nothing to change" in line
    with pytest.raises(SystemExit) as exited:  # argparse: a usage error
        main(["store", "set", "--prices-include-tax", "maybe", "--data-dir", "store"])
    assert exited.value.code == 2 and "write yes or no" in capsys.readouterr().err


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("argv", "typed", "name"),
    [
        ([], "Harbor Ceramics\n", "Harbor Ceramics"),  # asked on a terminal
        ([], "\n", "Demo Store"),  # Enter keeps the current setting
        (["--merchant-name", "Tide & Kiln"], "", "Tide & Kiln"),  # given: not asked
    ],
)
def test_claude_config_asks_for_the_store_name_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], typed: str, name: str
) -> None:
    monkeypatch.setattr(sys, "stdin", Terminal(typed))
    assert main(["claude-config", "--data-dir", "store", *argv]) == 0
    captured = capsys.readouterr()
    entry = json.loads(captured.out)["mcpServers"]["checkout"]  # the question went to stderr, not into the JSON
    assert entry["env"]["MCP_CHECKOUT_MERCHANT_NAME"] == name
    assert ("Store name shown to buyers [Demo Store]: " in captured.err) == (not argv)


def test_claude_config_refuses_a_store_name_that_is_too_long(capsys: pytest.CaptureFixture[str]) -> None:
    code, line = run(["claude-config", "--merchant-name", "x" * 200], capsys)
    assert code == 2 and "MCP_CHECKOUT_MERCHANT_NAME" in line


def test_serve_http_on_a_taken_port_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, line = run(["serve", "--http", "--port", str(port), "--data-dir", "store"], capsys)
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in line and "--port" in line


def test_a_command_on_the_store_alone_imports_no_server(tmp_path: Path) -> None:
    """`keys`, `webhooks`, `store`, `audit` … open the services only: the MCP server, the HTTP app and UCP (about
    half of a command's start-up CPU) stay unimported. The e2e suite runs such commands by the hundred."""
    import subprocess

    probe = (
        "import sys\nfrom mcp_checkout.cli import main\n"
        f"code = main(['keys', 'list', '--data-dir', {str(tmp_path / 'data')!r}])\n"
        "print(code, sorted(m for m in ('mcp_checkout.hosting', 'mcp_checkout.server', 'mcp.server', 'ucp_sdk')"
        " if m in sys.modules))"
    )
    source = str(Path(mcp_checkout.__file__).parents[1])  # the package under test, however it is installed
    env = {**os.environ, "PYTHONPATH": source}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stdout + done.stderr
