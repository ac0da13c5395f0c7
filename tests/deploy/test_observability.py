"""The operator's dashboard and alerts: well-formed, every alert with its runbook in
deploy/README.md, and every metric they read one the processes expose."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "desk-overview.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
RUNBOOKS = ROOT / "deploy" / "README.md"
METRICS_SOURCE = ROOT / "shared" / "platform" / "src" / "desk_platform" / "metrics.py"

# The exposition names the processes serve, with their labels (besides the `job`, `pod` and
# `namespace` Prometheus adds). Kept here because some are being added to the services now;
# `exposed()` adds whatever metrics.py already declares.
METRICS: dict[str, frozenset[str]] = {
    name: frozenset(labels.split()) for name, labels in {
        "desk_ready": "check",
        "desk_outbox_relay_leader": "",
        "desk_outbox_lag_events": "",
        "desk_outbox_oldest_unpublished_seconds": "",
        "desk_consumer_lag_records": "group partition",
        "desk_consumer_stalled_seconds": "group",
        "desk_notifier_pending_messages": "",
        "desk_notifier_oldest_pending_seconds": "",
        "desk_shed_total": "door",
        "desk_shedding": "",
        "desk_admission_backlog_events": "",
        "desk_admission_lag_seconds": "",
        "desk_admission_in_flight": "",
        "desk_http_requests_total": "method route status",
        "desk_http_request_duration_seconds": "method route",
        "desk_consumer_records_applied_total": "group",
        "desk_consumer_duplicates_skipped_total": "group",
        "desk_consumer_dead_lettered_total": "group",
        "desk_consumer_parked_total": "group",
        "desk_sla_timers_armed_total": "kind",
        "desk_sla_timers_due": "kind",
        "desk_sla_timers_fired_total": "kind",
        "desk_sla_timer_lateness_seconds": "kind",
        "desk_notifications_rendered_total": "desk",
        "desk_notifications_sent_total": "desk",
        "desk_notifications_retried_total": "desk",
        "desk_notifications_failed_total": "desk",
        "desk_mail_gateway_decisions_total": "decision",
        "desk_survey_answers_total": "desk rating",
    }.items()
}  # fmt: skip
HISTOGRAMS = ("desk_http_request_duration_seconds", "desk_sla_timer_lateness_seconds")
TARGET_LABELS = frozenset({"job", "pod", "namespace", "instance", "le"})
METRIC = re.compile(r"\b(?:desk_[a-z_]+|up)\b")  # `up`: Prometheus's own, per target
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def exposed() -> frozenset[str]:
    """Every series name a process may serve: the list above, metrics.py's own declarations
    (counters as `<name>_total`), and the `_bucket`/`_sum`/`_count` series of histograms."""
    source = METRICS_SOURCE.read_text(encoding="utf-8")
    names = {*METRICS, "up"}
    for kind, name in re.findall(r"\b(Gauge|Counter|Histogram)\(\s*\"(desk_\w+)\"", source):
        names.add(name + "_total" if kind == "Counter" else name)
    names.update(f"{name}_total" for name in re.findall(r"\"(desk_consumer_\w+)\": \(", source))
    names.update(f"{h}{part}" for h in HISTOGRAMS for part in ("_bucket", "_sum", "_count"))
    return frozenset(names)


def labels_of(name: str) -> frozenset[str]:
    """The labels of a series (a histogram's parts have their histogram's)."""
    base = re.sub(r"_(bucket|sum|count)$", "", name) if name not in METRICS else name
    return METRICS.get(base, frozenset())


def expression_problems(expr: str, known: frozenset[str]) -> list[str]:
    """The metrics an expression reads are exposed, the labels it groups by are theirs, and
    its brackets balance."""
    names = METRIC.findall(expr)
    problems = [f"{name}: no such metric" for name in names if name not in known]
    if not names:
        problems.append(f"{expr!r} reads no desk metric")
    allowed = TARGET_LABELS.union(*(labels_of(name) for name in names))
    for group in GROUPING.findall(expr):
        labels = [part.strip() for part in group.split(",") if part.strip()]
        problems += [f"{expr!r}: no label {label}" for label in labels if label not in allowed]
    for opening, closing in ("()", "{}", "[]"):
        if expr.count(opening) != expr.count(closing):
            problems.append(f"{expr!r}: unbalanced {opening}{closing}")
    return problems


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub makes of a Markdown file's headings."""
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.MULTILINE):
        text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
        anchors.add(text.replace(" ", "-"))
    return anchors


