"""The Claude Desktop bundle (`mcp-checkout bundle`): built with the pinned mcpb CLI, validated by it, and started
from its manifest the way the desktop app does.

The desktop side is the mcpb reference library itself: `mcpb unpack` unpacks the archive and its
``getMcpConfigForManifest`` turns the manifest plus the merchant's answers into the command, arguments and
environment (``${__dirname}``, ``${HOME}``, ``${user_config.*}`` substitution, defaults for unanswered fields).
For ``uv`` bundles the desktop app brings uv and a Python; here the repository's uv (.uv/bin) and this
machine's uv settings (UV_*, TLS certificates) stand in for them, and the checkout page beside stdio takes any
free port so parallel runs do not collide.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from mcp_checkout.bundle import declared_capabilities

REPO = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("mcp-checkout")
TOOLS = REPO / "bundle"
MCPB = TOOLS / "node_modules" / ".bin" / "mcpb"
UV_BIN = REPO / ".uv" / "bin"
# The desktop app's side: resolve the manifest's launch config with the mcpb library's own function.
HOST_CONFIG_JS = """
import { readFileSync } from "fs";
import { getMcpConfigForManifest } from "@anthropic-ai/mcpb";
const [manifestPath, extensionPath, home, userConfig] = process.argv.slice(1);
const manifest = JSON.parse(readFileSync(manifestPath, "utf-8"));
const systemDirs = { HOME: home, DESKTOP: `${home}/Desktop`, DOCUMENTS: `${home}/Documents`, DOWNLOADS: `${home}/Downloads` };
const config = await getMcpConfigForManifest({
  manifest, extensionPath, systemDirs, userConfig: JSON.parse(userConfig), pathSeparator: "/",
});
process.stdout.write(JSON.stringify(config ?? null));
"""


def mcpb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MCPB), *args], capture_output=True, text=True, timeout=120, check=False)


def host_config(extension: Path, user_config: dict[str, Any], home: Path) -> Any:
    """The launch config the desktop app derives (None while a required field is unanswered)."""
    done = subprocess.run(
        ["node", "--input-type=module", "-e", HOST_CONFIG_JS, "--",
         str(extension / "manifest.json"), str(extension), str(home), json.dumps(user_config)],
        capture_output=True, text=True, timeout=60, cwd=TOOLS, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "mcp-checkout.mcpb"
    done = subprocess.run(
        [str(CLI), "bundle", "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stderr
    assert MCPB.exists(), "mcp-checkout bundle installs the pinned mcpb CLI (npm ci in bundle/)"
    return out


@pytest.fixture(scope="module")
def extension(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle unpacked by mcpb, as the desktop app installs it."""
    target = tmp_path_factory.mktemp("extension") / "mcp-checkout"
    done = mcpb("unpack", str(built), str(target))
    assert done.returncode == 0, done.stdout + done.stderr
    return target


