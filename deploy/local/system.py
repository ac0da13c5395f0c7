"""Run the whole system here: the SMTP sink, the portal and the services as separate processes.

    uv run python deploy/local/system.py [--intake-port 8001] [--workflow-port 8002] ...

Expects DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS (scripts/run.sh starts the servers and sets
them). Prints the API addresses, then waits; Ctrl-C or SIGTERM stops every process. The
end-to-end tests start the same processes through `System`.

Identity: a development signing key in the state folder (`<state>/keys/signing/<kid>.pem`, made
once and reused) and the JWKS file publishing it (`<state>/keys/jwks.json`); every process gets
`IDENTITY_SIGNING_KEYS` (the keys' folder) and `IDENTITY_KEYS` (the JWKS file), so intake,
workflow and sla believe tokens signed with that key (`System.signer()`,
`deploy/local/dev_token.py`).

The portal starts first: on a fresh database it imports the shipped directory, every person
active with the development demo password (`<state>/demo-password`, made once), and publishes
it on the directory topic; the services start once it is there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from directory_topic import records_on

from desk_platform.identity import (
    Signer,
    jwks,
    load_signing_keys,
    new_signing_key,
    write_signing_key,
)

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class System:
    database_url: str
    kafka_bootstrap: str
    state: Path
    intake_port: int = field(default_factory=free_port)
    workflow_port: int = field(default_factory=free_port)
    sla_port: int = field(default_factory=free_port)
    smtp_port: int = field(default_factory=free_port)
    mail_port: int = field(default_factory=free_port)  # the e-mail gateway (SMTP in)
    notifier_port: int = field(default_factory=free_port)  # /health, /ready, /metrics only
    gateway_port: int = field(default_factory=free_port)  # the gateway's /health, /ready, ...
    portal_port: int = field(default_factory=free_port)  # sign-in, pages, the API gateway
    replicas: dict[str, int] = field(default_factory=dict)  # e.g. {"notifier": 2}
    log_format: str = "json"
    topic_prefix: str = ""
    # one random key per run, shared by the notifier (signs survey links) and intake (checks)
    survey_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # more environment for every process, e.g. a load test's REQUESTS_*_HOURLY_LIMIT
    environment: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # how each process was started (arguments, extra environment), so it can be started again
    commands: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)

    @property
    def mail_folder(self) -> Path:
        return self.state / "mail"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def signing_keys(self) -> Path:
        """The development keys that sign identity tokens (`IDENTITY_SIGNING_KEYS`)."""
        return self.state / "keys" / "signing"

    @property
    def identity_keys(self) -> Path:
        """The JWKS file publishing their public halves (`IDENTITY_KEYS` of the services)."""
        return self.state / "keys" / "jwks.json"

    def prepare_identity_keys(self) -> None:
        """A development signing key in the state folder (the one there, if any) and the JWKS
        file that publishes the keys of that folder."""
        if not any(self.signing_keys.glob("*.pem")):
            write_signing_key(self.signing_keys, new_signing_key())
        document = json.dumps(jwks(load_signing_keys(self.signing_keys)))
        written = self.identity_keys.with_suffix(".tmp")
        written.write_text(document, encoding="utf-8")
        written.replace(self.identity_keys)  # a process reading it never sees half a file

    @property
    def demo_password(self) -> str:
        """The password of every person of the demonstration directory (made once)."""
        path = self.state / "demo-password"
        if not path.exists():
            self.state.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(12))
            path.chmod(0o600)
        return path.read_text().strip()

    def signer(self) -> Signer:
        """Signs identity tokens that intake, workflow and sla of this system believe."""
        return Signer(load_signing_keys(self.signing_keys))

    def url(self, service: str) -> str:
        """The HTTP address of a process (`intake-mail` is the e-mail gateway)."""
        port = {
            "intake": self.intake_port,
            "workflow": self.workflow_port,
            "sla": self.sla_port,
            "notifier": self.notifier_port,
            "intake-mail": self.gateway_port,
            "portal": self.portal_port,
        }[service]
        return f"http://127.0.0.1:{port}"

    def _env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp_port),
            "WORKFLOW_URL": self.url("workflow"),
            "INTAKE_URL": self.url("intake"),
            "SLA_URL": self.url("sla"),
            "PORTAL_URL": self.url("portal"),
            "LOG_FORMAT": self.log_format,
            "TOPIC_PREFIX": self.topic_prefix,
            "SURVEY_SECRET": os.environ.get("SURVEY_SECRET") or self.survey_secret,
            "IDENTITY_SIGNING_KEYS": str(self.signing_keys),
            "IDENTITY_KEYS": str(self.identity_keys),
            "BLOB_DIR": str(self.state / "blobs"),  # intake, its mail gateway and the portal
            # a developer's machine and the tests may move time (desk_contracts.testclocks);
            # refused with DESK_ENV=production
            "TEST_CLOCKS": os.environ.get("TEST_CLOCKS")
            or ("false" if os.environ.get("DESK_ENV") == "production" else "true"),
            **self.environment,
            **extra,
        }

    def _spawn(self, name: str, args: list[str], **env: str) -> None:
        self.commands[name] = (args, env)
        self.logs.mkdir(parents=True, exist_ok=True)
        log = (self.logs / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, *args],
            env=self._env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    def start(self) -> None:
        self.prepare_identity_keys()
        self._spawn(
            "smtp-sink",
            [
                "-m",
                "notifier.adapters.smtp_sink",
                "--port",
                str(self.smtp_port),
                "--folder",
                str(self.mail_folder),
            ],
        )
        self._spawn(
            "portal", ["-m", "portal"], HTTP_PORT=str(self.portal_port),
            DEMO_PASSWORD=self.demo_password, BLOB_DIR=str(self.state / "blobs"),
        )  # fmt: skip
        self._wait_for_directory()
        self._spawn("intake", ["-m", "intake"], HTTP_PORT=str(self.intake_port))
        self._spawn(
            "intake-mail",
            ["-m", "intake.mail"],
            MAIL_PORT=str(self.mail_port),
            # no MX in front on a developer's machine: the From address is believed as written
            # (refused with DESK_ENV=production); MAIL_VERIFY=self or mx in the environment win
            MAIL_VERIFY=os.environ.get("MAIL_VERIFY") or "off",
            HTTP_PORT=str(self.gateway_port),
        )
        self._spawn("workflow", ["-m", "workflow"], HTTP_PORT=str(self.workflow_port))
        self._spawn("sla", ["-m", "sla"], HTTP_PORT=str(self.sla_port))
        self._spawn("notifier", ["-m", "notifier"], HTTP_PORT=str(self.notifier_port))
        for service, count in self.replicas.items():
            for n in range(2, count + 1):
                port = str(free_port())
                self._spawn(f"{service}-{n}", ["-m", service], HTTP_PORT=port)

    def _wait_for_directory(self, timeout: float = 60.0) -> None:
        """Until the portal published a directory (its import, on a fresh database), so no
        service starts on an empty one."""
        topic = self.topic_prefix + "directory"
        deadline = time.monotonic() + timeout
        while not asyncio.run(records_on(self.kafka_bootstrap, topic)):
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the portal published no directory; see {self.logs}")
            time.sleep(0.2)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until every process's `/ready` answers 200 and the gateway greets on SMTP."""
        deadline = time.monotonic() + timeout
        for service in ("portal", "intake", "workflow", "sla", "notifier", "intake-mail"):
            while True:
                self._check_alive()
                try:
                    with urllib.request.urlopen(self.url(service) + "/ready", timeout=5):
                        break
                except OSError:  # refused, or 503 (HTTPError): not ready yet
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{service} not ready; see {self.logs}") from None
                    time.sleep(0.2)
        while not self._smtp_ready(self.mail_port):
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"intake-mail not ready; see {self.logs}")
            time.sleep(0.2)

    @staticmethod
    def _smtp_ready(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                return sock.recv(3) == b"220"
        except OSError:
            return False

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {self.logs}")

    def stop(self, timeout: float = 20.0) -> dict[str, int | None]:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for name, process in self.processes.items():
            try:
                codes[name] = process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = None
        return codes

    def kill(self, name: str) -> None:
        """SIGKILL one process, as a crash or the OOM killer would: no clean-up of any kind."""
        process = self.processes[name]
        process.kill()
        process.wait(10)

    def restart(self, name: str, timeout: float = 60.0) -> float:
        """Start `name` again (same command, environment and ports), as a supervisor would, and
        wait until it serves again; returns the seconds that took."""
        started = time.monotonic()
        if self.processes[name].poll() is None:
            raise RuntimeError(f"{name} is still running (pid {self.processes[name].pid})")
        log = self.logs / f"{name}.log"
        offset = log.stat().st_size if log.exists() else 0
        args, env = self.commands[name]
        self._spawn(name, args, **env)
        deadline = started + timeout
        while not self._serves(name, log, offset):
            if self.processes[name].poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {self.processes[name].returncode} after its restart; "
                    f"see {log}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not serving {timeout}s after its restart; see {log}")
            time.sleep(0.2)
        return time.monotonic() - started

    def _serves(self, name: str, log: Path, offset: int) -> bool:
        """Its `/ready` answers 200 (the gateway greets on SMTP too, the sink only greets); a
        process without a known port (a replica) has logged `service_started` since `offset`."""
        if name == "smtp-sink":
            return self._smtp_ready(self.smtp_port)
        if name == "intake-mail" and not self._smtp_ready(self.mail_port):
            return False
        try:
            ready = self.url(name) + "/ready"
        except KeyError:
            with log.open("rb") as lines:
                lines.seek(offset)
                return b"service_started" in lines.read()
        try:
            with urllib.request.urlopen(ready, timeout=5):
                return True
        except OSError:  # refused, or 503 (HTTPError): not ready yet
            return False


