"""The checks the deployment tests make, as functions returning the problems they find (an empty
list: none), so each test can also show its check rejects a broken manifest."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
from kustomize_lite import build

from desk_contracts.topics import TOPICS
from desk_platform.settings import Settings

Obj = dict[str, Any]

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.37"
KAFKA_TOPIC_SCHEMA = K8S / "schemas" / "kafkatopic-v1beta2.json"
PARTITIONS = 6  # of every topic (desk_contracts.topics): a group's useful consumers at most


def render(folder: Path) -> list[Obj]:
    """The objects a kustomization folder renders."""
    return build(folder)


def setting_names() -> frozenset[str]:
    """Every environment variable `Settings` reads (its fields' names, upper-cased after its
    env prefix; pydantic-settings matches them case-insensitively)."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        names.add((alias or prefix + name).upper())
    return frozenset(names)


def of_kind(objects: Iterable[Obj], kind: str) -> list[Obj]:
    """The objects of one kind."""
    return [obj for obj in objects if obj.get("kind") == kind]


def name_of(obj: Obj) -> str:
    """An object's name."""
    return str(obj["metadata"]["name"])


def pod_spec(obj: Obj) -> Obj:
    """The pod template's spec of a Deployment or a Job."""
    return dict(obj["spec"]["template"]["spec"])


def containers(obj: Obj) -> list[Obj]:
    """The containers (init containers first) of a Deployment's or a Job's pods."""
    spec = pod_spec(obj)
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


# --- validity -------------------------------------------------------------------------------


def schema_problems(obj: Obj) -> list[str]:
    """The object against Kubernetes' own schemas (strict: no unknown field), a KafkaTopic
    against the vendored subset of Strimzi's CRD."""
    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    try:
        if obj.get("kind") == "KafkaTopic":
            schema = json.loads(KAFKA_TOPIC_SCHEMA.read_text(encoding="utf-8"))
            jsonschema.validate(obj, schema)
        else:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as error:
        return [f"{where}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{where}: no schema for {obj.get('apiVersion')} {obj.get('kind')}"]
    return []


# --- Deployments ----------------------------------------------------------------------------


def container_ports(container: Obj) -> dict[str, int]:
    """A container's ports by name (and by number, as strings)."""
    ports: dict[str, int] = {}
    for port in container.get("ports", []):
        ports[str(port["containerPort"])] = port["containerPort"]
        if "name" in port:
            ports[port["name"]] = port["containerPort"]
    return ports


def probe_problems(deployment: Obj) -> list[str]:
    """Every container: liveness on /health and readiness on /ready, each over HTTP on one of
    the container's ports."""
    problems = []
    wanted = {"livenessProbe": "/health", "readinessProbe": "/ready"}
    for container in containers(deployment):
        ports = container_ports(container)
        for probe, path in wanted.items():
            where = f"{name_of(deployment)}/{container['name']} {probe}"
            get = (container.get(probe) or {}).get("httpGet")
            if get is None:
                problems.append(f"{where}: no HTTP probe")
                continue
            if get.get("path") != path:
                problems.append(f"{where}: path {get.get('path')!r}, not {path}")
            if str(get.get("port")) not in ports:
                problems.append(f"{where}: port {get.get('port')!r} is no containerPort")
    return problems


def resource_problems(workload: Obj) -> list[str]:
    """Every container requests and limits both cpu and memory."""
    problems = []
    for container in containers(workload):
        resources = container.get("resources") or {}
        for part in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (resources.get(part) or {}):
                    problems.append(
                        f"{name_of(workload)}/{container['name']}: no {part}.{resource}"
                    )
    return problems


def security_problems(workload: Obj) -> list[str]:
    """Pods run as non-root with a read-only root filesystem and no privilege escalation."""
    problems = []
    pod = pod_spec(workload).get("securityContext") or {}
    if pod.get("runAsNonRoot") is not True:
        problems.append(f"{name_of(workload)}: runAsNonRoot is not true")
    for container in containers(workload):
        context = container.get("securityContext") or {}
        for key, value in (("readOnlyRootFilesystem", True), ("allowPrivilegeEscalation", False)):
            if context.get(key) is not value:
                problems.append(f"{name_of(workload)}/{container['name']}: {key} is not {value}")
    return problems


def selects(selector: Obj, labels: Obj) -> bool:
    """Whether a `matchLabels` selector selects these labels."""
    wanted = selector.get("matchLabels") or {}
    return bool(wanted) and all(labels.get(key) == value for key, value in wanted.items())


