"""The commands a staff member may send on a request now, as the console's forms: built from
the desk's description (workflow's `GET /desks`, as JSON) and the request as workflow shows it
to them, never from a desk's name. Pure: the same description, request, person and instant
give the same forms.

Each form (`CommandForm`) says its name (the console's: `form#cmd-<name>`), workflow's command
path, the role the console sends as `X-Actor-Role` (`portal.domain.console.role_for`) and its
fields, named as workflow's body fields, with their kind and the desk's choices:

- one form per transition the desk allows from the current status for one of the person's
  roles: `qualify`, `assign`, `start`, `request_information`, `wait_for_third_party`,
  `schedule_operation`, `escalate`, `return_from_escalation`, `resolve`, `close` (the
  customer's own actions, such as `confirm_resolution`, are never offered to staff);
- `reopen` by the desk's reopening rule (a closed request, within its days);
- one per permission: `comment` (a public reply, mailed to the customer), `note` (an internal
  note, never mailed or shown to the customer), `change_priority` (a reason needed when
  lowering it, which the requester reads), `link_request`, `add_participant`, and `mute` or
  `unmute` for one of the people who follow the request (its requester, its participants).

`check` turns what was typed into a form into the command's body, or says which fields are
wrong (catalogue keys), so that the page shows why beside each field."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from desk_contracts.inputs import address
from portal.domain.console import role_for

Desk = Mapping[str, Any]  # one desk of `GET /desks`, as JSON
Request = Mapping[str, Any]  # a request of `GET /requests/{key}`, as JSON

MAX_COMMENT = 5_000  # a command's comment, a priority change's reason
MAX_BODY = 100_000  # a public reply or an internal note
MAX_NAME = 200  # a group, a party, a responsible person (workflow's `Name`)
MAX_ADDRESS = 254
KEY = re.compile(r"[A-Za-z][A-Za-z0-9²]{0,19}-[0-9]{1,12}")
LOCAL_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?")
VERSION = re.compile(r"[1-9][0-9]{0,8}")
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")

# the transitions offered to staff, in the order the page shows them, and workflow's paths
TRANSITIONS = (
    "qualify", "assign", "start", "request_information", "wait_for_third_party",
    "schedule_operation", "escalate", "return_from_escalation", "resolve", "close",
)  # fmt: skip
PATHS = {
    "qualify": "qualify",
    "assign": "assign",
    "start": "start-work",
    "request_information": "request-information",
    "wait_for_third_party": "wait-for-third-party",
    "schedule_operation": "schedule-operation",
    "escalate": "escalate",
    "return_from_escalation": "return-from-escalation",
    "resolve": "resolve",
    "close": "close",
    "reopen": "reopen",
    "comment": "add-comment",
    "note": "add-comment",
    "change_priority": "change-priority",
    "link_request": "link-request",
    "add_participant": "add-participant",
    "mute": "mute-notifications",
    "unmute": "unmute-notifications",
}
NAMES = tuple(PATHS)  # every form the console may offer


@dataclass(frozen=True)
class Choice:
    """One value of a select: the desk's labels for it (by language), or a text to show (a
    person's name), else the value itself."""

    value: str
    labels: Mapping[str, str] | None = None
    text: str = ""


@dataclass(frozen=True)
class Field:
    """One field of a form, named as workflow's body field.

    `kind`: `textarea`, `line` (one line of text), `select` (one of `choices`; an empty first
    option when not `required`), `datetime` (a `datetime-local` in the person's time zone),
    `address` (an e-mail address) or `key` (a request's key). `label` and `hint` are catalogue
    keys; `value` is what the field starts with."""

    name: str
    kind: str
    label: str
    required: bool = False
    choices: tuple[Choice, ...] = ()
    max_length: int = MAX_NAME
    hint: str | None = None
    value: str = ""


@dataclass(frozen=True)
class CommandForm:
    """One command the person may send now: the form's name, workflow's command path, the
    role to send as `X-Actor-Role`, its fields, and the body values it always sends."""

    name: str
    path: str
    role: str
    fields: tuple[Field, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def field(self, name: str) -> Field | None:
        """The field called `name`, if the form has one."""
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True)
class Person:
    """A staff member of the desk, as the assignment's choices show them."""

    email: str
    name: str


