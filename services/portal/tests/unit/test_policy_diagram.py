"""A desk's workflow drawn as a diagram, for the three shipped desks: every status a box, every
transition an arrow (or listed in its box when it keeps the status), labels that do not cover one
another, escaped text, the same policy the same bytes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from desk_policies.description import describe
from desk_policies.loader import load_policies
from portal.domain.policy_diagram import (
    Arrow,
    StatusBox,
    diagram,
    layout,
    overlap,
    workflow_of,
)

SVG = "{http://www.w3.org/2000/svg}"
POLICIES = load_policies()
DESKS = sorted(POLICIES)


def described(desk: str) -> dict[str, Any]:
    """The desk as workflow's `GET /desks` tells its support side, as JSON."""
    told: dict[str, Any] = describe(POLICIES[desk]).model_dump(mode="json", by_alias=True)
    return told


def drawn(desk: str) -> tuple[str, Any]:
    told = described(desk)
    flow = workflow_of(told)
    boxes = [
        StatusBox(
            s["id"],
            s["labels"]["en"],
            s["category"],
            tuple(f"keeps {a}" for a in flow.kept.get(s["id"], ())),
        )
        for s in flow.statuses
    ]
    svg = diagram("policy", f"Workflow of {desk}", boxes, flow.arrows, names=str.upper)
    return svg, flow


@pytest.mark.parametrize("desk", DESKS)
def test_every_status_is_a_box(desk: str) -> None:
    svg, _ = drawn(desk)
    root = ET.fromstring(svg)
    shown = [g.get("data-status") for g in root.iter(f"{SVG}g") if g.get("class") == "status"]
    assert shown == [s.id for s in sorted(POLICIES[desk].statuses,
                                          key=lambda s: s.category.value == "closed")]  # fmt: skip
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert {s.labels.en[:27] for s in POLICIES[desk].statuses} <= {(t or "")[:27] for t in texts}


@pytest.mark.parametrize("desk", DESKS)
def test_every_transition_is_an_arrow_or_listed_in_its_status(desk: str) -> None:
    svg, flow = drawn(desk)
    root = ET.fromstring(svg)
    arrows = {
        (p.get("data-from"), p.get("data-to"))
        for p in root.iter(f"{SVG}path")
        if p.get("class") == "transition"
    }
    labelled = {
        (g.get("data-from"), g.get("data-to"), t.get("data-action"))
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "transition-label"
        for t in g.iter(f"{SVG}text")
    }
    assert len(arrows) == len(flow.arrows)  # one arrow per pair of statuses
    policy = POLICIES[desk]
    texts = {t.text for t in root.iter(f"{SVG}text")}
    for transition in policy.transitions:
        for source in transition.from_:
            targets = (
                [transition.to]
                if transition.to is not None
                else sorted(set(policy.escalations.values()) - {source})
                if transition.action == "escalate" and policy.escalations
                else [source]
            )
            for target in targets:
                if target == source:
                    assert f"keeps {transition.action.value}" in texts, (source, transition)
                else:
                    assert (source, target) in arrows
                    assert (source, target, transition.action.value) in labelled
    if policy.reopen.allowed:
        for closed in policy.closed_statuses:
            assert (closed, policy.reopen.to_status, "reopen") in labelled


def test_erp_vendor_has_nine_statuses_and_its_thirteen_transitions() -> None:
    policy = POLICIES["erp-vendor"]
    assert (len(policy.statuses), len(policy.transitions)) == (9, 13)
    flow = workflow_of(described("erp-vendor"))
    pairs = {(a.source, a.target): a.actions for a in flow.arrows}
    assert pairs[("resolved", "closed")] == ("close", "auto_close")  # one arrow, both actions
    assert pairs[("in_progress", "waiting_triage")] == ("escalate",)
    assert flow.kept["resolved"] == ["assign", "confirm_resolution"]
    assert "closed" not in flow.kept


@pytest.mark.parametrize("desk", DESKS)
def test_readable_labels_cover_no_box_and_no_other_label(desk: str) -> None:
    flow = workflow_of(described(desk))
    boxes = [StatusBox(s["id"], s["labels"]["en"], s["category"], ("a line",))
             for s in flow.statuses]  # fmt: skip
    placed = layout(boxes, flow.arrows)
    rects = [c.label for c in placed.curves]
    frames = [
        (b.x - b.half_width, b.y - b.half_height, b.x + b.half_width, b.y + b.half_height)
        for b in placed.boxes.values()
    ]
    for i, rect in enumerate(rects):
        assert all(overlap(rect, other) == 0 for other in rects[i + 1 :]), (desk, i)
        assert all(overlap(rect, frame) == 0 for frame in frames), (desk, i)
    for a, b in ((a, b) for a in frames for b in frames if a < b):
        assert overlap(a, b) == 0
    right, bottom = placed.left + placed.width, placed.top + placed.height
    inside = [placed.left <= r[0] and r[2] <= right and placed.top <= r[1] and r[3] <= bottom
              for r in rects + frames]  # fmt: skip
    assert all(inside)


@pytest.mark.parametrize("desk", DESKS)
def test_the_same_policy_gives_the_same_bytes_with_no_inline_style(desk: str) -> None:
    first, _ = drawn(desk)
    assert first == drawn(desk)[0]
    assert "style" not in first
    root = ET.fromstring(first)
    assert root.get("role") == "img" and root.get("aria-labelledby") == "policy-title"


def test_text_is_escaped() -> None:
    hostile = '<script>alert("x")</script>&'
    boxes = [
        StatusBox(hostile, hostile, "open", (hostile,)),
        StatusBox("b", "B", hostile, ()),
    ]
    svg = diagram("d", hostile, boxes, [Arrow(hostile, "b", (hostile,))], legend=[("x", hostile)])
    root = ET.fromstring(svg)  # well formed
    assert "<script" not in svg
    assert root.find(f"{SVG}title").text == hostile  # type: ignore[union-attr]


def test_a_desk_description_that_names_unknown_statuses_draws_what_it_knows() -> None:
    told = {
        "statuses": [{"id": "a", "category": "open"}, {"id": "b", "category": "closed"}],
        "transitions": [
            {"action": "close", "from": ["a", "ghost"], "to": "b"},
            {"action": "start", "from": ["a"], "to": "nowhere"},
            {"action": "escalate", "from": ["a"], "to": None},
        ],
        "reopen": {"allowed": True, "to_status": "a"},
    }
    flow = workflow_of(told)
    assert [(a.source, a.target, a.actions) for a in flow.arrows] == [
        ("a", "b", ("close",)),
        ("b", "a", ("reopen",)),
    ]
    assert flow.kept == {"a": ["escalate"]}  # no escalation target told: it keeps the status