def template_labels(workload: Obj) -> Obj:
    """The labels of a Deployment's pods."""
    return dict(workload["spec"]["template"]["metadata"].get("labels") or {})


def guard_problems(objects: list[Obj]) -> list[str]:
    """Every Deployment has a PodDisruptionBudget selecting its pods and a CPU
    HorizontalPodAutoscaler targeting it."""
    problems = []
    pdbs = of_kind(objects, "PodDisruptionBudget")
    hpas = of_kind(objects, "HorizontalPodAutoscaler")
    for deployment in of_kind(objects, "Deployment"):
        name, labels = name_of(deployment), template_labels(deployment)
        if not any(selects(pdb["spec"].get("selector") or {}, labels) for pdb in pdbs):
            problems.append(f"{name}: no PodDisruptionBudget selects it")
        targeting = [h for h in hpas if h["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1", "kind": "Deployment", "name": name}]  # fmt: skip
        if not targeting:
            problems.append(f"{name}: no HorizontalPodAutoscaler targets it")
        for hpa in targeting:
            resources = [m["resource"]["name"] for m in hpa["spec"].get("metrics", [])
                         if m.get("type") == "Resource"]  # fmt: skip
            if "cpu" not in resources:
                problems.append(f"{name}: its HorizontalPodAutoscaler does not scale on cpu")
    return problems


def env_names(workload: Obj, objects: list[Obj]) -> Iterator[tuple[str, str]]:
    """(container, variable) for every variable a workload's containers get: `env` and the
    keys of the ConfigMaps and Secrets of `envFrom` (found among `objects`)."""
    sources = {(obj["kind"], name_of(obj)): obj for obj in objects}
    for container in containers(workload):
        for variable in container.get("env", []):
            yield container["name"], variable["name"]
        for source in container.get("envFrom", []):
            for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if ref in source:
                    obj = sources.get((kind, source[ref]["name"]), {})
                    for key in (*obj.get("data", {}), *obj.get("stringData", {})):
                        yield container["name"], source.get("prefix", "") + key


def env_problems(workload: Obj, objects: list[Obj], known: frozenset[str]) -> list[str]:
    """Every variable a workload sets is a setting the processes read."""
    return [
        f"{name_of(workload)}/{container}: {variable} is no field of Settings"
        for container, variable in env_names(workload, objects)
        if variable not in known
    ]


def reference_problems(workload: Obj, objects: list[Obj]) -> list[str]:
    """Every ConfigMap, Secret and PersistentVolumeClaim a workload names exists in `objects`."""
    present = {(obj["kind"], name_of(obj)) for obj in objects}
    wanted: set[tuple[str, str]] = set()
    for volume in pod_spec(workload).get("volumes", []):
        if "configMap" in volume:
            wanted.add(("ConfigMap", volume["configMap"]["name"]))
        if "secret" in volume:
            wanted.add(("Secret", volume["secret"]["secretName"]))
        if "persistentVolumeClaim" in volume:
            wanted.add(("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]))
    for container in containers(workload):
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                wanted.add(("ConfigMap", source["configMapRef"]["name"]))
            if "secretRef" in source:
                wanted.add(("Secret", source["secretRef"]["name"]))
    return [f"{name_of(workload)}: {kind} {name} is missing" for kind, name in
            sorted(wanted - present)]  # fmt: skip


# --- topics ---------------------------------------------------------------------------------


def topic_specs(objects: Iterable[Obj]) -> dict[str, tuple[int, dict[str, str]]]:
    """What the KafkaTopics declare: topic name -> (partitions, config as strings)."""
    return {
        topic["spec"].get("topicName", name_of(topic)): (
            topic["spec"]["partitions"],
            {key: str(value) for key, value in (topic["spec"].get("config") or {}).items()},
        )
        for topic in of_kind(objects, "KafkaTopic")
    }


def topic_problems(objects: list[Obj]) -> list[str]:
    """The KafkaTopics are exactly desk_contracts.topics.TOPICS: the same names, partitions and
    config (nothing more, nothing less)."""
    wanted = {spec.name: (spec.partitions, dict(spec.config)) for spec in TOPICS}
    declared = topic_specs(objects)
    problems = [f"topic {name}: missing" for name in sorted(set(wanted) - set(declared))]
    problems += [
        f"topic {name}: not a contract topic" for name in sorted(set(declared) - set(wanted))
    ]
    for name in sorted(set(wanted) & set(declared)):
        if declared[name] != wanted[name]:
            problems.append(f"topic {name}: {declared[name]} instead of {wanted[name]}")
    return problems
