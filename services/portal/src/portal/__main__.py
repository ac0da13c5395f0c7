"""`python -m portal`: run the portal (identity, pages, gateway to the services)."""

from desk_platform.runtime import run_service
from portal.bootstrap import build

if __name__ == "__main__":
    run_service(build)
