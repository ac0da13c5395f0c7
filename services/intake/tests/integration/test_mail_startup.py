"""`python -m intake.mail` does not start with settings that would believe any From address in
production, nor as `MAIL_VERIFY=mx` without the authserv-ids of the MX: a clear log line, exit 2,
before it touches a server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

UNREACHABLE = {
    "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
    "LOG_FORMAT": "json",
}


def start(**env: str) -> subprocess.CompletedProcess[str]:
    settings = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "DESK_"))}
    return subprocess.run(
        [sys.executable, "-m", "intake.mail"],
        env={**settings, **UNREACHABLE, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def refusal(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    lines = [json.loads(line) for line in (done.stdout + done.stderr).splitlines()
             if line.startswith("{")]  # fmt: skip
    (refused,) = [line for line in lines if line.get("event") == "mail_gateway_not_started"]
    return refused


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"DESK_ENV": "production", "MAIL_VERIFY": "off"}, "refused with DESK_ENV=production"),
        ({"MAIL_VERIFY": "mx"}, "needs MAIL_AUTHSERV_IDS"),
    ],
)
def test_the_gateway_refuses_to_start_unprotected(env: dict[str, str], says: str) -> None:
    done = start(**env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in refusal(done)["reason"]
