#!/usr/bin/env bash
# Every check and the whole test suite. Starts what the tests need that the machine may not run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

ensure_postgresql
ensure_chromium
ensure_pgbouncer

echo "== ruff"; .venv/bin/ruff check mcp_checkout tests bench; .venv/bin/ruff format --check mcp_checkout tests bench
echo "== mypy --strict"; .venv/bin/mypy
echo "== import layers"; .venv/bin/lint-imports --no-cache
checks=$SECONDS
# Two test processes (pytest-xdist), each test file on one of them: most e2e tests wait on servers they start,
# so two share two cores well. MCP_CHECKOUT_TEST_WORKERS=0 runs everything in this one process.
workers=${MCP_CHECKOUT_TEST_WORKERS:-2}
echo "== pytest ($workers workers)"
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=30 -n "$workers" --dist loadfile "$@"
echo "== pytest: done in $((SECONDS - checks)) s (services, ruff, mypy and import layers before it: ${checks} s)"
# The other supported Pythons (install from the lock, the demo, an e2e smoke); not when running chosen tests.
if [ $# -eq 0 ]; then bash scripts/other_pythons.sh; fi
echo "== scripts/test.sh: done in ${SECONDS} s"
