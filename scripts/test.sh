#!/usr/bin/env bash
# `make test`: single-head checks for every app's Alembic history, then the pytest suite once
# per backend: SQLite, and PostgreSQL when a server answers at UPSTANDER_TEST_PG_URL. Each
# backend's pass runs as a few worker processes side by side, which split its modules between
# them (a worker waiting on a timeout or a started process leaves the core to another); each
# process makes only databases named after itself, so they, and other runs on the machine,
# never touch each other's (see docs/testing.md).
#
#   UPSTANDER_TEST_BACKEND   set here for each worker (sqlite, postgresql); the tests read it
#   UPSTANDER_TEST_PG_URL    PostgreSQL admin URL (default postgresql://postgres@127.0.0.1:5432/postgres)
#   UPSTANDER_TEST_WORKERS   pytest processes per backend (default 1)
#   UPSTANDER_TEST_PARALLEL  1 (default): every worker at once; 0: one process per backend,
#                            one backend after the other
#   CI=true                  an unreachable PostgreSQL is a failure, not a skip
#   UPSTANDER_TEST_SHARE_DIR set here: the folder in which the processes claim modules, so each
#                            module runs once, and the tests that touch no database run once
#                            in all, in whichever process is free first (tests/conftest.py)
#
# Extra arguments go to every pytest process: scripts/test.sh tests/cases -k transitions
set -uo pipefail
cd "$(dirname "$0")/.."

RUN=(uv run --no-sync)
if ! command -v uv >/dev/null 2>&1; then RUN=(python3 -m uv run --no-sync); fi
export UPSTANDER_TEST_PG_URL="${UPSTANDER_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
PARALLEL="${UPSTANDER_TEST_PARALLEL:-1}"
WORKERS="${UPSTANDER_TEST_WORKERS:-1}"
# Every Python process here (pytest, and the app processes some tests start) would otherwise
# compile ~2,600 modules from source when PYTHONDONTWRITEBYTECODE is set. The environment's
# bytecode is compiled once by `make install` (uv's --compile-bytecode, into the packages'
# __pycache__); the project's own modules are cached beside their sources on first import
# (__pycache__ is ignored by git, so the tree stays clean).
unset PYTHONDONTWRITEBYTECODE
# Each pytest process ends as soon as it has reported and cleaned up (tests/conftest.py).
export UPSTANDER_TEST_FAST_EXIT=1
# A module that fails to import is reported as an error (and fails the run) without stopping the
# pass: the other tests still run and report.
PYTEST_OPTIONS=(-q --durations=15 --continue-on-collection-errors)
LOG_DIR="$(mktemp -d)"
worker_pids=()
cleanup() {
  # A worker runs as `subshell -> uv -> pytest`; stopping uv stops its pytest too.
  for pid in "${worker_pids[@]}"; do
    pkill -TERM -P "$pid" 2>/dev/null
    kill "$pid" 2>/dev/null
  done
  rm -rf "$LOG_DIR"
}
trap cleanup EXIT

failed=0
total_passed=0
total_failed=0
total_skipped=0

say() { printf '\n==> %s\n' "$*"; }

# -- 1. exactly one Alembic head per app (in one Python process) ------------------------------
say "alembic: one head per app"
if ! "${RUN[@]}" python - gateway services/intake services/cases services/training services/notify <<'PY'
import os, sys
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

failed = False
root = Path.cwd()
for folder in sys.argv[1:]:
    if not (root / folder / "alembic.ini").is_file():
        print(f"  {folder:<20} skipped (no alembic.ini yet)")
        continue
    os.chdir(root / folder)
    try:
        heads = ScriptDirectory.from_config(Config("alembic.ini")).get_heads()
    except Exception as error:
        print(f"  {folder:<20} FAILED: alembic heads failed: {type(error).__name__}: {error}")
        failed = True
        continue
    if len(heads) == 1:
        print(f"  {folder:<20} ok: {heads[0]} (head)")
    else:
        print(f"  {folder:<20} FAILED: {len(heads)} heads (must be exactly 1): {sorted(heads)}")
        failed = True
sys.exit(1 if failed else 0)
PY
then
  failed=1
fi

# -- 2. pytest on each backend ----------------------------------------------------------------
# `start_pytest BACKEND LOG ARGS...` runs one pass, writing its output to LOG and its exit code
# to LOG.code. `finish_pytest BACKEND` reads them: sets `outcome` and adds the closing counts.
start_pytest() {
  local backend="$1" log="$2"; shift 2
  : >"$log"
  # A run id given to the run is made unique per worker (database names carry it).
  local run_id="${UPSTANDER_TEST_RUN_ID:-}"
  [[ -z "$run_id" ]] || run_id="${run_id}_${backend:0:1}$(basename "$log" .log | tr -cd '0-9')"
  UPSTANDER_TEST_RUN_ID="$run_id" UPSTANDER_TEST_BACKEND="$backend" "${RUN[@]}" pytest "${PYTEST_OPTIONS[@]}" "$@" >"$log" 2>&1
  echo $? >"$log.code"
}

