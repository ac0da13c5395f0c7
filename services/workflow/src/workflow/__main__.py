"""`python -m workflow`: run the workflow service (HTTP API, consumers, outbox relay)."""

from desk_platform.runtime import run_service
from workflow.bootstrap import build

if __name__ == "__main__":
    run_service(build)
