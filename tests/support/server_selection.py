"""Which PostgreSQL and Kafka servers a test session runs against, chosen once.

Three paths, each handing the tests DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS:

* `env`: both variables are set: those servers, as they are.
* `containers`: a Docker engine answers: PostgreSQL 15 and Kafka 4.1.1 (KRaft) started with
  testcontainers, with the settings of docker-compose.yml; the topics are created by
  deploy/local/create_topics.py, as on the local path.
* `local`: `deploy/local/infra.sh start`: private servers from Debian's PostgreSQL and the Kafka
  jars (infra.sh still uses a variable that is set and reachable, and starts the other server).

Automatic order: both variables set > Docker engine answering > local servers; with only one
variable set the local path is taken, so that infra.sh keeps that server. `DESK_TEST_SERVERS=
env|containers|local` forces a path. The decision (`choose_servers`) and the containers'
configuration (`container_config`) are pure data; the I/O is in the functions after them.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.postgres import PostgresContainer

ROOT = Path(__file__).resolve().parents[2]
FORCE_VARIABLE = "DESK_TEST_SERVERS"
SERVER_VARIABLES = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")
DOCKER_TIMEOUT_SECONDS = 2.0


class Servers(StrEnum):
    """The three ways to get the servers (the values are those of DESK_TEST_SERVERS)."""

    ENV = "env"
    CONTAINERS = "containers"
    LOCAL = "local"


DESCRIPTIONS = {
    Servers.ENV: "from DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS",
    Servers.CONTAINERS: "PostgreSQL and Kafka containers started with testcontainers",
    Servers.LOCAL: "deploy/local/infra.sh start",
}


# --- the decision (pure) -------------------------------------------------------------------------
def forced(env: Mapping[str, str]) -> Servers | None:
    """The path DESK_TEST_SERVERS forces (None when unset or empty; ValueError when unknown)."""
    value = env.get(FORCE_VARIABLE, "").strip().lower()
    if not value:
        return None
    try:
        return Servers(value)
    except ValueError:
        names = "|".join(s.value for s in Servers)
        raise ValueError(f"{FORCE_VARIABLE}={value!r}: expected one of {names}") from None


def _set(env: Mapping[str, str]) -> list[str]:
    return [name for name in SERVER_VARIABLES if env.get(name)]


def needs_docker_answer(env: Mapping[str, str]) -> bool:
    """Whether `choose_servers` depends on a Docker engine answering (else it is not asked)."""
    force = forced(env)
    if force is not None:
        return force is Servers.CONTAINERS
    return not _set(env)


def choose_servers(env: Mapping[str, str], docker_answers: bool) -> Servers:
    """The path for environment `env`: forced by DESK_TEST_SERVERS, else both variables set >
    a Docker engine answering (and neither variable set) > local servers. ValueError when the
    forced path cannot be taken."""
    force = forced(env)
    if force is Servers.ENV and len(_set(env)) < len(SERVER_VARIABLES):
        raise ValueError(f"{FORCE_VARIABLE}=env needs both {' and '.join(SERVER_VARIABLES)}")
    if force is Servers.CONTAINERS and not docker_answers:
        raise ValueError(f"{FORCE_VARIABLE}=containers but no Docker engine answers")
    if force is not None:
        return force
    if len(_set(env)) == len(SERVER_VARIABLES):
        return Servers.ENV
    if not _set(env) and docker_answers:
        return Servers.CONTAINERS
    return Servers.LOCAL


# --- the containers' configuration (pure) -------------------------------------------------------
@dataclass(frozen=True)
class ContainerSpec:
    """One container: its image, environment, command and the port the tests connect to."""

    image: str
    env: Mapping[str, str]
    command: tuple[str, ...]
    port: int


@dataclass(frozen=True)
class ContainerConfig:
    """The two containers of the `containers` path."""

    postgres: ContainerSpec
    kafka: ContainerSpec


KAFKA_START_SCRIPT = "/tc-start.sh"


def container_config() -> ContainerConfig:
    """PostgreSQL and Kafka as docker-compose.yml runs them, without the compose network: the
    broker's inter-broker and controller listeners are on localhost inside its container, and
    the port the tests use (9092) is advertised once its host port is known (see
    `kafka_start_script`)."""
    postgres = ContainerSpec(
        image="postgres:15",
        env={
            "POSTGRES_USER": "postgres",
            "POSTGRES_DB": "desk",
            "POSTGRES_HOST_AUTH_METHOD": "trust",
        },
        command=("postgres", "-c", "max_connections=200"),
        port=5432,
    )
    kafka = ContainerSpec(
        image="apache/kafka:4.1.1",
        env={
            "CLUSTER_ID": "4L6g3nShT-eMCtK--X86sw",
            "KAFKA_NODE_ID": "1",
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
            "KAFKA_LISTENERS": "INTERNAL://:19092,EXTERNAL://:9092,CONTROLLER://:9093",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
                "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
            ),
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_INTER_BROKER_LISTENER_NAME": "INTERNAL",
            "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
            "KAFKA_DEFAULT_REPLICATION_FACTOR": "1",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
            "KAFKA_HEAP_OPTS": "-Xms256m -Xmx512m",
        },
        command=("/etc/kafka/docker/run",),
        port=9092,
    )
    return ContainerConfig(postgres=postgres, kafka=kafka)


def kafka_start_script(spec: ContainerSpec, host: str, port: int) -> str:
    """The script the Kafka container runs once `spec.port` is mapped to `host:port`: it
    advertises that address to the tests, then starts the image's own entry point."""
    listeners = f"INTERNAL://localhost:19092,EXTERNAL://{host}:{port}"
    command = " ".join(spec.command)
    return f"#!/bin/sh\nexport KAFKA_ADVERTISED_LISTENERS={listeners}\nexec {command}\n"


