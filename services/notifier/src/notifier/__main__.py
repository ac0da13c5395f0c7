"""`python -m notifier`: run the notifier (ticket-event consumer and SMTP delivery)."""

from desk_platform.runtime import run_service
from notifier.bootstrap import build

if __name__ == "__main__":
    run_service(build)