def rules() -> list[dict[str, Any]]:
    """Every alert rule of alerts.yml."""
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def rule_problems(rule: dict[str, Any], anchors: set[str]) -> list[str]:
    """A rule has its expression, duration, severity and a runbook in deploy/README.md."""
    name = rule.get("alert", "<no name>")
    problems = [f"{name}: no {key}" for key in ("alert", "expr", "for") if not rule.get(key)]
    if (rule.get("labels") or {}).get("severity") not in ("warning", "critical"):
        problems.append(f"{name}: severity is neither warning nor critical")
    url = urlsplit(str((rule.get("annotations") or {}).get("runbook_url", "")))
    if not url.path.endswith("deploy/README.md") or url.fragment not in anchors:
        problems.append(f"{name}: runbook_url {url.geturl()!r} is no paragraph of deploy/README.md")
    return problems


def dashboard() -> dict[str, Any]:
    """The dashboard's JSON model."""
    return dict(json.loads(DASHBOARD.read_text(encoding="utf-8")))


def panel_expressions(model: dict[str, Any]) -> list[str]:
    """Every query of every panel (rows included)."""
    panels = [*model["panels"], *(p for row in model["panels"] for p in row.get("panels", []))]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def test_every_alert_rule_is_complete_and_has_its_runbook() -> None:
    anchors = github_anchors(RUNBOOKS.read_text(encoding="utf-8"))
    found = rules()
    assert len(found) >= 6
    assert [p for rule in found for p in rule_problems(rule, anchors)] == []
    assert len({rule["alert"] for rule in found}) == len(found)


def test_the_rule_check_rejects_a_rule_without_runbook_or_severity() -> None:
    anchors = github_anchors(RUNBOOKS.read_text(encoding="utf-8"))
    url = "https://git.example.com/deploy/README.md#nowhere"
    rule = {"alert": "X", "expr": "desk_shedding == 1", "for": "5m", "labels": {},
            "annotations": {"runbook_url": url}}  # fmt: skip
    assert rule_problems(rule, anchors) == [
        "X: severity is neither warning nor critical",
        "X: runbook_url 'https://git.example.com/deploy/README.md#nowhere' is no paragraph of "
        "deploy/README.md",
    ]


def test_the_alerts_cover_what_an_operator_must_hear_of() -> None:
    read = " ".join(rule["expr"] for rule in rules())
    for metric in ("desk_consumer_lag_records", "desk_outbox_oldest_unpublished_seconds",
                   "desk_sla_timer_lateness_seconds_bucket", "desk_consumer_dead_lettered_total",
                   "desk_ready", "desk_shedding"):  # fmt: skip
        assert metric in read


def test_the_alerts_read_exposed_metrics_by_their_labels() -> None:
    known = exposed()
    assert [p for rule in rules() for p in expression_problems(rule["expr"], known)] == []


def test_the_expression_check_rejects_unknown_metrics_and_labels() -> None:
    known = exposed()
    assert expression_problems("max by (group) (desk_consumer_lag_record)", known) == [
        "desk_consumer_lag_record: no such metric",
        "'max by (group) (desk_consumer_lag_record)': no label group",
    ]
    assert expression_problems("sum by (route) (rate(desk_shed_total[5m]))", known) == [
        "'sum by (route) (rate(desk_shed_total[5m]))': no label route"
    ]


def test_the_dashboard_is_a_grafana_dashboard_on_a_prometheus_variable() -> None:
    model = dashboard()
    assert 36 <= model["schemaVersion"] <= 41
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in model["panels"]]
    assert len(ids) == len(set(ids))
    for panel in model["panels"]:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])


def test_the_dashboard_reads_exposed_metrics_and_shows_the_first_ones_to_look_at() -> None:
    known = exposed()
    expressions = panel_expressions(dashboard())
    assert [p for expr in expressions for p in expression_problems(expr, known)] == []
    read = set(METRIC.findall(" ".join(expressions)))
    first = {"desk_http_requests_total", "desk_consumer_records_applied_total",
             "desk_consumer_lag_records", "desk_outbox_lag_events",
             "desk_outbox_oldest_unpublished_seconds", "desk_sla_timer_lateness_seconds_bucket",
             "desk_consumer_dead_lettered_total", "desk_consumer_parked_total",
             "desk_notifications_sent_total", "desk_notifications_failed_total",
             "desk_notifications_retried_total", "desk_notifier_pending_messages"}  # fmt: skip
    assert first <= read, first - read
