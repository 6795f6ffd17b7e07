# Two commands on a fresh machine:
#   make demo   set everything up, then run the demo on the embedded default (SQLite, offline)
#   make test   set everything up, then run every check and the whole test suite
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .uv/bin/uv
export UV_PYTHON := $(shell command -v $(PYTHON))
export UV_PYTHON_DOWNLOADS := never

.PHONY: setup demo test serve bench bundle clean

setup: .venv/.synced

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen
	@touch $@

demo: setup
	.venv/bin/mcp-checkout demo

test: setup
	bash scripts/test.sh

serve: setup
	.venv/bin/mcp-checkout serve

bench: setup
	.venv/bin/python bench/run.py

# The Claude Desktop bundle (needs Node.js 20+ and npm for the pinned mcpb CLI in bundle/).
bundle: setup
	.venv/bin/mcp-checkout bundle --out dist/mcp-checkout.mcpb

clean:
	rm -rf .venv .uv data .pytest_cache .mypy_cache .ruff_cache dist bundle/node_modules
