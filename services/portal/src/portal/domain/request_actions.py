"""What a person may do now on a request: computed from what the desk tells (`GET /desks`:
its roles, transitions, permissions, reopening) and the request as the person reads it, never
from a desk's name. Pure: the same desk description and request give the same actions.

The names are those of the request page's forms (`/requests/{key}/action/<name>`):
`comment` (a public comment; `reply` instead while the request waits for this person, which
is the same command and sends it back to the team), `confirm` and `dispute` a resolution,
`reopen`, `escalate` (the requester's escalation), `mute` / `unmute` (this person's mail about
the request; not on a request closed for good), and `new_referencing` (a closed request whose
desk takes no comments nor reopening: a new request referencing it is the way forward)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Desk = Mapping[str, Any]  # one desk of `GET /desks`, as JSON
Request = Mapping[str, Any]  # a request of `GET /requests/{key}`, as JSON


def acting_role(desk: Desk, roles_at_desk: Sequence[str], customer: bool) -> str | None:
    """The role the person acts in at `desk`, as workflow chooses it: the first role the
    directory grants them there, else (a person of an organisation) the desk's first
    customer-side role; None when they have none."""
    known = [r["id"] for r in desk.get("roles", ())]
    granted = [r for r in roles_at_desk if r in known]
    if granted:
        return granted[0]
    if customer:
        sides = [r["id"] for r in desk.get("roles", ()) if r.get("side") == "customer"]
        return sides[0] if sides else None
    return None


def _moves(desk: Desk, action: str, status: str, role: str) -> bool:
    return any(
        t["action"] == action and status in t["from"] and role in t["roles"]
        for t in desk.get("transitions", ())
    )


def _may(desk: Desk, permission: str, role: str) -> bool:
    return role in desk.get("permissions", {}).get(permission, ())


def actions_now(desk: Desk, request: Request, person: str, role: str | None) -> list[str]:
    """The forms to offer `person` (acting in `role`) on `request` now (see the module)."""
    if role is None:
        return []
    status = request["status"]["id"]
    closed = request["status"]["category"] == "closed"
    reopen = desk.get("reopen", {})
    found: list[str] = []
    if _may(desk, "comment_public", role) and (not closed or desk.get("comments_on_closed")):
        found.append("reply" if _moves(desk, "requester_reply", status, role) else "comment")
    found += [name for name, action in _STEPS if _moves(desk, action, status, role)]
    if closed and reopen.get("allowed") and role in reopen.get("roles", ()):
        found.append("reopen")
    if not closed and _may(desk, "requester_escalation", role):
        found.append("escalate")
    final = closed and not desk.get("comments_on_closed") and not reopen.get("allowed")
    if _may(desk, "mute_notifications", role) and not final:
        found.append("unmute" if person in request.get("muted", ()) else "mute")
    if closed and not found_any(found, ("comment", "reopen")):
        found.append("new_referencing")
    return found


_STEPS = (("confirm", "confirm_resolution"), ("dispute", "dispute_resolution"))


def found_any(found: Iterable[str], names: Iterable[str]) -> bool:
    """Whether one of `names` is among `found`."""
    return bool(set(found) & set(names))