finish_pytest() {
  local log="$1"
  local code
  code="$(cat "$log.code" 2>/dev/null || echo 1)"
  # pytest's summary line, e.g. "3 failed, 40 passed, 2 skipped, 1 error in 9.1s".
  local summary
  summary="$(grep -E '[0-9]+ (passed|failed|skipped|errors?|deselected).* in [0-9.]+s' "$log" | tail -n 1)"
  local n pass_failed=0
  n=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+' || echo 0); total_passed=$((total_passed + n))
  n=$(grep -oE '[0-9]+ failed' <<<"$summary" | grep -oE '[0-9]+' || echo 0); pass_failed=$((pass_failed + n))
  n=$(grep -oE '[0-9]+ errors?' <<<"$summary" | grep -oE '[0-9]+' || echo 0); pass_failed=$((pass_failed + n))
  n=$(grep -oE '[0-9]+ skipped' <<<"$summary" | grep -oE '[0-9]+' || echo 0); total_skipped=$((total_skipped + n))
  case "$code" in
    0) outcome=passed ;;
    5) outcome="failed (no tests collected)"; failed=1 ;;
    *) outcome="failed (pytest exit $code)"; failed=1 ;;
  esac
  # A pass that failed without a failing test (no tests, a usage error) counts as one failure.
  if [[ "$code" != 0 && "$pass_failed" -eq 0 ]]; then pass_failed=1; fi
  total_failed=$((total_failed + pass_failed))
}

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
  postgresql_reachable=1
else
  postgresql_reachable=0
fi

started=$SECONDS
# Every test process of the run shares one folder: each module is claimed by exactly one of
# them (tests/conftest.py), so the workers of a backend split its modules, and the modules
# that touch no database run once in all, in whichever process is free first.
export UPSTANDER_TEST_SHARE_DIR="$LOG_DIR/shared"
backends=(sqlite)
if [[ "$postgresql_reachable" == 1 ]]; then backends+=(postgresql); fi
if [[ "$PARALLEL" == 0 ]]; then WORKERS=1; fi

# `run_backend BACKEND`: its workers side by side, each with its own log.
run_backend() {
  local backend="$1" worker
  shift
  for ((worker = 1; worker <= WORKERS; worker++)); do
    start_pytest "$backend" "$LOG_DIR/$backend.$worker.log" "$@" &
    worker_pids+=("$!")
  done
}

worker_pids=()
if [[ "$PARALLEL" != 0 ]]; then
  say "pytest: ${WORKERS} worker(s) per backend (${backends[*]}), side by side; the first SQLite worker's output follows, the others' after it"
  : >"$LOG_DIR/sqlite.1.log"  # exists before `tail` opens it
  for backend in "${backends[@]}"; do run_backend "$backend" "$@"; done
  tail -n +1 -f --pid="${worker_pids[0]}" "$LOG_DIR/sqlite.1.log" 2>/dev/null
  wait "${worker_pids[@]}"
else
  for backend in "${backends[@]}"; do
    say "pytest on $backend"
    start_pytest "$backend" "$LOG_DIR/$backend.1.log" "$@"
    cat "$LOG_DIR/$backend.1.log"
  done
fi
worker_pids=()

declare -A outcomes
for backend in "${backends[@]}"; do
  outcomes[$backend]=passed
  for ((worker = 1; worker <= WORKERS; worker++)); do
    log="$LOG_DIR/$backend.$worker.log"
    if [[ "$PARALLEL" != 0 && ! ( "$backend" == sqlite && "$worker" == 1 ) ]]; then
      say "pytest on $backend, worker $worker"
      cat "$log"
    fi
    finish_pytest "$log"
    [[ "$outcome" == passed ]] || outcomes[$backend]="$outcome"
  done
done
sqlite_outcome="${outcomes[sqlite]}"
if [[ "$postgresql_reachable" == 1 ]]; then
  postgresql_outcome="${outcomes[postgresql]}"
elif [[ "${CI:-}" == "true" ]]; then
  postgresql_outcome="failed (unreachable; CI must run both backends)"
  failed=1
  total_failed=$((total_failed + 1))
else
  postgresql_outcome="skipped (unreachable)"
fi

say "summary"
echo "backends: sqlite=$sqlite_outcome postgresql=$postgresql_outcome ($((SECONDS - started))s of pytest)"
# CPU seconds (user, system) of everything this script ran: unlike the wall time, other work
# on the machine does not stretch them.
times >"$LOG_DIR/times"  # no pipe: in a subshell, `times` would count only the subshell
echo "cpu: $(tail -n 1 "$LOG_DIR/times" | sed 's/ / user, /; s/$/ system/') (pytest passes and their children)"
# The closing line: tests passed and failed over both passes (a pass that could not run counts
# as one failure).
echo "total: $total_passed passed, $total_failed failed, $total_skipped skipped"
exit "$failed"