@pytest.fixture(scope="module")
def manifest(extension: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((extension / "manifest.json").read_text(encoding="utf-8"))
    return document


def test_mcpb_validate_passes_and_would_fail_a_broken_manifest(extension: Path, tmp_path: Path) -> None:
    done = mcpb("validate", str(extension / "manifest.json"))
    assert done.returncode == 0 and "validation passes" in done.stdout, done.stdout + done.stderr

    broken = json.loads((extension / "manifest.json").read_text(encoding="utf-8"))
    del broken["author"]
    broken["user_config"]["stripe_secret_key"]["sensitive"] = "yes"
    (tmp_path / "manifest.json").write_text(json.dumps(broken), encoding="utf-8")
    refused = mcpb("validate", str(tmp_path / "manifest.json"))
    assert refused.returncode != 0
    assert "author" in refused.stdout and "sensitive" in refused.stdout


def test_the_bundle_carries_the_source_and_the_lockfile_only(built: Path) -> None:
    with zipfile.ZipFile(built) as archive:
        names = set(archive.namelist())
    assert {"manifest.json", "main.py", "pyproject.toml", "uv.lock", "LICENSE", "mcp_checkout/server.py"} <= names
    with zipfile.ZipFile(built) as archive:
        icon = archive.read("icon.png")
    assert icon.startswith(b"\x89PNG\r\n\x1a\n") and icon[12:16] == b"IHDR"
    assert struct.unpack(">II", icon[16:24]) == (256, 256)
    assert any(name.startswith("mcp_checkout/store/migrations/versions/") for name in names)
    assert any(name.startswith("mcp_checkout/web/templates/") for name in names)
    for unwanted in (".venv/", "tests/", "data/", "node_modules/", "bundle/", ".git/", "__pycache__"):
        assert not [name for name in names if unwanted in name], unwanted
    assert not [name for name in names if name.endswith((".db", ".pyc"))]


async def test_the_manifest_declares_what_the_server_serves(manifest: dict[str, Any]) -> None:
    tools, prompts = await declared_capabilities()
    assert manifest["tools"] == tools
    assert [p["name"] for p in manifest["prompts"]] == [p["name"] for p in prompts]
    assert {"search_catalog", "create_order", "readiness_check", "import_catalog_csv"} <= {t["name"] for t in tools}
    assert all(prompt["text"] for prompt in manifest["prompts"])

    assert manifest["server"]["type"] == "uv"
    config = manifest["user_config"]
    assert {key for key, option in config.items() if option.get("sensitive")} == {
        "stripe_secret_key",
        "stripe_webhook_secret",
    }
    assert config["data_directory"]["type"] == "directory"
    assert config["data_directory"]["default"] == ""  # empty: the CLI's per-user directory (config.default_data_dir)
    assert manifest["icon"] == "icon.png"
    assert config["merchant_name"]["required"] is True and config["merchant_name"]["type"] == "string"
    assert manifest["server"]["mcp_config"]["env"] == {
        "MCP_CHECKOUT_MERCHANT_NAME": "${user_config.merchant_name}",
        "MCP_CHECKOUT_STRIPE_SECRET_KEY": "${user_config.stripe_secret_key}",
        "MCP_CHECKOUT_STRIPE_PUBLISHABLE_KEY": "${user_config.stripe_publishable_key}",
        "MCP_CHECKOUT_STRIPE_WEBHOOK_SECRET": "${user_config.stripe_webhook_secret}",
        "MCP_CHECKOUT_DATA_DIR": "${user_config.data_directory}",
        "MCP_CHECKOUT_PUBLIC_BASE_URL": "${user_config.public_base_url}",
    }


def _desktop_launch(config: dict[str, Any]) -> StdioServerParameters:
    machine = {key: value for key, value in os.environ.items() if key.startswith("UV_") or key.startswith("SSL_CERT")}
    machine.setdefault("UV_PYTHON", str(Path(sys.base_prefix) / "bin" / "python3"))
    env = {
        **config["env"],
        **machine,
        "PATH": f"{UV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "MCP_CHECKOUT_WEB_PORT": "0",
    }
    return StdioServerParameters(command=config["command"], args=config["args"], env=env)


async def test_the_desktop_app_starts_the_server_from_the_manifest(
    extension: Path, manifest: dict[str, Any], tmp_path: Path
) -> None:
    data_dir = tmp_path / "store"
    seeded = subprocess.run(
        [str(CLI), "--data-dir", str(data_dir), "seed-demo"], capture_output=True, text=True, timeout=120, check=False
    )
    assert seeded.returncode == 0, seeded.stderr
    # The install form asks for the store name: without it the app does not start the server.
    assert host_config(extension, {"data_directory": str(data_dir)}, home=tmp_path) is None
    # The merchant named the store, picked a data directory and left every Stripe field empty: offline payments.
    answers = {"merchant_name": "Harbor Ceramics", "data_directory": str(data_dir)}
    config = host_config(extension, answers, home=tmp_path)
    assert config["command"] == "uv"
    assert config["args"][:3] == ["run", "--directory", str(extension)]
    assert config["env"]["MCP_CHECKOUT_DATA_DIR"] == str(data_dir)
    assert config["env"]["MCP_CHECKOUT_STRIPE_SECRET_KEY"] == ""
    assert config["env"]["MCP_CHECKOUT_MERCHANT_NAME"] == "Harbor Ceramics"

    async with Client(_desktop_launch(config), mode="legacy") as client:
        served = {tool.name for tool in (await client.list_tools()).tools}
        assert served == {tool["name"] for tool in manifest["tools"]}
        assert {p.name for p in (await client.list_prompts()).prompts} == {p["name"] for p in manifest["prompts"]}
        ready = await client.call_tool("readiness_check", {})
        hits = await client.call_tool("search_catalog", {"query": "mug"})
    assert not ready.is_error, ready.content[0].text
    report = dict(ready.structured_content or {})
    assert (report["ready"], report["mode"]) == (True, "offline"), report
    assert not hits.is_error and (hits.structured_content or {})["items"]
    assert (extension / ".venv").is_dir(), "uv made the bundle's environment next to its files"


def test_an_unanswered_data_directory_is_the_one_the_cli_uses(extension: Path, tmp_path: Path) -> None:
    """Left empty, the bundle's data directory is the CLI's per-user one (platformdirs), so `mcp-checkout
    import-catalog`, `doctor` or `keys` in a terminal work on the store the desktop app sells from."""
    config = host_config(extension, {"merchant_name": "Harbor Ceramics"}, home=tmp_path)
    assert config["env"]["MCP_CHECKOUT_DATA_DIR"] == ""
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}  # no XDG_DATA_HOME: the platform's default
    where = [sys.executable, "-c", "from mcp_checkout.config import Settings; print(Settings().data_dir)"]
    desktop = subprocess.run(
        where, capture_output=True, text=True, timeout=60, check=True, env={**base, **config["env"]}
    )
    cli = subprocess.run(where, capture_output=True, text=True, timeout=60, check=True, env=base)
    assert desktop.stdout.strip() == cli.stdout.strip()
    assert Path(desktop.stdout.strip()).is_relative_to(tmp_path) and "mcp-checkout" in desktop.stdout
    # what the merchant picks in the form wins, with ${HOME} or ~ expanded
    picked = host_config(extension, {"merchant_name": "H", "data_directory": "${HOME}/shop"}, home=tmp_path)
    chosen = subprocess.run(
        where, capture_output=True, text=True, timeout=60, check=True, env={**base, **picked["env"]}
    )
    assert chosen.stdout.strip() == str(tmp_path / "shop")


def test_the_readme_commands_that_inspect_and_validate_the_bundle_work(built: Path, tmp_path: Path) -> None:
    """The README's `mcpb` lines, run as written (with dist/ standing for where the test built the bundle)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    lines = [line.split("  #")[0].strip() for line in re.findall(r"^bundle/node_modules/\.bin/mcpb .*$", readme, re.M)]
    assert any(" validate " in line for line in lines), lines
    dist = built.parent
    for line in lines:
        command = [part.replace("dist/", f"{dist}/") for part in shlex.split(line)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO, check=False)
        assert done.returncode == 0, f"{line}:\n{done.stdout}{done.stderr}"
        if " validate " in line:
            assert "validation passes" in done.stdout
