"""`python -m sla`: run the sla service (clock projection, durable timers, relay, HTTP API)."""

from desk_platform.runtime import run_service
from sla.bootstrap import build

if __name__ == "__main__":
    run_service(build)
