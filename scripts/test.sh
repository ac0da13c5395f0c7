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

# --- the browser tests' Chromium (Debian's: Playwright cannot download its own here) ------------
if [ ! -x /usr/bin/chromium ]; then
    say "installing Debian's chromium for the browser tests"
    sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium fonts-dejavu-core >&2
fi

# --- tests --------------------------------------------------------------------------------------
rc=0
# the slowest tests listed at the end: what to look at when the suite nears its 15 minutes
uv run --frozen pytest --durations=20 "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
    say "pytest collected no tests: failing"
    exit 1
fi
exit "$rc"
