"""Who works in the agents' console, and in which role they act: pure rules read from the desk
policies, the one place the console's pages ask.

A person works at a desk's console when the directory grants them a support-side role there
(`staff_desks`); they lead it when one of those roles `administers` the desk (`led_desks`:
dashboards, canned replies, administration). For each command the console offers, the role
they act in is the first of their roles at the desk that the policy allows for it
(`role_for`): the role the console sends as `X-Actor-Role`, so that workflow decides on the same
role the form was built for."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from desk_policies.model import DeskPolicy, Side

Desk = Mapping[str, Any]  # one desk of workflow's `GET /desks`, as JSON
StaffDesks = dict[str, tuple[str, ...]]  # desk id -> the person's support-side roles there


def staff_desks(roles: Mapping[str, Sequence[str]], policies: Iterable[DeskPolicy]) -> StaffDesks:
    """The desks where `roles` (a person's, by desk) hold a support-side role, with those
    roles in the directory's order; desks where they hold none are left out."""
    found: StaffDesks = {}
    for policy in policies:
        support = {r.id for r in policy.roles if r.side is Side.SUPPORT}
        held = tuple(r for r in roles.get(policy.id, ()) if r in support)
        if held:
            found[policy.id] = held
    return found


def led_desks(roles: Mapping[str, Sequence[str]], policies: Iterable[DeskPolicy]) -> frozenset[str]:
    """The desks one of whose `administers` roles `roles` hold (their team leads' desks)."""
    return frozenset(
        policy.id
        for policy in policies
        if any(r.administers and r.id in roles.get(policy.id, ()) for r in policy.roles)
    )


def role_for(
    desk: Desk,
    roles: Sequence[str],
    *,
    action: str | None = None,
    status: str | None = None,
    permission: str | None = None,
) -> str | None:
    """The first of `roles` the desk allows `action` from `status` (a transition), or
    `permission` (e.g. `comment_internal`); None when none of them may."""
    for role in roles:
        if action is not None and any(
            t["action"] == action and (status is None or status in t["from"]) and role in t["roles"]
            for t in desk.get("transitions", ())
        ):
            return role
        if permission is not None and role in desk.get("permissions", {}).get(permission, ()):
            return role
    return None
