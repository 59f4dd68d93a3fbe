#!/usr/bin/env bash
# `make test`: single-head checks for every app's Alembic history, then the pytest suite on
# SQLite and, when a PostgreSQL server answers at UPSTANDER_TEST_PG_URL, again on PostgreSQL.
#
#   UPSTANDER_TEST_BACKEND  set here for each run (sqlite, postgresql); tests read it
#   UPSTANDER_TEST_PG_URL   PostgreSQL admin URL (default postgresql://postgres@127.0.0.1:5432/postgres)
#   CI=true                 an unreachable PostgreSQL is a failure, not a skip
#
# Extra arguments go to both pytest runs: scripts/test.sh tests/cases -k transitions
set -uo pipefail
cd "$(dirname "$0")/.."

RUN=(uv run --no-sync)
if ! command -v uv >/dev/null 2>&1; then RUN=(python3 -m uv run --no-sync); fi
export UPSTANDER_TEST_PG_URL="${UPSTANDER_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
LOG_DIR="$(mktemp -d)"
trap 'rm -rf "$LOG_DIR"' EXIT

failed=0
total_passed=0
total_failed=0
total_skipped=0

say() { printf '\n==> %s\n' "$*"; }

# -- 1. exactly one Alembic head per app ------------------------------------------------------
say "alembic: one head per app"
for folder in gateway services/intake services/cases services/training services/notify; do
  if [[ ! -f "$folder/alembic.ini" ]]; then
    printf '  %-20s skipped (no alembic.ini yet)\n' "$folder"
    continue
  fi
  if ! heads_output="$(cd "$folder" && "${RUN[@]}" alembic -c alembic.ini heads 2>&1)"; then
    printf '  %-20s FAILED: alembic heads failed\n%s\n' "$folder" "$heads_output"
    failed=1
    continue
  fi
  heads=$(grep -c '(head)' <<<"$heads_output" || true)
  if [[ "$heads" -eq 1 ]]; then
    printf '  %-20s ok: %s\n' "$folder" "$(grep '(head)' <<<"$heads_output")"
  else
    printf '  %-20s FAILED: %s heads (must be exactly 1)\n%s\n' "$folder" "$heads" "$heads_output"
    failed=1
  fi
done

# -- 2. pytest on a backend -------------------------------------------------------------------
# Sets `outcome` to passed/failed and adds pytest's closing counts to the totals.
run_pytest() {
  local backend="$1"; shift
  local log="$LOG_DIR/$backend.log"
  say "pytest on $backend"
  UPSTANDER_TEST_BACKEND="$backend" "${RUN[@]}" pytest -q "$@" 2>&1 | tee "$log"
  local code=${PIPESTATUS[0]}
  # pytest's summary line, e.g. "3 failed, 40 passed, 2 skipped, 1 error in 9.1s".
  local summary
  summary="$(grep -E '[0-9]+ (passed|failed|skipped|errors?|deselected).* in [0-9.]+s' "$log" | tail -n 1)"
  local n
  n=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+' || echo 0); total_passed=$((total_passed + n))
  n=$(grep -oE '[0-9]+ failed' <<<"$summary" | grep -oE '[0-9]+' || echo 0); total_failed=$((total_failed + n))
  n=$(grep -oE '[0-9]+ errors?' <<<"$summary" | grep -oE '[0-9]+' || echo 0); total_failed=$((total_failed + n))
  n=$(grep -oE '[0-9]+ skipped' <<<"$summary" | grep -oE '[0-9]+' || echo 0); total_skipped=$((total_skipped + n))
  case "$code" in
    0) outcome=passed ;;
    5) outcome="failed (no tests collected)"; failed=1 ;;
    *) outcome="failed (pytest exit $code)"; failed=1 ;;
  esac
}

run_pytest sqlite "$@"
sqlite_outcome="$outcome"

say "is PostgreSQL reachable at ${UPSTANDER_TEST_PG_URL%%\?*}?"
if "${RUN[@]}" python - <<'PY'
import asyncio, os, sys
import asyncpg
from sqlalchemy.engine import make_url

url = make_url(os.environ["UPSTANDER_TEST_PG_URL"]).set(drivername="postgresql")

async def check() -> None:
    connection = await asyncpg.connect(url.render_as_string(hide_password=False), timeout=3)
    await connection.close()

try:
    asyncio.run(asyncio.wait_for(check(), 4))
except Exception as error:
    print(f"  no: {type(error).__name__}: {error}")
    sys.exit(1)
print("  yes")
PY
then
  run_pytest postgresql "$@"
  postgresql_outcome="$outcome"
elif [[ "${CI:-}" == "true" ]]; then
  postgresql_outcome="failed (unreachable; CI must run both backends)"
  failed=1
else
  postgresql_outcome="skipped (unreachable)"
fi

say "summary"
echo "backends: sqlite=$sqlite_outcome postgresql=$postgresql_outcome"
echo "total: $total_passed passed, $total_failed failed, $total_skipped skipped"
exit "$failed"
