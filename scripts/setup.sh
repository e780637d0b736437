# Shared by ./scripts/test and ./scripts/demo (sourced, not run): on a fresh Debian 12 box,
# as root, installs the system packages, starts PostgreSQL and Redis if needed, creates
# .venv and installs the project with ${EXTRAS} (requirements/${EXTRAS:-prod}.txt pinned). Set SYSTEM_PACKAGES (array), EXTRAS and
# NEED_POSTGRES (1 for the tests) first.
step() { printf '\n==> %s\n' "$*"; }
is_root() { [ "$(id -u)" -eq 0 ]; }
installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

PYTHON="${PYTHON:-python3}"

# --- system packages ----------------------------------------------------------------
if command -v dpkg-query >/dev/null; then
  missing=()
  for pkg in "${SYSTEM_PACKAGES[@]}"; do installed "$pkg" || missing+=("$pkg"); done
  if [ "${NEED_POSTGRES:-0}" = 1 ]; then command -v psql >/dev/null || missing+=(postgresql); fi
  command -v "$PYTHON" >/dev/null || missing+=(python3)
  if [ ! -x .venv/bin/python ] && ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    missing+=(python3-venv)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    if is_root; then
      step "installing system packages: ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -q
      apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
      step "missing system packages (run as root to install them): ${missing[*]}"
    fi
  else
    step "system packages present"
  fi
fi

# --- services -----------------------------------------------------------------------
# Tests start their own Dovecot, redis-server and SMTP sink; PostgreSQL is shared and
# each test gets a throwaway database. The system Redis is started for tools that
# expect one on 6379.
if [ "${NEED_POSTGRES:-0}" = 1 ]; then
if is_root && command -v pg_lsclusters >/dev/null && [ -d /etc/postgresql ]; then
  pg_version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  if [ -n "$pg_version" ] && ! pg_lsclusters -h | awk -v v="$pg_version" '$1 == v && $2 == "main" && $4 ~ /^online/' | grep -q .; then
    step "starting PostgreSQL $pg_version"
    pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start
  fi
fi
if [ -z "${GATEWAY_TEST_PG_ADMIN_URL:-}" ] && command -v psql >/dev/null; then
  if ! PGCONNECT_TIMEOUT=3 psql -w -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
    if is_root && command -v runuser >/dev/null && [ -d /var/run/postgresql ]; then
      # Debian asks for a password over TCP; as root, use a superuser role `root`
      # over the Unix socket instead (peer authentication, no password to set).
      step "PostgreSQL: using role root over the Unix socket"
      runuser -u postgres -- psql -qc "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'root') THEN CREATE ROLE root SUPERUSER LOGIN; END IF;
        END \$\$;" >/dev/null
      export GATEWAY_TEST_PG_ADMIN_URL="postgresql+psycopg://root@/postgres?host=/var/run/postgresql"
    else
      step "PostgreSQL not reachable as postgres@127.0.0.1 without password: PostgreSQL tests will be skipped (fail under CI=true); set GATEWAY_TEST_PG_ADMIN_URL"
    fi
  fi
fi
fi
if is_root && command -v redis-server >/dev/null; then
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    step "starting Redis on 127.0.0.1:6379"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
  fi
fi

# --- Python environment -------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  step "creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "Python 3.11 or newer needed, found $("$PYTHON" --version)" >&2; exit 1; }
  "$PYTHON" -m venv .venv
fi
# Dependencies from the lock file, each checked against its hash (scripts/lock makes it);
# then the project itself, editable, without resolving anything again.
lock="requirements/${EXTRAS:-prod}.txt"
step "installing pinned dependencies: pip install --require-hashes -r $lock"
.venv/bin/python -m pip install --disable-pip-version-check -q --require-hashes -r "$lock"
target="."
[ -n "${EXTRAS:-}" ] && target=".[${EXTRAS}]"
step "installing the project: pip install --no-deps -e '$target'"
.venv/bin/python -m pip install --disable-pip-version-check -q --no-deps -e "$target"

