# Two commands on a fresh machine:
#   make demo   set everything up, then run the demo on the embedded default (SQLite, offline)
#   make test   set everything up, then run every check and the whole test suite
# Python 3.11, 3.12 or 3.13; another interpreter than python3: PYTHON=/path/to/python3.12 make demo
PYTHON ?= python3
VENV ?= .venv
UV_VERSION := 0.13.9
UV := .uv/bin/uv
# uv uses exactly this interpreter (resolved through pyenv shims) and never downloads one.
export UV_PYTHON := $(shell $(PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

SUPPORTED := 3.11, 3.12 or 3.13
PYTHON_CHECK := import sys; v = sys.version_info; sys.exit(0 if (3, 11) <= v[:2] < (3, 14) else \
	f"mcp-checkout needs Python $(SUPPORTED), but PYTHON=$(PYTHON) is Python {v.major}.{v.minor}.{v.micro} "\
	f"({sys.executable}). Install a supported Python and choose it: PYTHON=/path/to/python3.12 make $(MAKECMDGOALS)")

.PHONY: setup python-check demo test serve bench bundle clean

# Bytecode is compiled once here: where PYTHONDONTWRITEBYTECODE is set (container images often set it), no
# process would cache it, and every CLI command and server start would compile SQLAlchemy, pydantic, mcp … anew
# (seconds each; the end-to-end tests start hundreds). Stale .pyc files are never used (checked against sources).
setup: python-check $(UV)
	@$(UV) sync --frozen --quiet --compile-bytecode
	@$(VENV)/bin/python -m compileall -q -j 0 mcp_checkout

python-check:
	@command -v $(PYTHON) >/dev/null || { echo "PYTHON=$(PYTHON) was not found. mcp-checkout needs Python \
	$(SUPPORTED): install one, then run PYTHON=/path/to/python3 make $(MAKECMDGOALS)" >&2; exit 2; }
	@$(PYTHON) -c '$(PYTHON_CHECK)' || exit 2

$(UV):
	@$(PYTHON) -m venv .uv || { echo "$(PYTHON) cannot create a virtual environment: install its venv module \
	(Debian/Ubuntu: apt install python3-venv) and run make again" >&2; rm -rf .uv; exit 2; }
	.uv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

demo: setup
	$(VENV)/bin/mcp-checkout demo

test: setup
	bash scripts/test.sh

serve: setup
	$(VENV)/bin/mcp-checkout serve

bench: setup
	$(VENV)/bin/python bench/run.py

# The Claude Desktop bundle (needs Node.js 20+ and npm for the pinned mcpb CLI in bundle/).
bundle: setup
	$(VENV)/bin/mcp-checkout bundle --out dist/mcp-checkout.mcpb

clean:
	rm -rf .venv .venv-3.* .uv data .pytest_cache .mypy_cache .ruff_cache dist bundle/node_modules
