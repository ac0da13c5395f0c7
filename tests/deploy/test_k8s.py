"""The Kubernetes manifests (deploy/k8s), rendered per overlay: valid, probed, bounded, guarded,
configured with real settings only, and with exactly the contracts' topics."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import kafka_topics
import pytest
import yaml
from deploy_checks import (
    PARTITIONS,
    Obj,
    containers,
    env_problems,
    guard_problems,
    name_of,
    of_kind,
    probe_problems,
    reference_problems,
    render,
    resource_problems,
    schema_problems,
    security_problems,
    setting_names,
    topic_problems,
)
from kustomize_lite import KustomizeError

from desk_platform.migrate import SERVICES
from desk_platform.settings import DEV_SURVEY_SECRET
from desk_policies.directory import parse_directory
from desk_policies.loader import PolicyError, load_policies, parse_policy

# each process: the module its container runs (as in deploy/local/system.py)
PROCESSES = {
    "desk-portal": "portal",
    "desk-intake": "intake",
    "desk-intake-mail": "intake.mail",
    "desk-workflow": "workflow",
    "desk-sla": "sla",
    "desk-notifier": "notifier",
}
CONSUMERS = ("desk-intake-mail", "desk-workflow", "desk-sla", "desk-notifier")


def deployment(objects: list[Obj], name: str) -> Obj:
    """The Deployment called `name`."""
    return next(obj for obj in of_kind(objects, "Deployment") if name_of(obj) == name)


def test_every_process_is_deployed_once(rendered: list[Obj]) -> None:
    deployments = of_kind(rendered, "Deployment")
    assert sorted(name_of(d) for d in deployments) == sorted(PROCESSES)
    for d in deployments:
        (container,) = containers(d)
        assert container["command"] == ["python", "-m", PROCESSES[name_of(d)]]


def test_every_object_is_valid(
    rendered: list[Obj], migration: list[Obj], secrets: list[Obj]
) -> None:
    problems = [p for obj in rendered + migration + secrets for p in schema_problems(obj)]
    assert problems == []


def test_the_schema_check_rejects_an_unknown_field(rendered: list[Obj]) -> None:
    broken = copy.deepcopy(deployment(rendered, "desk-sla"))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    assert schema_problems(broken)
    topic = copy.deepcopy(of_kind(rendered, "KafkaTopic")[0])
    topic["spec"]["partitions"] = 0
    assert schema_problems(topic)


def test_every_deployment_is_probed_on_health_and_ready(rendered: list[Obj]) -> None:
    assert [p for d in of_kind(rendered, "Deployment") for p in probe_problems(d)] == []


def test_the_probe_check_rejects_missing_or_wrong_probes(rendered: list[Obj]) -> None:
    unprobed = copy.deepcopy(deployment(rendered, "desk-workflow"))
    del unprobed["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe_problems(unprobed) == ["desk-workflow/workflow readinessProbe: no HTTP probe"]
    wrong = copy.deepcopy(deployment(rendered, "desk-workflow"))
    liveness = wrong["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]
    liveness.update(path="/ready", port=9999)
    assert len(probe_problems(wrong)) == 2


def test_probes_use_the_http_port_the_process_listens_on(rendered: list[Obj]) -> None:
    (config,) = [c for c in of_kind(rendered, "ConfigMap") if name_of(c) == "desk-config"]
    for d in of_kind(rendered, "Deployment"):
        (container,) = containers(d)
        http = next(p for p in container["ports"] if p["name"] == "http")
        assert str(http["containerPort"]) == config["data"]["HTTP_PORT"]
        annotations = d["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == config["data"]["HTTP_PORT"]
        assert annotations["prometheus.io/path"] == "/metrics"


def test_every_container_has_requests_and_limits(rendered: list[Obj], migration: list[Obj]) -> None:
    workloads = of_kind(rendered, "Deployment") + of_kind(migration, "Job")
    assert [p for w in workloads for p in resource_problems(w)] == []
    bare = copy.deepcopy(deployment(rendered, "desk-portal"))
    del bare["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
    assert resource_problems(bare) == ["desk-portal/portal: no limits.memory"]


def test_pods_run_as_non_root_on_a_read_only_root(
    rendered: list[Obj], migration: list[Obj]
) -> None:
    workloads = of_kind(rendered, "Deployment") + of_kind(migration, "Job")
    assert [p for w in workloads for p in security_problems(w)] == []
    root = copy.deepcopy(deployment(rendered, "desk-intake"))
    root["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = False
    assert security_problems(root) == ["desk-intake: runAsNonRoot is not true"]


def test_every_deployment_has_a_disruption_budget_and_an_autoscaler(rendered: list[Obj]) -> None:
    assert guard_problems(rendered) == []
    alone = [obj for obj in rendered if obj["kind"] != "PodDisruptionBudget"
             or name_of(obj) != "desk-notifier"]  # fmt: skip
    assert guard_problems(alone) == ["desk-notifier: no PodDisruptionBudget selects it"]
    unscaled = [obj for obj in rendered if obj["kind"] != "HorizontalPodAutoscaler"
                or name_of(obj) != "desk-sla"]  # fmt: skip
    assert guard_problems(unscaled) == ["desk-sla: no HorizontalPodAutoscaler targets it"]


def test_consumers_scale_to_no_more_replicas_than_partitions(rendered: list[Obj]) -> None:
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(rendered, "HorizontalPodAutoscaler")
    }
    for name in CONSUMERS:
        assert 1 <= hpas[name]["spec"]["minReplicas"] <= hpas[name]["spec"]["maxReplicas"]
        assert hpas[name]["spec"]["maxReplicas"] <= PARTITIONS, name


def test_every_variable_set_is_a_setting(
    rendered: list[Obj], migration: list[Obj], secrets: list[Obj]
) -> None:
    known = setting_names()
    assert {"DATABASE_URL", "SURVEY_SECRET", "IDENTITY_SIGNING_KEYS"} <= known
    workloads = of_kind(rendered, "Deployment") + of_kind(migration, "Job")
    everything = rendered + secrets
    assert [p for w in workloads for p in env_problems(w, everything, known)] == []
    typo = copy.deepcopy(deployment(rendered, "desk-notifier"))
    typo["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "SMTP_CONECTIONS", "value": "4"}
    )
    assert env_problems(typo, everything, known) == [
        "desk-notifier/notifier: SMTP_CONECTIONS is no field of Settings"
    ]


def test_every_config_map_secret_and_volume_named_exists(
    rendered: list[Obj], migration: list[Obj], secrets: list[Obj]
) -> None:
    workloads = of_kind(rendered, "Deployment") + of_kind(migration, "Job")
    assert [p for w in workloads for p in reference_problems(w, rendered + secrets)] == []
    assert reference_problems(deployment(rendered, "desk-portal"), rendered) == [
        "desk-portal: Secret desk-portal-signing-key is missing",
        "desk-portal: Secret desk-secrets is missing",
    ]


def test_services_reach_named_ports_of_their_pods(rendered: list[Obj]) -> None:
    deployments = of_kind(rendered, "Deployment")
    services = of_kind(rendered, "Service")
    for service in services:
        (target,) = [d for d in deployments if all(
            d["spec"]["template"]["metadata"]["labels"].get(k) == v
            for k, v in service["spec"]["selector"].items())]  # fmt: skip
        names = {p["name"] for c in containers(target) for p in c["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= names
    smtp = [s for s in services if any(p["targetPort"] == "smtp" for p in s["spec"]["ports"])]
    assert [s["spec"]["type"] for s in smtp] == ["LoadBalancer"]
    assert smtp[0]["spec"]["externalTrafficPolicy"] == "Local"  # SPF sees the client's address


def test_the_kafka_topics_are_the_contracts_topics(rendered: list[Obj]) -> None:
    assert topic_problems(rendered) == []
    topics = copy.deepcopy(rendered)
    first = of_kind(topics, "KafkaTopic")[0]
    first["spec"]["config"]["retention.ms"] = "604800000"
    assert len(topic_problems(topics)) == 1
    fewer = [obj for obj in rendered if obj is not of_kind(rendered, "KafkaTopic")[-1]]
    assert topic_problems(fewer) == [
        f"topic {name_of(of_kind(rendered, 'KafkaTopic')[-1])}: missing"
    ]


def test_the_topics_file_is_generated_from_the_contracts() -> None:
    assert kafka_topics.OUTPUT.read_text(encoding="utf-8") == kafka_topics.document()
    assert kafka_topics.main(["--check"]) == 0


def test_the_migration_job_migrates_every_schema_with_the_rollout_images(
    rendered: list[Obj], migration: list[Obj]
) -> None:
    (job,) = of_kind(migration, "Job")
    commands = [c["command"] for c in containers(job)]
    assert commands == [["python", "-m", "desk_platform.migrate", s] for s in SERVICES]
    deployed = {c["image"] for d in of_kind(rendered, "Deployment") for c in containers(d)}
    assert {c["image"] for c in containers(job)} == deployed
    namespaces = {obj["metadata"]["namespace"] for obj in rendered if obj["kind"] != "Namespace"}
    assert {job["metadata"]["namespace"]} == namespaces


def test_images_are_tagged_releases(rendered: list[Obj]) -> None:
    for d in of_kind(rendered, "Deployment"):
        for container in containers(d):
            registry = container["image"].partition("/")[0]
            assert "." in registry, container["image"]
            assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+(-[\w.]+)?", container["image"])


def test_secrets_are_placeholders_only(secrets: list[Obj]) -> None:
    for secret in of_kind(secrets, "Secret"):
        for key, value in secret["stringData"].items():
            assert "REPLACE_ME" in key + value or value == DEV_SURVEY_SECRET, key
            assert "PRIVATE KEY" not in value
    assert not of_kind(render(Path(__file__).resolve().parents[2] / "deploy/k8s/base"), "Secret")


def test_the_directory_import_is_a_valid_directory_with_a_lead_per_desk(
    rendered: list[Obj],
) -> None:
    (config,) = [c for c in of_kind(rendered, "ConfigMap") if name_of(c) == "desk-directory"]
    directory = parse_directory(yaml.safe_load(config["data"]["directory.yaml"]))
    policies = load_policies()
    for desk, policy in policies.items():
        roles = {r.id: r for r in policy.roles}
        granted = [role for p in directory.people for role in p.roles.get(desk, ())]
        assert set(granted) <= set(roles), desk
        assert any(roles[role].administers for role in granted), f"{desk}: no lead"


def policy_problems(config_map: Obj) -> list[str]:
    """The extra policies of the desk-policies ConfigMap load beside the shipped ones."""
    shipped = load_policies()
    problems = []
    for key, text in (config_map.get("data") or {}).items():
        try:
            policy = parse_policy(yaml.safe_load(text), key)
        except PolicyError as error:
            problems.append(f"{key}: {error}")
            continue
        if policy.id in shipped or f"{policy.id}.yaml" != key:
            problems.append(f"{key}: defines {policy.id!r}, shipped or not its file name")
    return problems


def test_the_extra_policies_load_beside_the_shipped_ones(rendered: list[Obj]) -> None:
    (config,) = [c for c in of_kind(rendered, "ConfigMap") if name_of(c) == "desk-policies"]
    assert policy_problems(config) == []
    shipped = Path(__file__).resolve().parents[2] / "shared/policies/src/desk_policies/data"
    twice = {"data": {"saas-desk.yaml": (shipped / "policies/saas-desk.yaml").read_text()}}
    assert policy_problems(twice) == [
        "saas-desk.yaml: defines 'saas-desk', shipped or not its file name"
    ]


def test_the_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nnamePrefix: x-\n")
    with pytest.raises(KustomizeError, match="namePrefix"):
        render(tmp_path)
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [cm.yaml]\npatches:\n  - patch: '{kind: ConfigMap, metadata: {name: b}}'\n"
    )
    with pytest.raises(KustomizeError, match="matches nothing"):
        render(tmp_path)


def test_the_renderer_merges_patches_by_name(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "img", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "other:1"}]}}}}))  # fmt: skip
    patch = {"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": {
        "containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}]}]}}}}  # fmt: skip
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "namespace": "n", "resources": ["d.yaml"], "patches": [{"patch": yaml.safe_dump(patch)}],
        "images": [{"name": "img", "newName": "r.example/img", "newTag": "2.0.0"}]}))  # fmt: skip
    (d,) = render(tmp_path)
    a, b = containers(d)
    assert a["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]
    assert (a["image"], b["image"], d["metadata"]["namespace"]) == (
        "r.example/img:2.0.0",
        "other:1",
        "n",
    )