def _comment(label: str, required: bool = False) -> Field:
    return Field("comment", "textarea", label, required, max_length=MAX_COMMENT)


def _status(request: Request) -> tuple[str, str]:
    status = request["status"]
    return str(status["id"]), str(status["category"])


def labels_of(items: Iterable[Mapping[str, Any]], item_id: str) -> Mapping[str, str] | None:
    """The labels of the item `item_id` of a desk's list (statuses, priorities...)."""
    for item in items:
        if item["id"] == item_id:
            return dict(item.get("labels") or {})
    return None


def _codes(desk: Desk) -> tuple[Choice, ...]:
    return tuple(Choice(c["id"], c.get("labels")) for c in desk.get("resolution_codes", ()))


def _rules(desk: Desk, action: str, status: str, role: str) -> list[Mapping[str, Any]]:
    return [
        t
        for t in desk.get("transitions", ())
        if t["action"] == action and status in t["from"] and role in t["roles"]
    ]


def closed_at(request: Request) -> datetime | None:
    """When the request was closed, as its history page tells it (its newest `TicketClosed`),
    else its last change; None for an open request."""
    if request["status"]["category"] != "closed":
        return None
    for entry in request.get("history", ()):
        if entry["type"] == "TicketClosed" and entry.get("occurred_at"):
            return _instant(entry["occurred_at"])
    return _instant(request.get("updated_at"))


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def confirmations(desk: Desk, request: Request) -> tuple[Choice, ...]:
    """The public comments of the customer side since the request's latest resolution (in the
    history page shown), which a close may cite as the requester's confirmation."""
    customers = {r["id"] for r in desk.get("roles", ()) if r.get("side") == "customer"}
    found: list[Choice] = []
    for entry in request.get("history", ()):  # newest first
        if entry["type"] == "TicketResolved":
            break
        data = entry.get("data") or {}
        public = entry["type"] == "CommentAdded" and data.get("public") is not False
        if public and data.get("actor_role") in customers:
            said = " ".join(str(data.get("body", "")).split())
            said = said if len(said) <= 60 else said[:59] + "…"
            text = f"{entry['version']} · {data.get('actor_id', '')}: {said}"
            found.append(Choice(str(entry["version"]), text=text))
    return tuple(found)


def _transition_form(
    desk: Desk,
    request: Request,
    action: str,
    role: str,
    person: str,
    staff: Sequence[Person],
) -> CommandForm | None:
    status, _ = _status(request)
    path = PATHS[action]
    fields: tuple[Field, ...] = ()
    if action == "assign":
        people = tuple(Choice(p.email, text=f"{p.name} ({p.email})") for p in staff)
        fields = (
            Field("assignee_id", "select", "agent.field.assignee_id", choices=people,
                  max_length=MAX_ADDRESS, hint="agent.hint.assign"),
            Field("group_id", "line", "agent.field.group_id"),
        )  # fmt: skip
    elif action == "request_information":
        fields = (_comment("agent.field.question", required=True),)
    elif action == "wait_for_third_party":
        parties = tuple(Choice(p) for p in desk.get("third_parties", ()))
        party = (
            Field("party", "select", "agent.field.party", True, parties)
            if parties
            else Field("party", "line", "agent.field.party", True)
        )
        fields = (party, _comment("agent.field.comment"))
    elif action == "schedule_operation":
        fields = (
            Field("scheduled_for", "datetime", "agent.field.scheduled_for", True,
                  hint="agent.hint.scheduled_for"),
            Field("responsible", "line", "agent.field.responsible", True, value=person),
            _comment("agent.field.comment"),
        )  # fmt: skip
    elif action == "escalate":
        statuses = desk.get("statuses", ())
        targets = tuple(
            Choice(target, labels_of(statuses, to))
            for target, to in desk.get("escalations", {}).items()
            if to != status
        )
        if not targets:
            return None
        fields = (
            Field("target", "select", "agent.field.target", True, targets),
            _comment("agent.field.comment"),
        )
    elif action == "return_from_escalation":
        fields = (_comment("agent.field.comment"),)
    elif action == "resolve":
        fields = (
            Field("resolution_code", "select", "agent.field.resolution_code", True, _codes(desk)),
            _comment("agent.field.resolution", required=True),
        )
    elif action == "close":
        code = str(request.get("resolution_code") or "")
        fields = (
            Field("resolution_code", "select", "agent.field.resolution_code", False,
                  _codes(desk), value=code),
            _comment("agent.field.comment"),
        )  # fmt: skip
        guarded = [t for t in _rules(desk, action, status, role) if t.get("guard")]
        cited = confirmations(desk, request) if guarded else ()
        if cited:
            fields += (
                Field("confirmation_version", "select", "agent.field.confirmation_version",
                      choices=cited, hint="agent.hint.confirmation_version"),
            )  # fmt: skip
    return CommandForm(action, path, role, fields)


