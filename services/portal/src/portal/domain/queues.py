"""The queues of a desk in the agents' console, built from the desk's description (workflow's
`GET /desks`, as JSON), never from its name: pure rules, the one place the queue pages ask.

A desk's queues, in the order the console shows them:

- **new** (`new`): the requests in the desk's initial status, which the front desk triages;
- **to assign** (`to_assign`): the requests in an open status (category `open`) whose expected
  actor may `assign` from it but may never `start` work on a request, from any status: a role
  whose part is to hand requests to others, not to work them. erp-vendor's "Qualified" is that
  status (its daily meeting assigns and never starts); cloud-partner and saas-desk have none
  (the agent expected to act may start the work), so they show no such queue;
- **mine** (`mine`): the requests assigned to the person looking;
- **unassigned** (`unassigned`): those assigned to no one;
- one queue per role expected to act in a status not closed (`actor-<role>`, in the order of
  the desk's statuses), labelled with the role's label: the front desk, the daily meeting, the
  service desk, the triage experts, R&D, level 2, the customer, a third party, the agents...;
- **waiting** (`waiting`): the requests in a status of category `waiting`;
- **breached** (`breached`) and **about to breach** (`soon`): a running clock past its due
  instant, or past its warning instant and not yet due.

Every queue holds requests not closed only. Each queue says how to ask sla for it (`params`, the
filters of sla's `GET /queue`) and how many it holds from sla's `GET /queue/counts` (`count`).
A person's default queue is the queue of the first of their roles at the desk expected to act
somewhere, else "mine".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Desk = Mapping[str, Any]  # one desk of workflow's `GET /desks`, as JSON
Params = tuple[tuple[str, str], ...]  # sla's `/queue` filters, in order
ACTOR = "actor-"  # the prefix of the queues by who is expected to act


@dataclass(frozen=True)
class Queue:
    """One queue of a desk: its id (in the page's address), which kind of queue it is (the
    catalogue key of its name: `queue.name.<kind>`), the role whose queue it is and that role's
    labels (`actor` queues), and sla's filters for it."""

    id: str
    kind: str
    params: Params
    role: str | None = None
    labels: Mapping[str, str] | None = None

    def count(self, counts: Mapping[str, Any]) -> int | None:
        """How many requests the queue holds by sla's `/queue/counts` answer (None when the
        answer does not say)."""
        try:
            if self.kind in ("mine", "unassigned", "waiting", "breached", "soon"):
                field = "assigned" if self.kind == "mine" else self.kind
                return int(counts[field])
            if self.kind == "actor":
                return int(counts["by_expected_actor"].get(self.role, 0))
            by_status = counts["by_status"]
            return sum(
                int(by_status.get(status, 0)) for key, status in self.params if key == "status"
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def _statuses(desk: Desk) -> Sequence[Mapping[str, Any]]:
    return tuple(desk.get("statuses", ()))


def _holds(desk: Desk, role: str, action: str, status: str | None = None) -> bool:
    """May `role` perform `action` (from `status`, or from anywhere when None)?"""
    return any(
        t.get("action") == action
        and role in t.get("roles", ())
        and (status is None or status in t.get("from", ()))
        for t in desk.get("transitions", ())
    )


def to_assign_statuses(desk: Desk) -> tuple[str, ...]:
    """The open statuses whose expected actor assigns requests and never starts one (see the
    module)."""
    found = []
    for status in _statuses(desk):
        actor = status.get("expected_actor")
        if status.get("category") != "open" or not actor:
            continue
        if _holds(desk, actor, "assign", status["id"]) and not _holds(desk, actor, "start"):
            found.append(str(status["id"]))
    return tuple(found)


def acting_roles(desk: Desk) -> tuple[str, ...]:
    """The roles expected to act in a status not closed, in the order of the desk's statuses."""
    found: list[str] = []
    for status in _statuses(desk):
        actor = status.get("expected_actor")
        if actor and status.get("category") != "closed" and actor not in found:
            found.append(str(actor))
    return tuple(found)


def role_labels(desk: Desk, role: str) -> Mapping[str, str] | None:
    """The labels the desk gives `role` (None when it does not tell it)."""
    for found in desk.get("roles", ()):
        if found.get("id") == role:
            return dict(found.get("labels") or {})
    return None


def queues_of(desk: Desk, me: str) -> tuple[Queue, ...]:
    """The queues of `desk` for the person whose address is `me` (see the module)."""
    queues = []
    initial = desk.get("initial_status")
    if initial:
        queues.append(Queue("new", "new", (("status", str(initial)),)))
    assigning = to_assign_statuses(desk)
    if assigning:
        queues.append(Queue("to_assign", "to_assign", tuple(("status", s) for s in assigning)))
    queues.append(Queue("mine", "mine", (("assignee", me),)))
    queues.append(Queue("unassigned", "unassigned", (("unassigned", "true"),)))
    for role in acting_roles(desk):
        queues.append(
            Queue(
                f"{ACTOR}{role}",
                "actor",
                (("expected_actor", role),),
                role,
                role_labels(desk, role),
            )
        )
    queues.append(Queue("waiting", "waiting", (("category", "waiting"),)))
    queues.append(Queue("breached", "breached", (("due", "breached"),)))
    queues.append(Queue("soon", "soon", (("due", "soon"),)))
    return tuple(queues)


def default_queue(queues: Sequence[Queue], roles: Sequence[str]) -> Queue:
    """The queue a person sees first: that of the first of their `roles` expected to act
    somewhere, else "mine"."""
    by_role = {q.role: q for q in queues if q.kind == "actor"}
    for role in roles:
        if role in by_role:
            return by_role[role]
    return next(q for q in queues if q.kind == "mine")


def chosen_queue(queues: Sequence[Queue], asked: str | None, roles: Sequence[str]) -> Queue:
    """The queue `asked` for by its id; the default one for an unknown id (a bookmark of a
    queue the desk no longer has still lands somewhere)."""
    for queue in queues:
        if queue.id == asked:
            return queue
    return default_queue(queues, roles)


def duration(seconds: int) -> str:
    """A business duration as people read it: "2 h 15 min", "3 h", "40 min", "< 1 min" (the
    sign is the page's to say)."""
    minutes = abs(seconds) // 60
    if minutes == 0:
        return "< 1 min"
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h {rest} min" if rest else f"{hours} h"
