"""The choice of the tests' servers and the containers' configuration, without a Docker engine:
selection order, forcing, images and settings as in docker-compose.yml, and the engine probe
answering "no" within its time bound on a machine where no engine answers."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from server_selection import (
    FORCE_VARIABLE,
    ROOT,
    Servers,
    choose_servers,
    container_config,
    docker_answers,
    kafka_start_script,
    needs_docker_answer,
)

BOTH = {"DATABASE_URL": "postgresql://u@db:5432/desk", "KAFKA_BOOTSTRAP_SERVERS": "k:9092"}
ONLY_DB = {"DATABASE_URL": BOTH["DATABASE_URL"]}
ONLY_KAFKA = {"KAFKA_BOOTSTRAP_SERVERS": BOTH["KAFKA_BOOTSTRAP_SERVERS"]}


def compose_service(name: str) -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service: dict[str, Any] = document["services"][name]
    return service


@pytest.mark.parametrize(
    ("env", "docker", "expected"),
    [
        (BOTH, True, Servers.ENV),
        (BOTH, False, Servers.ENV),
        ({}, True, Servers.CONTAINERS),
        ({}, False, Servers.LOCAL),
        (ONLY_DB, True, Servers.LOCAL),
        (ONLY_DB, False, Servers.LOCAL),
        (ONLY_KAFKA, True, Servers.LOCAL),
        ({"DATABASE_URL": "", "KAFKA_BOOTSTRAP_SERVERS": ""}, True, Servers.CONTAINERS),
        ({**BOTH, FORCE_VARIABLE: ""}, True, Servers.ENV),
    ],
)
def test_automatic_order(env: dict[str, str], docker: bool, expected: Servers) -> None:
    assert choose_servers(env, docker_answers=docker) is expected


@pytest.mark.parametrize(
    ("env", "docker", "expected"),
    [
        ({**BOTH, FORCE_VARIABLE: "env"}, False, Servers.ENV),
        ({**BOTH, FORCE_VARIABLE: "containers"}, True, Servers.CONTAINERS),
        ({FORCE_VARIABLE: "Containers "}, True, Servers.CONTAINERS),
        ({FORCE_VARIABLE: "local"}, True, Servers.LOCAL),
        ({**BOTH, FORCE_VARIABLE: "local"}, True, Servers.LOCAL),
    ],
)
def test_forcing(env: dict[str, str], docker: bool, expected: Servers) -> None:
    assert choose_servers(env, docker_answers=docker) is expected


@pytest.mark.parametrize(
    ("env", "docker", "message"),
    [
        ({FORCE_VARIABLE: "docker"}, True, "expected one of env|containers|local"),
        ({**ONLY_DB, FORCE_VARIABLE: "env"}, True, "needs both"),
        ({FORCE_VARIABLE: "env"}, True, "needs both"),
        ({FORCE_VARIABLE: "containers"}, False, "no Docker engine answers"),
    ],
)
def test_forcing_what_cannot_be_done_fails(env: dict[str, str], docker: bool, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        choose_servers(env, docker_answers=docker)


@pytest.mark.parametrize(
    ("env", "asked"),
    [
        ({}, True),
        (BOTH, False),
        (ONLY_DB, False),
        ({FORCE_VARIABLE: "containers"}, True),
        ({**BOTH, FORCE_VARIABLE: "containers"}, True),
        ({FORCE_VARIABLE: "local"}, False),
        ({FORCE_VARIABLE: "env"}, False),
    ],
)
def test_the_engine_is_asked_only_when_the_choice_depends_on_it(
    env: dict[str, str], asked: bool
) -> None:
    assert needs_docker_answer(env) is asked


def test_images_are_pinned_as_in_docker_compose() -> None:
    config = container_config()
    assert config.postgres.image == compose_service("postgres")["image"] == "postgres:15"
    assert config.kafka.image == compose_service("kafka")["image"] == "apache/kafka:4.1.1"


def test_postgres_is_configured_as_in_docker_compose() -> None:
    spec = container_config().postgres
    compose = compose_service("postgres")
    assert dict(spec.env) == compose["environment"]
    assert spec.env["POSTGRES_USER"] == "postgres"
    assert spec.env["POSTGRES_DB"] == "desk"
    assert list(spec.command) == compose["command"]
    assert spec.port == 5432


def test_kafka_runs_kraft_without_auto_creation_and_replication_factor_one() -> None:
    env = container_config().kafka.env
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@localhost:9093"
    assert env["CLUSTER_ID"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    factors = [v for k, v in env.items() if k.endswith(("REPLICATION_FACTOR", "MIN_ISR"))]
    assert factors and set(factors) == {"1"}
    assert "KAFKA_DEFAULT_REPLICATION_FACTOR" in env
    assert not any("ZOOKEEPER" in key for key in env)


def test_kafka_settings_are_those_of_docker_compose_but_the_network_ones() -> None:
    spec = container_config().kafka
    compose = {k: str(v) for k, v in compose_service("kafka")["environment"].items()}
    network = {"KAFKA_CONTROLLER_QUORUM_VOTERS", "KAFKA_ADVERTISED_LISTENERS"}
    assert {k: v for k, v in compose.items() if k not in network} == {
        k: v for k, v in spec.env.items() if k in compose and k not in network
    }
    assert set(spec.env) - set(compose) == {"KAFKA_DEFAULT_REPLICATION_FACTOR"}
    assert all(isinstance(value, str) for value in spec.env.values())


def test_kafka_advertises_the_mapped_port_then_runs_the_image_entry_point() -> None:
    spec = container_config().kafka
    assert spec.port == 9092 and "EXTERNAL://:9092" in spec.env["KAFKA_LISTENERS"]
    script = kafka_start_script(spec, "docker.example", 49153).splitlines()
    assert script[1] == (
        "export KAFKA_ADVERTISED_LISTENERS="
        "INTERNAL://localhost:19092,EXTERNAL://docker.example:49153"
    )
    assert script[-1] == "exec /etc/kafka/docker/run"


def test_no_engine_on_an_absent_socket_says_no_quickly(tmp_path: Path) -> None:
    environment = {"DOCKER_HOST": f"unix://{tmp_path / 'absent.sock'}"}
    began = time.monotonic()
    assert docker_answers(timeout=2.0, environment=environment) is False
    assert time.monotonic() - began < 2.5


@pytest.fixture
def silent_engine() -> Iterator[str]:
    """A TCP address that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"


def test_an_engine_that_never_answers_is_given_up_within_the_timeout(silent_engine: str) -> None:
    began = time.monotonic()
    assert docker_answers(timeout=0.5, environment={"DOCKER_HOST": silent_engine}) is False
    assert time.monotonic() - began < 1.0


def test_this_machine_answers_within_the_bound() -> None:
    """A real call with this machine's environment. Where no engine can be reached (no
    DOCKER_HOST and no default socket, as on our machines) the answer must be no."""
    began = time.monotonic()
    answer = docker_answers(timeout=2.0)
    assert time.monotonic() - began < 2.5
    if not Path("/var/run/docker.sock").exists() and not os.environ.get("DOCKER_HOST"):
        assert answer is False
