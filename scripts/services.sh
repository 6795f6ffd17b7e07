# Sourced by scripts/test.sh: start the services the tests need when the machine isn't running them.

PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}

ensure_postgresql() {
  if pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; then return 0; fi
  echo "PostgreSQL is not answering on $PG_HOST:$PG_PORT; starting it" >&2
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  for _ in $(seq 1 30); do
    if pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; then return 0; fi
    sleep 1
  done
  echo "PostgreSQL could not be started: the PostgreSQL half of the suite will fail" >&2
}

# Headless Chromium for the browser tests (tests/e2e/test_browser_checkout.py, driven by playwright with
# executable_path=/usr/bin/chromium; never `playwright install`). CI runs as root on a machine that may not
# have it: install Debian's package. MCP_CHECKOUT_SKIP_BROWSER=1 skips those tests (and this) on purpose.
CHROMIUM=${MCP_CHECKOUT_CHROMIUM:-/usr/bin/chromium}

ensure_chromium() {
  if [ -x "$CHROMIUM" ] || [ "${MCP_CHECKOUT_SKIP_BROWSER:-}" = 1 ]; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    echo "Chromium is missing at $CHROMIUM and we are not root: install Debian's chromium package," \
      "or set MCP_CHECKOUT_SKIP_BROWSER=1 to skip the browser tests on purpose" >&2
    return 0
  fi
  echo "Chromium is missing at $CHROMIUM; installing Debian's chromium package" >&2
  local log
  log=$(mktemp)
  if { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; } \
    >"$log" 2>&1; then
    rm -f "$log"
    return 0
  fi
  cat "$log" >&2
  rm -f "$log"
  echo "Chromium could not be installed: the browser tests will fail" >&2
}

# PgBouncer for the multi-process tests through a transaction-pooling pooler (tests/e2e/test_multiprocess.py);
# each test starts its own on a free port, so only the program is needed. Debian's package when missing.
PGBOUNCER=${MCP_CHECKOUT_PGBOUNCER:-/usr/sbin/pgbouncer}

ensure_pgbouncer() {
  if [ -x "$PGBOUNCER" ]; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    echo "pgbouncer is missing at $PGBOUNCER and we are not root: install Debian's pgbouncer package" >&2
    return 0
  fi
  echo "pgbouncer is missing at $PGBOUNCER; installing Debian's pgbouncer package" >&2
  local log
  log=$(mktemp)
  if { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbouncer \
    || { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbouncer; }; } >"$log" 2>&1; then
    rm -f "$log"
    return 0
  fi
  cat "$log" >&2
  rm -f "$log"
  echo "pgbouncer could not be installed: the PgBouncer tests will fail" >&2
}
