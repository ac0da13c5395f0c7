"""A what-if scenario: the desks' SLA terms as they would be under other targets or calendars.

A scenario is data (a YAML file parsed by the caller) that changes the SLA part of desk
policies and adds business calendars, applied on top of the policies and calendars in force:

    title: "erp-vendor: critical answered within 30 minutes, Saturday mornings open"
    policies:
      erp-vendor:
        sla:                      # merged into the policy's `sla` (targets, calendar, ...)
          calendar: ch-geneva-business-saturday-mornings
          targets: {critical: {response: 30}}
    calendars:
      ch-geneva-business-saturday-mornings:
        extends: ch-geneva-business   # a copy of a known calendar, then merged
        weekly_hours: {saturday: ["09:00-12:00"]}

Mappings merge key by key (a weekday added, a target's one clock changed); any other value
replaces what it names. The result is validated as a policy and a calendar file would be
(`desk_policies`), so a scenario cannot say what a policy could not. Command-line overrides
(`target_override`, `hours_override`) are turned into the same data and merged alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from desk_policies.calendars import BusinessCalendar, CalendarError, Weekday, parse_calendar
from desk_policies.checks import policy_issues
from desk_policies.loader import PolicyError
from desk_policies.model import DeskPolicy, SlaPolicy

__all__ = [
    "Scenario",
    "ScenarioError",
    "apply_scenario",
    "hours_override",
    "is_scenario",
    "merged",
    "target_override",
]

_TARGET = re.compile(r"^([a-z0-9][a-z0-9-]*)\.([A-Za-z0-9_-]+)\.(response|resolution)=(\d+)$")
_HOURS = re.compile(r"^([a-z0-9][a-z0-9-]*)\.([a-z]+)=(.*)$")


class ScenarioError(ValueError):
    """A scenario that cannot be applied; the message says which part and why."""


@dataclass(frozen=True)
class Scenario:
    """The policies and calendars under a scenario (every desk's, changed or not), its title,
    and the ids of the desks it changes."""

    title: str
    policies: dict[str, DeskPolicy]
    calendars: dict[str, BusinessCalendar]
    changed: frozenset[str]


def is_scenario(data: Any) -> bool:
    """Whether parsed YAML is a scenario (it names `policies` or `calendars` to change) rather
    than a whole desk policy."""
    return isinstance(data, Mapping) and ("policies" in data or "calendars" in data)


def merged(base: Any, change: Any) -> Any:
    """`change` merged into `base`: mappings key by key (recursively), anything else replaced."""
    if isinstance(base, Mapping) and isinstance(change, Mapping):
        result = dict(base)
        for key, value in change.items():
            result[key] = merged(base[key], value) if key in base else value
        return result
    return change


def target_override(text: str) -> dict[str, Any]:
    """`DESK.PRIORITY.CLOCK=MINUTES` (e.g. `erp-vendor.critical.response=30`) as scenario data."""
    match = _TARGET.match(text.strip())
    if match is None:
        raise ScenarioError(
            f"target {text!r}: expected DESK.PRIORITY.response|resolution=MINUTES, "
            "e.g. erp-vendor.critical.response=30"
        )
    desk, priority, clock, minutes = match.groups()
    return {"policies": {desk: {"sla": {"targets": {priority: {clock: int(minutes)}}}}}}


def hours_override(text: str, data: Mapping[str, Any], policies: Mapping[str, DeskPolicy]) -> Any:
    """`DESK.WEEKDAY=HH:MM-HH:MM[,HH:MM-HH:MM]` (empty: closed that day) merged into scenario
    `data`: the desk's calendar under the scenario gets those hours that weekday. A calendar the
    scenario defines is changed itself; a calendar in force is copied as `<id>-whatif` first."""
    match = _HOURS.match(text.strip())
    if match is None or match.group(2) not in {d.value for d in Weekday}:
        raise ScenarioError(
            f"hours {text!r}: expected DESK.WEEKDAY=HH:MM-HH:MM[,HH:MM-HH:MM], "
            "e.g. erp-vendor.saturday=09:00-12:00"
        )
    desk, day, spans = match.groups()
    if desk not in policies:
        raise ScenarioError(f"hours {text!r}: no desk {desk!r}")
    desk_change = data.get("policies", {}).get(desk, {})
    calendar = desk_change.get("sla", {}).get("calendar", policies[desk].sla.calendar)
    hours = [span.strip() for span in spans.split(",") if span.strip()]
    defined = data.get("calendars", {})
    if calendar in defined:
        change: dict[str, Any] = {"calendars": {calendar: {"weekly_hours": {day: hours}}}}
    else:
        copy = f"{calendar}-whatif"
        change = {
            "policies": {desk: {"sla": {"calendar": copy}}},
            "calendars": {copy: {"extends": calendar, "weekly_hours": {day: hours}}},
        }
    return merged(data, change)


def _calendars(
    data: Mapping[str, Any], calendars: Mapping[str, BusinessCalendar]
) -> dict[str, BusinessCalendar]:
    result = dict(calendars)
    pending = dict(data)
    while pending:  # a scenario's calendar may extend another of the scenario
        ready = {
            cid: spec
            for cid, spec in pending.items()
            if not isinstance(spec, Mapping) or spec.get("extends") in (None, *result)
        }
        if not ready:
            raise ScenarioError(
                f"calendars {', '.join(sorted(pending))}: they extend unknown calendars "
                f"({', '.join(sorted({str(s.get('extends')) for s in pending.values()}))})"
            )
        for cid, spec in ready.items():
            del pending[cid]
            if not isinstance(spec, Mapping):
                raise ScenarioError(f"calendars.{cid}: a calendar is a mapping")
            spec = dict(spec)
            base_id = spec.pop("extends", None)
            base = result[base_id].model_dump(mode="json") if base_id else {}
            body = merged(base, spec)
            body["id"] = cid
            if base_id and "name" not in spec:
                body["name"] = f"{body.get('name') or base_id} (what-if)"
            try:
                result[cid] = parse_calendar(body, f"calendars.{cid}")
            except CalendarError as error:
                raise ScenarioError(str(error)) from None
    return result


def _policy(
    policy: DeskPolicy, change: Any, calendars: Mapping[str, BusinessCalendar]
) -> DeskPolicy:
    if not isinstance(change, Mapping) or set(change) - {"sla"}:
        raise ScenarioError(
            f"policies.{policy.id}: a scenario changes a desk's `sla` only "
            "(give a whole policy file for other changes)"
        )
    try:
        sla = SlaPolicy.model_validate(
            merged(policy.sla.model_dump(mode="json"), change.get("sla", {}))
        )
    except ValueError as error:
        raise ScenarioError(f"policies.{policy.id}.sla: {error}") from None
    changed = policy.model_copy(update={"sla": sla})
    issues = policy_issues(changed, set(calendars))
    if issues:
        raise ScenarioError(str(PolicyError(f"policies.{policy.id}", issues)))
    return changed


def apply_scenario(
    data: Any,
    policies: Mapping[str, DeskPolicy],
    calendars: Mapping[str, BusinessCalendar],
    replaced: Mapping[str, DeskPolicy] | None = None,
) -> Scenario:
    """The policies and calendars under scenario `data` (see the module), validated; the
    whole policies of `replaced` (alternative policy files, by desk) are taken first."""
    if not isinstance(data, Mapping):
        raise ScenarioError("a scenario is a mapping (title, policies, calendars)")
    unknown = set(data) - {"title", "policies", "calendars"}
    if unknown:
        raise ScenarioError(f"unknown scenario keys: {', '.join(sorted(unknown))}")
    alternative_calendars = _calendars(data.get("calendars") or {}, calendars)
    alternative = {**policies, **(replaced or {})}
    for desk, policy in (replaced or {}).items():
        issues = policy_issues(policy, set(alternative_calendars))
        if issues:
            raise ScenarioError(str(PolicyError(f"policy {desk}", issues)))
    changes = data.get("policies") or {}
    for desk, change in changes.items():
        if desk not in policies:
            raise ScenarioError(f"policies.{desk}: no such desk ({', '.join(sorted(policies))})")
        alternative[desk] = _policy(alternative[desk], change, alternative_calendars)
    return Scenario(
        title=str(data.get("title") or "what-if"),
        policies=alternative,
        calendars=alternative_calendars,
        changed=frozenset(changes) | frozenset(replaced or {}),
    )
