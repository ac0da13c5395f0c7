"""docker-compose.yml: valid against the Compose specification, and consistent with the services'
settings (every variable a real setting, ports as the processes listen and as README says)."""

from __future__ import annotations

import ast
import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from deploy_checks import setting_names

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SERVICE_IMAGE = "deploy/service.Dockerfile"
# compose service -> the deploy/local/system.py options giving its host ports (HTTP first)
HOST_PORTS = {
    "portal": ("--portal-port",),
    "intake": ("--intake-port",),
    "workflow": ("--workflow-port",),
    "sla": ("--sla-port",),
    "notifier": ("--notifier-port",),
    "mail-gateway": ("--gateway-port", "--mail-port"),
}
URL = re.compile(r"^https?://([a-z0-9-]+):(\d+)(/.*)?$")


def compose() -> dict[str, Any]:
    """The compose file, anchors and merge keys resolved."""
    return dict(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")))


def desk_processes(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run a desk process (built from the service image, with settings)."""
    return {
        name: service
        for name, service in document["services"].items()
        if (service.get("build") or {}).get("dockerfile") == SERVICE_IMAGE
        and service.get("environment")
    }


def system_defaults() -> dict[str, int]:
    """The port options of deploy/local/system.py and their defaults (what README tells)."""
    tree = ast.parse((ROOT / "deploy/local/system.py").read_text(encoding="utf-8"))
    defaults = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            keywords = {k.arg: k.value for k in node.keywords}
            first = node.args[0] if node.args else None
            default = keywords.get("default")
            if (
                isinstance(first, ast.Constant)
                and isinstance(default, ast.Constant)
                and str(first.value).endswith("-port")
            ):
                defaults[str(first.value)] = int(str(default.value))
    return defaults


def published(service: dict[str, Any]) -> list[tuple[int, int]]:
    """(host port, container port) of a service's `ports` ("ip:host:container")."""
    pairs = []
    for entry in service.get("ports", []):
        *_, host, container = str(entry).split(":")
        pairs.append((int(host), int(container)))
    return pairs


def listening(service: dict[str, Any]) -> set[int]:
    """The ports a desk process listens on in its container: HTTP_PORT, MAIL_PORT."""
    env = service["environment"]
    return {int(env[key]) for key in ("HTTP_PORT", "MAIL_PORT") if key in env}


def compose_problems(document: dict[str, Any]) -> list[str]:
    """Every variable set for a desk process is a setting; every port it publishes is one it
    listens on, on the host port README (deploy/local/system.py) gives; every URL naming a
    compose service names a port that service listens on."""
    known, defaults, problems = setting_names(), system_defaults(), []
    processes = desk_processes(document)
    for name, service in processes.items():
        problems += [f"{name}: {v} is no field of Settings"
                     for v in service["environment"] if v not in known]  # fmt: skip
        wanted = sorted(defaults[option] for option in HOST_PORTS.get(name, ()))
        ports = published(service)
        if sorted(host for host, _ in ports) != wanted:
            problems.append(f"{name}: host ports {sorted(h for h, _ in ports)}, README: {wanted}")
        problems += [f"{name}: publishes {c}, listens on {sorted(listening(service))}"
                     for _, c in ports if c not in listening(service)]  # fmt: skip
        for variable, value in service["environment"].items():
            match = URL.match(str(value))
            host = match.group(1) if match else ""
            if (
                match
                and host in processes
                and int(match.group(2)) not in listening(processes[host])
            ):
                problems.append(f"{name}: {variable} names a port {host} lacks")
    return problems


def test_compose_file_follows_the_compose_specification() -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    broken = compose()
    broken["services"]["intake"]["ports"] = "8001:8000"  # a string, not a list
    path = tmp_path / "compose.yml"
    path.write_text(yaml.safe_dump(broken))
    checker = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0


def test_every_desk_process_is_in_compose() -> None:
    assert set(desk_processes(compose())) == set(HOST_PORTS)


def test_compose_is_consistent_with_the_settings_and_the_ports() -> None:
    assert compose_problems(compose()) == []


def test_the_consistency_check_rejects_unknown_variables_and_wrong_ports() -> None:
    broken = copy.deepcopy(compose())
    broken["services"]["sla"]["environment"] = dict(broken["services"]["sla"]["environment"])
    broken["services"]["sla"]["environment"]["HTTP_PROT"] = "8000"
    broken["services"]["workflow"]["ports"] = ["127.0.0.1:8002:8080"]
    broken["services"]["notifier"]["ports"] = ["127.0.0.1:9004:8000"]
    portal = dict(broken["services"]["portal"]["environment"], WORKFLOW_URL="http://workflow:80")
    broken["services"]["portal"]["environment"] = portal
    assert compose_problems(broken) == [
        "workflow: publishes 8080, listens on [8000]",
        "sla: HTTP_PROT is no field of Settings",
        "notifier: host ports [9004], README: [8004]",
        "portal: WORKFLOW_URL names a port workflow lacks",
    ]
