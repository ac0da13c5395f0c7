"""`python -m intake`: run the intake service (HTTP API + outbox relay)."""

from desk_platform.runtime import run_service
from intake.bootstrap import build

if __name__ == "__main__":
    run_service(build)
