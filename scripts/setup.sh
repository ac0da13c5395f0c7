#!/usr/bin/env bash
# Shared set-up of scripts/test.sh and scripts/run.sh (sourced, not run): uv (installed with pip
# when missing), `uv sync --all-packages --frozen`, then the real PostgreSQL and Kafka servers via
# deploy/local/infra.sh, whose addresses are exported as DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS.
say() { echo "[setup] $*" >&2; }

# --- uv -------------------------------------------------------------------------------------
export PATH="$HOME/.local/bin:$PATH"
if ! command -v uv >/dev/null 2>&1; then
    say "installing uv with pip"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        command -v apt-get >/dev/null 2>&1 || { say "python3 has no pip and there is no apt-get"; exit 1; }
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >&2
    fi
    # Debian marks its python "externally managed" (PEP 668): fall back to --break-system-packages
    python3 -m pip install --quiet uv \
        || python3 -m pip install --quiet --break-system-packages uv
    hash -r
    command -v uv >/dev/null 2>&1 || { say "uv installed but not on PATH"; exit 1; }
fi
say "$(uv --version)"

# --- Python dependencies (one lock for the workspace) ----------------------------------------
if [ ! -f uv.lock ]; then
    say "uv.lock missing: creating it (commit it!)"
    uv lock
fi
uv sync --all-packages --frozen

# --- the portal's browser-side packages (htmx; axe-core for the browser tests) ---------------
if ! command -v npm >/dev/null 2>&1; then
    say "npm is missing: installing Debian's nodejs and npm"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
fi
lock_sum="$(sha256sum services/portal/package-lock.json | cut -d' ' -f1)"
if [ "$(cat services/portal/node_modules/.installed-lock 2>/dev/null)" != "$lock_sum" ]; then
    say "installing the portal's npm packages (npm ci)"
    npm ci --prefix services/portal --no-audit --no-fund --loglevel=error >&2
    echo "$lock_sum" >services/portal/node_modules/.installed-lock
fi

# --- real servers -----------------------------------------------------------------------------
infra_out="$(bash deploy/local/infra.sh start)"
while IFS= read -r line; do
    case "$line" in
        DATABASE_URL=* | KAFKA_BOOTSTRAP_SERVERS=*) export "${line?}" ;;
    esac
done <<<"$infra_out"
: "${DATABASE_URL:?deploy/local/infra.sh start did not report DATABASE_URL}"
: "${KAFKA_BOOTSTRAP_SERVERS:?deploy/local/infra.sh start did not report KAFKA_BOOTSTRAP_SERVERS}"
say "DATABASE_URL=$DATABASE_URL KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS"

