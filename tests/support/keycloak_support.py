"""A real Keycloak for the single sign-on tests, started and stopped by the test session itself.

`keycloak` (a pytest session fixture) resolves the Keycloak distribution with Maven and unzips it
once (`deploy/local/keycloak.sh resolve`, into the git-ignored deploy/local/keycloak-dist), finds
a JDK 21 or newer (`keycloak.sh java-home`: Keycloak 26 refuses Java 17; a clear failure names
what is missing, the tests are never skipped), runs `kc.sh start-dev` on free ports of
127.0.0.1, waits for OIDC discovery and stops it at the end of the session, whatever happened.
Its output goes to `.state/keycloak/keycloak.log`.

`desk_realm(keycloak, portal_url)` then makes, through the admin REST API, the realm `desk`: a
confidential client `portal` (standard flow only, PKCE S256 required, its redirect URI the
portal's `/sso/callback`, a secret), a mapper that puts group membership (full paths) into the
ID token's `groups` claim, groups and the `PEOPLE` below (e-mail verified, or not, passwords,
groups). A realm an earlier session made from the same definition is kept (see `desk_realm`).

The server keeps its H2 database in the distribution's `data/` between sessions (measured on
two cores: a warm start answers in 12-25 s, the very first, which also re-augments the
distribution for dev mode and makes the schema, in 43-65 s), so the bootstrap administrator is
the same every time. One session at a time uses a distribution (a lock file); a Keycloak left
running by a killed session is recognised by its pid file and stopped first.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy/local/keycloak.sh"
STATE = Path(os.environ.get("DESK_STATE_DIR") or ROOT / ".state") / "keycloak"
LOG = STATE / "keycloak.log"
# the bootstrap administrator of a throw-away server listening on 127.0.0.1 only
ADMIN_USER, ADMIN_PASSWORD = "admin", "desk-dev-admin"
START_TIMEOUT = float(os.environ.get("KEYCLOAK_START_TIMEOUT", "180"))
STOP_TIMEOUT = 30.0
LOCK_TIMEOUT = 900.0
# C1 only: a test server lives minutes, and on two cores the optimising compiler's start-up work
# costs more than it gives back. add-opens quiets an error Java 24+ prints at every shutdown.
JAVA_OPTS_APPEND = "-XX:TieredStopAtLevel=1 --add-opens=java.base/java.lang=ALL-UNNAMED"

REALM = "desk"
CLIENT_ID = "portal"
GROUPS_CLAIM = "groups"
FINGERPRINT_ATTRIBUTE = "desk.test.fingerprint"


@dataclass(frozen=True)
class Person:
    """A user of the test realm."""

    username: str
    password: str
    email: str
    first_name: str
    last_name: str
    groups: tuple[str, ...]
    email_verified: bool = True


PEOPLE = (
    Person(
        "lea",
        "lea-password-1",
        "lea.lead@desk.example",
        "Léa",
        "Lead",
        ("/desk/erp-vendor/team_lead", "/desk/saas-desk/agent"),
    ),
    Person("omar", "omar-password-1", "omar@partner.example", "Omar", "Outside", ("/partners",)),
    Person(
        "una",
        "una-password-1",
        "una@desk.example",
        "Una",
        "Unverified",
        ("/desk/erp-vendor/team_lead",),
        email_verified=False,
    ),
)
# every group a person above is in, and one nobody is in
GROUPS = {"desk": {"erp-vendor": {"team_lead": {}, "front_desk": {}}, "saas-desk": {"agent": {}}}}
GROUPS_OUTSIDE = {"partners": {}}


@dataclass(frozen=True)
class Keycloak:
    """A running Keycloak: its address and how long it took to answer discovery."""

    url: str
    started_in: float
    log: Path


@dataclass(frozen=True)
class SsoRealm:
    """The test realm as the portal sees it: issuer, client credentials, people."""

    keycloak: Keycloak
    issuer: str
    client_id: str
    client_secret: str
    portal_url: str
    people: Mapping[str, Person]


def _script(command: str) -> str:
    done = subprocess.run(
        ["bash", str(SCRIPT), command], capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        raise RuntimeError(f"deploy/local/keycloak.sh {command} failed:\n{done.stderr.strip()}")
    return done.stdout.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One test session at a time runs this distribution's Keycloak (it owns the H2 files)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"another test session held {lock_path} for {LOCK_TIMEOUT:.0f}s"
                    ) from None
                time.sleep(1.0)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _group_alive(pgid: int, child: subprocess.Popen[bytes] | None) -> bool:
    if child is not None:
        child.poll()  # reap our own child: a zombie still counts as a member of its group
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_group(
    pgid: int, child: subprocess.Popen[bytes] | None = None, log: IO[str] | None = None
) -> None:
    """Stop the process group `pgid` (kc.sh and its JVM) that this module started; `child` is
    its leader when this process started it."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if not _group_alive(pgid, child):
            return
        time.sleep(0.2)
    if log:
        log.write(f"=== Keycloak did not stop within {STOP_TIMEOUT:.0f}s: SIGKILL ===\n")
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _stop_leftover(pid_file: Path, home: Path) -> None:
    """Stop a Keycloak of this distribution that a killed session left running."""
    try:
        pgid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pgid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return
    if str(home) in cmdline:  # kc.sh, or the JVM it exec-ed after a re-augmentation
        _stop_group(pgid)
    pid_file.unlink(missing_ok=True)