# --- I/O ----------------------------------------------------------------------------------------
def docker_answers(
    timeout: float = DOCKER_TIMEOUT_SECONDS, environment: Mapping[str, str] | None = None
) -> bool:
    """Whether a Docker engine (DOCKER_HOST, else the default socket) answers a ping within
    about `timeout` seconds; `environment` replaces os.environ for finding it."""
    answer: list[bool] = []

    def ping() -> None:
        import docker  # type: ignore[import-untyped]  # no type information

        try:
            env = dict(environment) if environment is not None else None
            answer.append(
                bool(docker.from_env(timeout=max(1, round(timeout)), environment=env).ping())
            )
        except Exception:
            answer.append(False)

    thread = threading.Thread(target=ping, name="docker-ping", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answer and answer[0])


def local_servers(env: Mapping[str, str]) -> dict[str, str]:
    """`deploy/local/infra.sh start` in environment `env`: the two variables it reports."""
    out = subprocess.run(
        ["bash", str(ROOT / "deploy/local/infra.sh"), "start"],
        check=True,
        capture_output=True,
        text=True,
        env=dict(env),
    ).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() in SERVER_VARIABLES:
            found[name.strip()] = value.strip()
    missing = [name for name in SERVER_VARIABLES if name not in found]
    if missing:
        raise RuntimeError(f"deploy/local/infra.sh start did not report {missing}: {out}")
    return found


def _postgres(spec: ContainerSpec) -> PostgresContainer:
    from testcontainers.community.postgres import PostgresContainer

    container = PostgresContainer(
        spec.image,
        port=spec.port,
        username=spec.env["POSTGRES_USER"],
        dbname=spec.env["POSTGRES_DB"],
        driver=None,
    )
    return container.with_envs(**spec.env).with_command(list(spec.command))


def _kafka(spec: ContainerSpec) -> KafkaContainer:
    from testcontainers.community.kafka import KafkaContainer

    class ApacheKafkaContainer(KafkaContainer):
        """KafkaContainer for the apache/kafka image: the library's own start script and KRaft
        check are written for Confluent's images, so both are replaced by `spec`."""

        def configure(self) -> None:
            self.env = dict(spec.env)

        def tc_start(self) -> None:
            host, port = self.get_container_host_ip(), self.get_exposed_port(self.port)
            self.create_file(kafka_start_script(spec, host, port).encode(), KAFKA_START_SCRIPT)

    return ApacheKafkaContainer(
        spec.image, port=spec.port, wait_strategy_check_string=r".*Kafka Server started.*"
    )


def create_topics(bootstrap: str) -> None:
    """The project's topics on `bootstrap`, by deploy/local/create_topics.py as infra.sh does."""
    script = ROOT / "deploy/local/create_topics.py"
    result = subprocess.run(
        [sys.executable, str(script), "--bootstrap", bootstrap, "--timeout", "60"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"create_topics.py failed on {bootstrap}:\n{result.stderr[-3000:]}")


@contextmanager
def started_containers(config: ContainerConfig) -> Iterator[dict[str, str]]:
    """Both containers of `config` started (and the topics created) until the block ends."""
    with ExitStack() as stack:
        postgres = stack.enter_context(_postgres(config.postgres))
        kafka = _kafka(config.kafka)
        stack.callback(kafka.stop)  # also removes a container that failed to start
        kafka.start(timeout=120)
        host = postgres.get_container_host_ip()
        port = postgres.get_exposed_port(config.postgres.port)
        env = config.postgres.env
        bootstrap = kafka.get_bootstrap_server()
        create_topics(bootstrap)
        yield {
            "DATABASE_URL": f"postgresql://{env['POSTGRES_USER']}@{host}:{port}/{env['POSTGRES_DB']}",
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        }


@contextmanager
def session_servers(
    env: Mapping[str, str], announce: Callable[[str], None]
) -> Iterator[dict[str, str]]:
    """The servers of this session, by the path chosen for `env` (announced once)."""
    answers = docker_answers() if needs_docker_answer(env) else False
    choice = choose_servers(env, answers)
    how = f"{FORCE_VARIABLE}={choice.value}" if forced(env) else "automatic"
    hint = f"{FORCE_VARIABLE}=env|containers|local forces one"
    announce(f"test servers: {choice.value}, {DESCRIPTIONS[choice]} ({how}; {hint})")
    if choice is Servers.ENV:
        yield {name: env[name] for name in SERVER_VARIABLES}
    elif choice is Servers.CONTAINERS:
        with started_containers(container_config()) as found:
            yield found
    else:
        yield local_servers(env)
