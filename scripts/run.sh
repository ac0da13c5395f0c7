#!/usr/bin/env bash
# Run the whole system on this machine, doing all set-up itself (fresh machine included):
#   uv + dependencies -> real PostgreSQL and Kafka (deploy/local/infra.sh, or DATABASE_URL /
#   KAFKA_BOOTSTRAP_SERVERS when set) -> SMTP sink + intake, workflow, sla, notifier processes.
#
#   bash scripts/run.sh [--intake-port 8001 --workflow-port 8002 --sla-port 8003 --smtp-port 2525
#                        --mail-port 2526 --notifier-port 8004 --gateway-port 8005]
#
# Prints the API addresses (every process answers /health, /ready, /metrics: the notifier on
# :8004, the e-mail gateway on :8005); Ctrl-C stops the services (the servers stay up).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/setup.sh
exec uv run --frozen python deploy/local/system.py "$@"