def forms_now(
    desk: Desk,
    request: Request,
    person: str,
    roles: Sequence[str],
    staff: Sequence[Person] = (),
    now: datetime | None = None,
) -> list[CommandForm]:
    """The forms `person` (holding `roles`, their support-side roles at the request's desk)
    may send on `request` now; `staff` are the desk's people an assignment may name, `now`
    the instant a reopening window is measured at (see the module)."""
    status, category = _status(request)
    closed = category == "closed"
    found: list[CommandForm] = []
    for action in TRANSITIONS:
        role = role_for(desk, roles, action=action, status=status)
        if role is not None:
            form = _transition_form(desk, request, action, role, person, staff)
            if form is not None:
                found.append(form)
    reopen = desk.get("reopen") or {}
    if closed and reopen.get("allowed") and reopen.get("to_status"):
        role = next((r for r in roles if r in reopen.get("roles", ())), None)
        if role is not None and not _too_late(reopen.get("within_days"), request, now):
            found.append(CommandForm("reopen", "reopen", role, (_comment("agent.field.reopen"),)))
    takes_comments = not closed or bool(desk.get("comments_on_closed"))
    if takes_comments:
        for name, permission, public in (("comment", "comment_public", True),
                                         ("note", "comment_internal", False)):  # fmt: skip
            role = role_for(desk, roles, permission=permission)
            if role is not None:
                area = "reply" if public else "note"
                body = Field("body", "textarea", f"agent.field.{area}", True, max_length=MAX_BODY,
                             hint=f"agent.hint.{area}")  # fmt: skip
                found.append(CommandForm(name, PATHS[name], role, (body,), {"public": public}))
    if not closed:
        found += _permission_forms(desk, request, roles)
    final = closed and not desk.get("comments_on_closed") and not reopen.get("allowed")
    role = role_for(desk, roles, permission="mute_notifications")
    if role is not None and not final:
        found += _mute_forms(request, role)
    return found


def _mute_forms(request: Request, role: str) -> list[CommandForm]:
    """Turning a follower's mail about the request off (those who get it) or on again (those
    who turned it off): a customer asks the desk to, on the phone or by mail."""
    followers = [p for p in (request.get("requester_id"), *request.get("participants", ())) if p]
    muted = set(request.get("muted", ()))
    found = []
    for name, people in (("mute", [p for p in followers if p not in muted]),
                         ("unmute", [p for p in followers if p in muted])):  # fmt: skip
        if people:
            choices = tuple(Choice(p, text=p) for p in dict.fromkeys(people))
            who = Field("participant_id", "select", f"agent.field.{name}", True, choices)
            found.append(CommandForm(name, PATHS[name], role, (who,)))
    return found


def _too_late(days: int | None, request: Request, now: datetime | None) -> bool:
    """Whether the reopening window of `days` days (None: no limit) has ended at `now`."""
    since = closed_at(request)
    if days is None or since is None or now is None:
        return False
    return now > since + timedelta(days=days)