def demo_accounts() -> list[str]:
    """One line per person of the shipped directory: who to sign in as, to play which part."""
    from desk_policies.directory import load_directory

    lines = []
    for person in load_directory().people:
        if person.organisation:
            part = f"customer of {person.organisation}"
        else:
            part = "staff: " + "; ".join(
                f"{desk} {', '.join(roles)}" for desk, roles in person.roles.items()
            )
        lines.append(f"{person.email:<26} {part}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--intake-port", type=int, default=8001)
    parser.add_argument("--workflow-port", type=int, default=8002)
    parser.add_argument("--sla-port", type=int, default=8003)
    parser.add_argument("--smtp-port", type=int, default=2525)
    parser.add_argument("--mail-port", type=int, default=2526, help="e-mail gateway (SMTP in)")
    parser.add_argument("--notifier-port", type=int, default=8004, help="notifier's /ready ...")
    parser.add_argument("--gateway-port", type=int, default=8005, help="gateway's /ready ...")
    parser.add_argument("--portal-port", type=int, default=8000, help="sign-in, pages, API")
    parser.add_argument("--state", type=Path, default=ROOT / ".state" / "system")
    parser.add_argument("--log-format", default="json", choices=["json", "console"])
    args = parser.parse_args()
    system = System(
        os.environ["DATABASE_URL"],
        os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        args.state,
        args.intake_port,
        args.workflow_port,
        args.sla_port,
        args.smtp_port,
        args.mail_port,
        args.notifier_port,
        args.gateway_port,
        args.portal_port,
        log_format=args.log_format,
    )
    stop = False

    def request_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    system.start()
    try:
        system.wait_ready()
        print(f"portal (sign in here):          {system.url('portal')}  (API docs: /docs)")
        print(f"  every demo account's password: {system.demo_password}")
        for line in demo_accounts():
            print(f"  {line}")
        print(f"agents' console (staff):        {system.url('portal')}/console")
        print(f"intake API (submit requests):   {system.url('intake')}  (docs: /docs)")
        print(f"workflow API (read and act):    {system.url('workflow')}  (docs: /docs)")
        print(f"sla API (clocks of a request):  {system.url('sla')}  (docs: /docs)")
        print(f"SMTP sink: 127.0.0.1:{system.smtp_port}, mail saved in {system.mail_folder}")
        print(
            f"e-mail gateway (SMTP in):       127.0.0.1:{system.mail_port}  "
            "(support@<desk>.example, replies to support@desk.example)"
        )
        print(f"notifier (/health /ready /metrics): {system.url('notifier')}")
        print(f"gateway (/health /ready /metrics):  {system.url('intake-mail')}")
        print("every API above also answers /health, /ready and /metrics")
        print(
            f"identity: tokens signed with {system.signing_keys} "
            "(uv run python deploy/local/dev_token.py --help)"
        )
        print(f"logs: {system.logs}/*.log     Ctrl-C stops everything", flush=True)
        while not stop:
            system._check_alive()
            time.sleep(0.5)
    finally:
        print("stopping...", flush=True)
        system.stop()


if __name__ == "__main__":
    main()
