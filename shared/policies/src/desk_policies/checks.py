"""Cross-references inside a policy that field validation alone cannot see.

Each check yields a `PolicyIssue(path, reason)`, where `path` names the field the way the
file spells it (e.g. `transitions[4].roles[1]`), so an author can find the line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from typing import NamedTuple

from desk_policies.actions import Action
from desk_policies.model import DeskPolicy, SlaTarget, StatusCategory

SPECIAL_RECIPIENTS = frozenset({"requester", "participants", "assignee", "creator"})


class PolicyIssue(NamedTuple):
    path: str
    reason: str


def _duplicates(path: str, ids: Iterable[str], what: str) -> Iterator[PolicyIssue]:
    for value, count in Counter(ids).items():
        if count > 1:
            yield PolicyIssue(path, f"{what} {value!r} is defined {count} times")


def _unique_ids(p: DeskPolicy) -> Iterator[PolicyIssue]:
    yield from _duplicates("roles", (r.id for r in p.roles), "role")
    yield from _duplicates("request_types", (t.id for t in p.request_types), "request type")
    yield from _duplicates("request_types", (t.prefix for t in p.request_types), "prefix")
    yield from _duplicates("priorities", (x.id for x in p.priorities), "priority")
    yield from _duplicates("statuses", (s.id for s in p.statuses), "status")
    yield from _duplicates("resolution_codes", (c.id for c in p.resolution_codes), "code")


def _roles(p: DeskPolicy) -> Iterator[PolicyIssue]:
    known = {r.id for r in p.roles}

    def check(path: str, role: str) -> Iterator[PolicyIssue]:
        if role not in known:
            yield PolicyIssue(path, f"unknown role {role!r} (roles: {', '.join(sorted(known))})")

    for i, t in enumerate(p.request_types):
        for j, role in enumerate(t.creators):
            yield from check(f"request_types[{i}].creators[{j}]", role)
    for i, s in enumerate(p.statuses):
        if s.expected_actor is not None:
            yield from check(f"statuses[{i}].expected_actor", s.expected_actor)
        elif s.category is not StatusCategory.CLOSED:
            yield PolicyIssue(f"statuses[{i}].expected_actor", "only closed statuses have none")
    for i, tr in enumerate(p.transitions):
        for j, role in enumerate(tr.roles):
            yield from check(f"transitions[{i}].roles[{j}]", role)
    for j, role in enumerate(p.reopen.roles):
        yield from check(f"reopen.roles[{j}]", role)
    for permission, roles in p.permissions.items():
        for j, role in enumerate(roles):
            yield from check(f"permissions.{permission.value}[{j}]", role)
    for i, rule in enumerate(p.notifications):
        for j, who in enumerate(rule.recipients):
            if who not in SPECIAL_RECIPIENTS:
                yield from check(f"notifications[{i}].recipients[{j}]", who)


def _statuses(p: DeskPolicy) -> Iterator[PolicyIssue]:
    known = {s.id: s for s in p.statuses}

    def check(path: str, status: str) -> Iterator[PolicyIssue]:
        if status not in known:
            yield PolicyIssue(path, f"unknown status {status!r}")

    yield from check("initial_status", p.initial_status)
    if p.initial_status in known and known[p.initial_status].category is StatusCategory.CLOSED:
        yield PolicyIssue("initial_status", "a request cannot be created closed")
    if not p.closed_statuses:
        yield PolicyIssue("statuses", "no status has category 'closed'")
    for i, tr in enumerate(p.transitions):
        for j, status in enumerate(tr.from_):
            yield from check(f"transitions[{i}].from[{j}]", status)
        if tr.to is not None:
            yield from check(f"transitions[{i}].to", tr.to)
        elif tr.action is Action.ESCALATE and not p.escalations:
            yield PolicyIssue(f"transitions[{i}].to", "escalate without `to` needs `escalations`")
    for target, status in p.escalations.items():
        yield from check(f"escalations.{target}", status)
    for i, status in enumerate(p.automations.statuses):
        yield from check(f"automations.statuses[{i}]", status)
    for i, rule in enumerate(p.notifications):
        for j, status in enumerate(rule.to_statuses):
            yield from check(f"notifications[{i}].to_statuses[{j}]", status)


def _reopen(p: DeskPolicy) -> Iterator[PolicyIssue]:
    if not p.reopen.allowed:
        return
    if p.reopen.to_status is None:
        yield PolicyIssue("reopen.to_status", "required when reopening is allowed")
    elif p.reopen.to_status in p.closed_statuses:
        yield PolicyIssue("reopen.to_status", "must not be a closed status")
    elif p.reopen.to_status not in {s.id for s in p.statuses}:
        yield PolicyIssue("reopen.to_status", f"unknown status {p.reopen.to_status!r}")
    if not p.reopen.roles:
        yield PolicyIssue("reopen.roles", "required when reopening is allowed")


def _automations(p: DeskPolicy) -> Iterator[PolicyIssue]:
    auto = p.automations
    days = list(auto.reminder_days)
    if any(d <= 0 for d in days) or days != sorted(set(days)):
        yield PolicyIssue("automations.reminder_days", "must be positive and strictly increasing")
    if auto.auto_close_days is not None and days and days[-1] >= auto.auto_close_days:
        yield PolicyIssue("automations.reminder_days", "reminders must come before auto-close")
    if (days or auto.auto_close_days) and not auto.statuses:
        yield PolicyIssue("automations.statuses", "name the waiting statuses they watch")
    code = auto.auto_close_resolution
    if code is not None and not p.has_resolution_code(code):
        yield PolicyIssue("automations.auto_close_resolution", f"unknown resolution code {code!r}")
    if auto.auto_close_days is None:
        return
    for i, status in enumerate(auto.statuses):
        if not any(t.action is Action.AUTO_CLOSE and status in t.from_ for t in p.transitions):
            yield PolicyIssue(
                f"automations.statuses[{i}]",
                f"no `auto_close` transition leaves {status!r} although auto_close_days is set",
            )


def _targets(
    p: DeskPolicy, path: str, targets: dict[str, SlaTarget], complete: bool
) -> Iterator[PolicyIssue]:
    priorities = [x.id for x in p.priorities]
    if complete:
        for priority in priorities:
            if priority not in targets:
                yield PolicyIssue(path, f"no target for priority {priority!r}")
    for priority, target in targets.items():
        if priority not in priorities:
            yield PolicyIssue(
                f"{path}.{priority}",
                f"not a priority of this policy (priorities: {', '.join(priorities)})",
            )
        elif target.resolution < target.response:
            yield PolicyIssue(f"{path}.{priority}", "resolution shorter than response")


def _sla(p: DeskPolicy, known_calendars: Collection[str] | None) -> Iterator[PolicyIssue]:
    yield from _targets(p, "sla.targets", p.sla.targets, complete=True)
    types = {t.id: t for t in p.request_types}
    for type_id, targets in p.sla.by_request_type.items():
        path = f"sla.by_request_type.{type_id}"
        request_type = types.get(type_id)
        if request_type is None:
            known = ", ".join(types)
            yield PolicyIssue(path, f"unknown request type {type_id!r} (request types: {known})")
        elif not request_type.sla_bound:
            yield PolicyIssue(path, f"request type {type_id!r} is not sla_bound: it has no clocks")
        yield from _targets(p, path, targets, complete=False)
    if known_calendars is not None and p.sla.calendar not in known_calendars:
        yield PolicyIssue(
            "sla.calendar",
            f"unknown calendar {p.sla.calendar!r} (known: {', '.join(sorted(known_calendars))})",
        )


def _email(p: DeskPolicy) -> Iterator[PolicyIssue]:
    replies = p.email_replies
    if not replies.accepted and replies.portal_url is None:
        yield PolicyIssue("email_replies.portal_url", "refused replies must point to the portal")


def _events(p: DeskPolicy, known_events: Collection[str] | None) -> Iterator[PolicyIssue]:
    if known_events is None:
        return
    for i, rule in enumerate(p.notifications):
        if rule.event not in known_events:
            yield PolicyIssue(f"notifications[{i}].event", f"unknown event type {rule.event!r}")


def policy_issues(
    policy: DeskPolicy,
    known_calendars: Collection[str] | None = None,
    known_events: Collection[str] | None = None,
) -> list[PolicyIssue]:
    """Every cross-reference problem of `policy` (empty when it is consistent)."""
    return [
        *_unique_ids(policy),
        *_roles(policy),
        *_statuses(policy),
        *_reopen(policy),
        *_automations(policy),
        *_sla(policy, known_calendars),
        *_email(policy),
        *_events(policy, known_events),
    ]
