"""Checks shared by every decision: who the actor is, and which transition the policy allows.

Each check returns a `Rejection` (a human-readable reason, no event) or what it found.
"""

from __future__ import annotations

from dataclasses import dataclass

from desk_policies.actions import Action, Permission
from desk_policies.model import Guard, Side, Transition
from desk_policies.requests import Ticket
from workflow.domain.commands import Actor


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused command: nothing happened, and `reason` says why in the domain's words.

    `field` names the command's field at fault when a value sent is refused (invalid input,
    422 over HTTP); without it, the request's state or the desk's policy refuses (409)."""

    reason: str
    field: str | None = None

    def __str__(self) -> str:
        return self.reason


ACTION_WORDS: dict[Action, str] = {
    Action.QUALIFY: "qualify the request",
    Action.ASSIGN: "assign the request",
    Action.START: "start work on the request",
    Action.REQUEST_INFORMATION: "ask the customer for information",
    Action.WAIT_FOR_THIRD_PARTY: "put the request on hold for a third party",
    Action.SCHEDULE_OPERATION: "schedule an operation",
    Action.ESCALATE: "escalate the request",
    Action.RETURN_FROM_ESCALATION: "hand the request back from escalation",
    Action.RESOLVE: "resolve the request",
    Action.CONFIRM_RESOLUTION: "confirm the resolution",
    Action.DISPUTE_RESOLUTION: "dispute the resolution",
    Action.CLOSE: "close the request",
    Action.REQUESTER_REPLY: "answer the request",
    Action.AUTO_CLOSE: "close the request automatically",
}


def status_label(state: Ticket, status: str | None = None) -> str:
    status = status if status is not None else state.status
    if status is None:
        return "not created"
    return f"'{state.policy.status(status).labels.en}'"


def side(state: Ticket, actor: Actor) -> Side | Rejection:
    """The actor's side, or a rejection when the role is unknown or the customer is a stranger."""
    role = state.policy.role(actor.role)
    if role is None:
        roles = ", ".join(r.id for r in state.policy.roles)
        return Rejection(f"role {actor.role!r} does not exist in desk {state.policy.id} ({roles})")
    stranger = state.exists and not state.involves(actor.id)
    if role.side is Side.CUSTOMER and stranger and actor.organisation_id != state.organisation_id:
        return Rejection(f"{actor.id} cannot act on a request of another organisation")
    return role.side


def permitted(state: Ticket, actor: Actor, permission: Permission, words: str) -> Rejection | None:
    found = side(state, actor)
    if isinstance(found, Rejection):
        return found
    if not state.policy.may(permission, actor.role):
        return Rejection(f"a {actor.role} may not {words} in desk {state.policy.id!r}")
    return None


def transition(
    state: Ticket, actor: Actor, action: Action, *, cited: int | None = None
) -> Transition | Rejection:
    """The policy's transition for `action` from the current status for the actor's role.
    `cited` is the version of the comment the command cites as the customer's confirmation."""
    found = side(state, actor)
    if isinstance(found, Rejection):
        return found
    words = ACTION_WORDS[action]
    rules = [t for t in state.policy.transitions if t.action is action and state.status in t.from_]
    if not rules:
        return Rejection(f"cannot {words} while it is {status_label(state)}{closed_hint(state)}")
    allowed = [t for t in rules if actor.role in t.roles]
    if not allowed:
        return Rejection(f"a {actor.role} may not {words} while it is {status_label(state)}")
    failed: list[Guard] = []
    for rule in allowed:
        if rule.guard is None or _holds(state, rule.guard, cited):
            return rule
        failed.append(rule.guard)
    return Rejection(f"cannot {words}: {_unmet(state, failed[0], cited)}")


def _holds(state: Ticket, guard: Guard, cited: int | None) -> bool:
    if guard is Guard.RESOLUTION_CONFIRMED:
        return state.resolution_confirmed or confirms(state, cited)
    return False  # pragma: no cover - every guard is handled above


def _unmet(state: Ticket, guard: Guard, cited: int | None) -> str:
    if guard is Guard.RESOLUTION_CONFIRMED:
        return unconfirmed(state, cited)
    return f"{guard} does not hold"  # pragma: no cover - every guard is handled above


def confirms(state: Ticket, cited: int | None) -> bool:
    """Is event `cited` a public comment of the requester or a participant made since the
    standing resolution (`Ticket.resolution_replies`), i.e. one that may confirm it?"""
    return cited is not None and cited in state.resolution_replies


def unconfirmed(state: Ticket, cited: int | None) -> str:
    """Why the resolution is not confirmed by `cited` (None: nothing cited), and what would be."""
    if not state.resolved_version:
        return f"{state.key} has no resolution awaiting confirmation: close it without citing one"
    replies = " or ".join(str(v) for v in state.resolution_replies)
    if cited is None:
        unanswered = "the requester has not confirmed the resolution yet"
        why = "the requester's confirmation is not cited" if replies else unanswered
    elif cited > state.version:
        why = f"{state.key} has no version {cited} (its latest is {state.version})"
    else:
        why = (
            f"version {cited} is not a public comment by the requester or a participant "
            f"since the resolution (version {state.resolved_version})"
        )
    cite = f"confirmation_version: {replies}" if replies else "confirmation_version"
    return (
        f"{why}: cite the requester's comment confirming the resolution ({cite}), "
        "or wait for their confirmation"
    )


def closed_hint(state: Ticket) -> str:
    """For a closed request: what the policy says to do instead (e.g. open a new one)."""
    if not state.is_closed:
        return ""
    refusal = state.policy.reopen.refusal
    if state.policy.closed_is_final:
        text = refusal.en if refusal else "a closed request is final"
        return f". {text} (reference: {state.key})"
    return ""


def final_refusal(state: Ticket) -> Rejection:
    """The rejection of anything but reading on a request whose closing is final."""
    return Rejection(f"{state.key} is closed{closed_hint(state)}")


def blank(text: str | None) -> bool:
    return text is None or not text.strip()