def _wait_for_discovery(process: subprocess.Popen[bytes], url: str, started: float) -> None:
    discovery = f"{url}/realms/master/.well-known/openid-configuration"
    deadline = started + START_TIMEOUT
    with httpx.Client(timeout=2.0) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"Keycloak exited with {process.returncode} during start-up "
                    f"(log {LOG}):\n{_tail(LOG)}"
                )
            try:
                if client.get(discovery).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Keycloak did not answer {discovery} within {START_TIMEOUT:.0f}s "
                    f"(log {LOG}):\n{_tail(LOG)}"
                )
            time.sleep(0.3)


@contextmanager
def running_keycloak() -> Iterator[Keycloak]:
    """Keycloak `start-dev` on free ports of 127.0.0.1 until the block ends (stopped even when
    the block fails)."""
    with _exclusive(STATE / "keycloak.lock"):
        home = Path(_script("resolve"))
        java_home = _script("java-home")
        pid_file = STATE / "keycloak.pid"
        _stop_leftover(pid_file, home)
        port, management_port = _free_port(), _free_port()
        env = {
            **os.environ,
            "JAVA_HOME": java_home,
            "KC_BOOTSTRAP_ADMIN_USERNAME": ADMIN_USER,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "JAVA_OPTS_APPEND": JAVA_OPTS_APPEND,
        }
        command = [
            "bash",
            str(home / "bin/kc.sh"),
            "start-dev",
            f"--http-port={port}",
            "--http-host=127.0.0.1",
            f"--http-management-port={management_port}",
        ]
        with LOG.open("a") as log:
            when = time.strftime("%F %T")
            log.write(f"\n=== {when} {' '.join(command)}, JAVA_HOME={java_home}\n")
            log.flush()
            started = time.monotonic()
            process = subprocess.Popen(
                command,
                cwd=home,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kc.sh and the JVM stop together
            )
            pid_file.write_text(str(process.pid))
            try:
                url = f"http://127.0.0.1:{port}"
                _wait_for_discovery(process, url, started)
                elapsed = time.monotonic() - started
                log.write(f"=== discovery answered after {elapsed:.1f}s on {url}\n")
                log.flush()
                yield Keycloak(url=url, started_in=elapsed, log=LOG)
            finally:
                log.flush()
                _stop_group(process.pid, process, log)
                process.wait(timeout=STOP_TIMEOUT)
                pid_file.unlink(missing_ok=True)
                log.write(f"=== stopped {time.strftime('%F %T')}\n")


def admin_client(keycloak: Keycloak) -> httpx.Client:
    """An HTTP client of the admin REST API, signed in as the bootstrap administrator."""
    answer = httpx.post(
        f"{keycloak.url}/realms/master/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": "admin-cli",
            "username": ADMIN_USER,
            "password": ADMIN_PASSWORD,
        },
        timeout=30.0,
    )
    if answer.status_code != 200:
        raise RuntimeError(
            f"Keycloak refused its bootstrap administrator ({answer.status_code} {answer.text}); "
            "a database made with other credentials? Delete the distribution's data/ folder "
            "(deploy/local/keycloak-dist/keycloak-*/data) to start afresh."
        )
    token = answer.json()["access_token"]
    return httpx.Client(
        base_url=f"{keycloak.url}/admin/realms",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30.0,
    )


def _groups(tree: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"name": name, "subGroups": _groups(children)} for name, children in tree.items()]


def realm_representation(portal_url: str, client_secret: str) -> dict[str, Any]:
    """The test realm, as Keycloak's admin API takes it: its client (with the groups mapper)
    and groups; the people are added one by one (`user_representation`)."""
    groups_mapper = {
        "name": "desk groups",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-group-membership-mapper",
        "config": {
            "claim.name": GROUPS_CLAIM,
            "full.path": "true",
            "id.token.claim": "true",
            "access.token.claim": "false",
            "userinfo.token.claim": "false",
            "introspection.token.claim": "false",
        },
    }
    client = {
        "clientId": CLIENT_ID,
        "name": "Support desk portal",
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "secret": client_secret,
        "standardFlowEnabled": True,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": False,
        "redirectUris": [f"{portal_url}/sso/callback"],
        "webOrigins": [portal_url],
        "attributes": {"pkce.code.challenge.method": "S256"},
        "protocolMappers": [groups_mapper],
    }
    return {
        "realm": REALM,
        "enabled": True,
        "sslRequired": "none",  # plain HTTP on 127.0.0.1
        "registrationAllowed": False,
        "verifyEmail": False,  # an unverified address signs in; the portal must refuse it
        "loginWithEmailAllowed": True,
        "groups": _groups({**GROUPS, **GROUPS_OUTSIDE}),
        "clients": [client],
    }


