#!/usr/bin/env bash
# Run every test on this machine, doing all set-up itself (fresh machine included):
#   uv (installed with pip when missing) -> `uv sync --all-packages --frozen` -> real PostgreSQL and
#   Kafka via deploy/local/infra.sh (or DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS when set) -> pytest.
#
#   bash scripts/test.sh [pytest args...]
#
# Exit code: pytest's; "no tests collected" (5) counts as a failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { echo "[test.sh] $*" >&2; }

source scripts/setup.sh

# --- tests --------------------------------------------------------------------------------------
rc=0
uv run --frozen pytest "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
    say "pytest collected no tests: failing"
    exit 1
fi
exit "$rc"
