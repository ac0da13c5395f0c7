"""`python -m intake.mail`: run the e-mail gateway (SMTP in, requests and comments out)."""

from desk_platform.runtime import run_service
from intake.mail import build

if __name__ == "__main__":
    run_service(build)