def user_representation(person: Person) -> dict[str, Any]:
    """One of `PEOPLE` as the admin API creates a user: password, groups, e-mail verified or not."""
    return {
        "username": person.username,
        "enabled": True,
        "email": person.email,
        "emailVerified": person.email_verified,
        "firstName": person.first_name,
        "lastName": person.last_name,
        "credentials": [{"type": "password", "value": person.password, "temporary": False}],
        "groups": list(person.groups),
        "requiredActions": [],
    }


def _fingerprint(portal_url: str) -> str:
    what = {
        "realm": realm_representation(portal_url, client_secret=""),
        "people": [user_representation(p) for p in PEOPLE],
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32]


def _made_earlier(admin: httpx.Client, fingerprint: str) -> str | None:
    """The client secret of a realm an earlier session made exactly as this one would."""
    realm = admin.get(f"/{REALM}")
    if (
        realm.status_code != 200
        or realm.json().get("attributes", {}).get(FINGERPRINT_ATTRIBUTE) != fingerprint
    ):
        return None
    clients = admin.get(f"/{REALM}/clients", params={"clientId": CLIENT_ID}).json()
    if len(clients) != 1:
        return None
    secret = admin.get(f"/{REALM}/clients/{clients[0]['id']}/client-secret")
    value = secret.json().get("value") if secret.status_code == 200 else None
    return value if isinstance(value, str) and value else None


def _answered(answer: httpx.Response, expected: int, what: str) -> None:
    if answer.status_code != expected:
        raise RuntimeError(f"Keycloak's admin API: {what}: {answer.status_code} {answer.text}")


def desk_realm(keycloak: Keycloak, portal_url: str) -> SsoRealm:
    """The realm `desk` for a portal reached at `portal_url`: made through the admin REST API
    (replacing any other realm of that name), or kept when an earlier session made it from the
    very same definition (a realm attribute holds the definition's fingerprint): making one
    costs 5-15 s on two cores."""
    fingerprint = _fingerprint(portal_url)
    with admin_client(keycloak) as admin:
        client_secret = _made_earlier(admin, fingerprint)
        if client_secret is None:
            client_secret = secrets.token_urlsafe(24)
            gone = admin.delete(f"/{REALM}")
            if gone.status_code != 404:
                _answered(gone, 204, f"deleting the old realm {REALM}")
            realm = realm_representation(portal_url, client_secret)
            _answered(admin.post("", json=realm), 201, f"creating the realm {REALM}")
            for person in PEOPLE:
                made = admin.post(f"/{REALM}/users", json=user_representation(person))
                _answered(made, 201, f"creating the user {person.username}")
            # the fingerprint last: a realm half made by a session that died is made again
            mark = {"realm": REALM, "attributes": {FINGERPRINT_ATTRIBUTE: fingerprint}}
            _answered(admin.put(f"/{REALM}", json=mark), 204, "marking the realm as complete")
    issuer = f"{keycloak.url}/realms/{REALM}"
    discovery = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=30.0)
    if discovery.status_code != 200 or discovery.json().get("issuer") != issuer:
        raise RuntimeError(f"realm {REALM} has no discovery: {discovery.status_code}")
    return SsoRealm(
        keycloak=keycloak,
        issuer=issuer,
        client_id=CLIENT_ID,
        client_secret=client_secret,
        portal_url=portal_url,
        people={p.username: p for p in PEOPLE},
    )


class LoopbackBrowser(httpx.AsyncBaseTransport):
    """The network as a browser sees it from 127.0.0.1. Browsers take http://127.0.0.1 for a
    secure context (a potentially trustworthy origin): they keep and send back the `Secure`
    cookies it sets, and Keycloak marks its login cookies Secure even over plain HTTP. Python's
    cookie jar would never send them over HTTP, so this drops `Secure` from the cookies of
    loopback HTTP answers before the jar sees them."""

    def __init__(self) -> None:
        self.network = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.network.handle_async_request(request)
        if request.url.scheme != "http" or request.url.host not in ("127.0.0.1", "localhost"):
            return response
        headers = [
            (name, _SECURE.sub(b"", value) if name.lower() == b"set-cookie" else value)
            for name, value in response.headers.raw
        ]
        return httpx.Response(
            response.status_code,
            headers=headers,
            stream=response.stream,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.network.aclose()


_SECURE = re.compile(rb";\s*secure\s*(?=;|$)", re.IGNORECASE)


@pytest.fixture(scope="session")
def keycloak(pytestconfig: pytest.Config) -> Iterator[Keycloak]:
    """A real Keycloak for the whole session (resolved, started, stopped: see the module)."""
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    with running_keycloak() as server:
        line = f"[keycloak] answering on {server.url} after {server.started_in:.1f}s ({server.log})"
        if capture is not None:
            with capture.global_and_fixture_disabled():  # shown, not captured with the test
                print(f"\n{line}", flush=True)
        yield server
