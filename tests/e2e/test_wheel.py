"""The built wheel on its own: ``uv build`` it, then ``uvx --from <wheel> mcp-checkout demo`` in a fresh, isolated
tool environment, as someone who never cloned the repository would run it.

The dependencies are those of the wheel's metadata, held to the versions of uv.lock and installed from the uv
cache (``--offline``); a cache that has never seen them (a fresh machine) is filled from PyPI once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UV = REPO / ".uv" / "bin" / "uv"


def uv(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(UV), *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env, check=False
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not UV.exists():
        pytest.fail(f"{UV} is missing: run `make setup`")
    out = tmp_path_factory.mktemp("dist")
    built = uv("build", "--wheel", "--offline", "--out-dir", str(out))
    assert built.returncode == 0, built.stderr[-3000:]
    (found,) = out.glob("mcp_checkout-*-py3-none-any.whl")
    return found


def test_the_wheel_declares_its_license_python_versions_and_every_import(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(name for name in names if name.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(info).decode())
    assert metadata["License-Expression"] == "MIT"
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert metadata["Requires-Python"] in (">=3.11,<3.14", "<3.14,>=3.11")
    classifiers = metadata.get_all("Classifier") or []
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers
    required = {line.split(";")[0].split("<")[0].split(">")[0].split("=")[0].split("[")[0].strip().lower()
                for line in metadata.get_all("Requires-Dist") or []}  # fmt: skip
    assert {"sse-starlette", "platformdirs", "mcp-types", "mcp", "starlette", "sqlalchemy"} <= required
    assert any(name.startswith("mcp_checkout/store/migrations/versions/") for name in names)
    assert any(name.endswith(".html") or name.endswith(".jinja") for name in names), "page templates missing"


def test_uvx_from_the_wheel_runs_the_demo(wheel: Path, tmp_path: Path) -> None:
    pins = uv("export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--format", "requirements-txt")
    assert pins.returncode == 0, pins.stderr
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(pins.stdout)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MCP_CHECKOUT_", "VIRTUAL_ENV"))}
    env |= {"UV_PYTHON_DOWNLOADS": "never", "UV_TOOL_DIR": str(tmp_path / "tools"), "COLUMNS": "200"}
    command = [
        "tool", "run", "--isolated", "--python", sys.executable, "--constraints", str(constraints),
        "--from", str(wheel), "mcp-checkout", "--data-dir", str(tmp_path / "store"), "demo",
    ]  # fmt: skip
    done = uv("--offline", *command, env=env)
    if done.returncode != 0 and "network was disabled" in done.stderr:  # a cache that never saw these wheels
        done = uv(*command, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "replayed: True → the same order" in done.stdout
    assert "signature ✓ verified" in done.stdout
    # the demo keeps its own store beside (never inside) the merchant's
    assert (tmp_path / "store" / "demo" / "checkout.db").is_file()
    assert not (tmp_path / "store" / "checkout.db").exists()