def _permission_forms(desk: Desk, request: Request, roles: Sequence[str]) -> list[CommandForm]:
    """The forms of the permissions an open request takes: priority, links, participants."""
    found: list[CommandForm] = []
    role = role_for(desk, roles, permission="change_priority")
    if role is not None:
        levels = tuple(Choice(p["id"], p.get("labels")) for p in desk.get("priority_levels", ()))
        fields = (
            Field("priority", "select", "agent.field.priority", True, levels,
                  value=str(request.get("priority") or "")),
            Field("reason", "textarea", "agent.field.reason", max_length=MAX_COMMENT,
                  hint="agent.hint.lowering"),
        )  # fmt: skip
        found.append(CommandForm("change_priority", PATHS["change_priority"], role, fields))
    role = role_for(desk, roles, permission="link_request")
    if role is not None:
        linked = Field("linked_key", "key", "agent.field.linked_key", True, max_length=33)
        found.append(CommandForm("link_request", PATHS["link_request"], role, (linked,)))
    role = role_for(desk, roles, permission="add_participant")
    if role is not None:
        who = Field("participant_id", "address", "agent.field.participant_id", True,
                    max_length=MAX_ADDRESS, hint="agent.hint.participant_id")  # fmt: skip
        found.append(CommandForm("add_participant", PATHS["add_participant"], role, (who,)))
    return found


def local_instant(text: str, time_zone: str) -> datetime | None:
    """A `datetime-local` value (`2026-03-10T20:00`, seconds optional) as an aware instant in
    `time_zone` (UTC when the zone is unknown); None when it is not one."""
    match = LOCAL_TIME.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(p) if p else 0 for p in match.groups())
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError:
        return None


def _rank(desk: Desk, priority: str) -> int | None:
    ids = list(desk.get("priorities", ()))
    return ids.index(priority) if priority in ids else None


@dataclass(frozen=True)
class Checked:
    """What a form's typed values make: the command's body, or the fields at fault (field
    name -> catalogue key of why); `typed` is what was typed, kept for the form again."""

    body: dict[str, Any]
    errors: dict[str, str]
    typed: dict[str, str]


def check(
    form: CommandForm, typed: Mapping[str, str], desk: Desk, request: Request, time_zone: str
) -> Checked:
    """The body of `form`'s command from `typed` (see `Checked`): each field bounded, text
    without control characters, a choice among the desk's, an instant in `time_zone`, an
    e-mail address, a request's key; a priority lowered needs a reason."""
    body: dict[str, Any] = dict(form.fixed)
    errors: dict[str, str] = {}
    kept: dict[str, str] = {}
    for f in form.fields:
        raw = typed.get(f.name, "")
        kept[f.name] = raw[: f.max_length]
        if _UNSAFE.search(raw):
            errors[f.name] = "agent.error.text"
            continue
        value = raw.strip()
        if len(value) > f.max_length:
            errors[f.name] = "agent.error.too_long"
            continue
        if not value:
            if f.required:
                errors[f.name] = "agent.error.required"
            continue
        problem, sent = _value(f, value, time_zone)
        if problem is not None:
            errors[f.name] = problem
        else:
            body[f.name] = sent
    if form.name == "assign" and not errors and not body.get("assignee_id", body.get("group_id")):
        errors["assignee_id"] = "agent.error.assign_whom"
    if form.name == "change_priority" and "priority" in body and "reason" not in errors:
        new, old = _rank(desk, body["priority"]), _rank(desk, str(request.get("priority")))
        lowering = new is not None and old is not None and new < old
        if lowering and not body.get("reason"):
            errors["reason"] = "agent.error.reason_lowering"
    return Checked(body if not errors else {}, errors, kept)


def _value(f: Field, value: str, time_zone: str) -> tuple[str | None, Any]:
    """Why `value` does not fit `f` (a catalogue key), or None and the value to send."""
    if f.kind == "select":
        if value not in {c.value for c in f.choices}:
            return "agent.error.choice", None
        if f.name == "confirmation_version":
            return None, int(value)
        return None, value
    if f.kind == "datetime":
        instant = local_instant(value, time_zone)
        if instant is None:
            return "agent.error.datetime", None
        return None, instant.isoformat()
    if f.kind == "address":
        try:
            return None, address(value)
        except ValueError:
            return "agent.error.address", None
    if f.kind == "key":
        return (None, value.upper()) if KEY.fullmatch(value) else ("agent.error.key", None)
    if f.kind == "line" and "\n" in value:
        return "agent.error.text", None
    return None, value


def changes_since(request: Request, version: int) -> list[Mapping[str, Any]]:
    """The history entries (newest first, as shown) newer than `version`: what changed since
    a page rendered at that version."""
    return [e for e in request.get("history", ()) if int(e["version"]) > version]
