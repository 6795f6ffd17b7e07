#!/usr/bin/env bash
# The supported Pythons besides the one the full suite ran on: for each, what a merchant runs on a fresh
# machine (`PYTHON=… make demo`: the interpreter check, an environment from uv.lock, the demo) in its own
# environment (.venv-3.X), then a few end-to-end tests (stdio and HTTP) with that interpreter.
# Interpreters come from PATH (python3.X) or pyenv; uv never downloads one. A missing interpreter fails
# the run: MCP_CHECKOUT_SKIP_OTHER_PYTHONS=1 skips this on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."

SUPPORTED=(3.11 3.12 3.13)
SMOKE=(  # the demo already ran stdio, the checkout page and a webhook: one stdio and one HTTP test on top
  "tests/e2e/test_stdio.py::test_full_flow_over_stdio[legacy]"
  "tests/e2e/test_http_transport.py::test_mcp_and_checkout_page_share_one_http_port[auto]"
)

if [ "${MCP_CHECKOUT_SKIP_OTHER_PYTHONS:-}" = 1 ]; then
  echo "other Pythons skipped (MCP_CHECKOUT_SKIP_OTHER_PYTHONS=1)"
  exit 0
fi

find_python() {
  local version=$1 candidate
  for candidate in "$(command -v "python$version" || true)" \
      "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/"$version".*/bin/python3; do
    if [ -x "$candidate" ] && "$candidate" -c "import sys; sys.exit(f'{sys.version_info[0]}.{sys.version_info[1]}' != '$version')" 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

main_version=$(.venv/bin/python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

for version in "${SUPPORTED[@]}"; do
  [ "$version" = "$main_version" ] && continue
  python=$(find_python "$version") || {
    echo "Python $version not found (python$version on PATH or pyenv): install it, or set" \
      "MCP_CHECKOUT_SKIP_OTHER_PYTHONS=1 to skip the other Pythons on purpose" >&2
    exit 1
  }
  started=$SECONDS
  echo "== Python $version ($python): make demo from the lock file, in .venv-$version"
  if ! MCP_CHECKOUT_DATA_DIR="$scratch/demo-$version" COLUMNS=200 \
      make --no-print-directory demo PYTHON="$python" VENV=".venv-$version" >"$scratch/demo-$version.log" 2>&1; then
    tail -n 60 "$scratch/demo-$version.log" >&2
    echo "make demo failed on Python $version" >&2
    exit 1
  fi
  grep -q "replayed: True" "$scratch/demo-$version.log"
  echo "== Python $version: end-to-end smoke"
  MCP_CHECKOUT_TEST_BACKENDS=sqlite ".venv-$version/bin/python" -m pytest -q -p no:cacheprovider "${SMOKE[@]}"
  echo "== Python $version: done in $((SECONDS - started)) s"
done
