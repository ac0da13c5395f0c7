"""Workflow's commands over HTTP: one operation per command (`POST /requests/{ticket}/assign`,
`/add-comment`...), generated from the command classes so that the OpenAPI document cannot drift
from them. Each operation's path is its class's name in kebab case; its body, the class's fields
but the actor and how a comment arrived (`NOT_IN_BODY`; an unknown field is refused: 422 naming
it); its summary and description, the class's docstring and, read from the policies served,
which desks and roles may send it and the values each desk accepts; every answer is documented.

Who acts is the verified identity (`Authorization: Bearer`, a token the portal signed for
workflow: 401 without one; a read-only token may send no command, 403): its subject, of its
organisation, in the role it grants at the request's desk (`acting_role`; `X-Actor-Role` may
choose among those roles, 403 for one it grants at no desk). An actor who may not read the
request gets 404, as for an unknown one (`workflow.adapters.readers`). `If-Match` (the request's
`ETag`, its version) makes a command conditional: 412 once the request has moved on.

A refusal says why: 422 names the field at fault (an unknown resolution code lists the desk's),
409 is the desk's policy or the request's state refusing, or a concurrent change (reload and
retry), or a request at its size limit (open a new one that references it).

`add-participant` names someone who will receive the request's mail: the directory must admit
them in the request's organisation (`Directory.may_take_part`), else 422 with the reason. So
must `assign` its assignee (mailed too), who must be staff of the request's desk
(`Directory.may_be_assigned`). A group (`group_id`) is a name the desk uses: the policies and
the directory define no groups, and no mail goes to one. The checks are here, not in the pure
`decide`, because the directory is the deployment's data (the portal's, as this process's feed
of it has it now).

The desk's own commands (`SYSTEM_ONLY`: reminders, automatic closing, failed deliveries) come
from sla and the notifier over Kafka, never over HTTP.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Annotated, Any, get_type_hints

import asyncpg
from fastapi import APIRouter, Body, Depends, Header, HTTPException, Path, Response
from pydantic import BaseModel, ConfigDict, Field, create_model

from desk_contracts.identity import Identity
from desk_contracts.inputs import quoted
from desk_eventstore.store import ConcurrencyError, StreamFull
from desk_platform.edge import refusal
from desk_platform.http import (
    BODY_ANSWERS,
    IDENTITY_ANSWERS,
    INVALID,
    RoleChoice,
    refusals,
    refuse_read_only,
)
from desk_platform.identity import Verifier, requires_identity
from desk_platform.logging import log_context
from desk_platform.testclocks import RequestTime
from desk_policies.actions import Action, Permission
from desk_policies.audience import NotYourRole, acting_role
from desk_policies.directory import Directory, DirectorySource, current_directory
from desk_policies.model import DeskPolicy
from workflow.adapters.readers import desks_read_by, reader_of
from workflow.application.tickets import Loaded, execute
from workflow.domain import commands as c
from workflow.domain.commands import Actor, Command
from workflow.domain.decide import HANDLERS
from workflow.domain.rules import Rejection

SYSTEM_ONLY = (c.SendReminder, c.AutoClose, c.RecordDeliveryFailure)

REOPEN = "reopen"  # the desk's reopening rule (`DeskPolicy.reopen`), not a transition
Rule = Action | tuple[Permission, ...] | str
# the policy rule that says who may send each command (a command missing here stops the app
# at start: say who may send it)
RULES: dict[type[Command], Rule] = {
    c.Qualify: Action.QUALIFY,
    c.Assign: Action.ASSIGN,
    c.StartWork: Action.START,
    c.RequestInformation: Action.REQUEST_INFORMATION,
    c.WaitForThirdParty: Action.WAIT_FOR_THIRD_PARTY,
    c.ScheduleOperation: Action.SCHEDULE_OPERATION,
    c.Escalate: Action.ESCALATE,
    c.ReturnFromEscalation: Action.RETURN_FROM_ESCALATION,
    c.Resolve: Action.RESOLVE,
    c.ConfirmResolution: Action.CONFIRM_RESOLUTION,
    c.DisputeResolution: Action.DISPUTE_RESOLUTION,
    c.Close: Action.CLOSE,
    c.Reopen: REOPEN,
    c.AddComment: (Permission.COMMENT_PUBLIC, Permission.COMMENT_INTERNAL),
    c.ChangePriority: (Permission.CHANGE_PRIORITY,),
    c.EscalateByRequester: (Permission.REQUESTER_ESCALATION,),
    c.LinkRequest: (Permission.LINK_REQUEST,),
    c.AddParticipant: (Permission.ADD_PARTICIPANT,),
    c.MuteNotifications: (Permission.MUTE_NOTIFICATIONS,),
    c.UnmuteNotifications: (Permission.MUTE_NOTIFICATIONS,),
    c.AnswerSurvey: (Permission.ANSWER_SURVEY,),
}

# one valid body of each command, shown in the document (a unit test validates each)
EXAMPLES: dict[type[Command], dict[str, Any]] = {
    c.Assign: {"assignee_id": "lea@desk.example"},
    c.RequestInformation: {"comment": "Which version of the add-on do you run?"},
    c.WaitForThirdParty: {"party": "atlassian", "comment": "Reported to Atlassian as JSD-1234"},
    c.ScheduleOperation: {
        "scheduled_for": "2026-03-10T20:00:00+01:00",
        "responsible": "lea@desk.example",
        "comment": "Upgrade to 9.12 during the maintenance window",
    },
    c.Escalate: {"target": "level2", "comment": "Needs a consultant"},
    c.ReturnFromEscalation: {"comment": "Analysed: a configuration issue"},
    c.Resolve: {"resolution_code": "done", "comment": "Fixed by the 4.3 update"},
    c.ConfirmResolution: {"comment": "It works, thank you"},
    c.DisputeResolution: {"comment": "The export still fails"},
    c.Close: {"resolution_code": "done"},
    c.Reopen: {"comment": "The error is back"},
    c.AddComment: {"body": "We are looking into it.", "public": True},
    c.ChangePriority: {"priority": "high", "reason": "The month-end closing is blocked"},
    c.EscalateByRequester: {"reason": "No answer for a week"},
    c.LinkRequest: {"linked_key": "SUP-1001"},
    c.AddParticipant: {"participant_id": "bruno@acme.example"},
    c.MuteNotifications: {"participant_id": "bruno@acme.example"},
    c.UnmuteNotifications: {"participant_id": "bruno@acme.example"},
    c.AnswerSurvey: {"rating": 5, "comment": "Quick and clear"},
}

# body fields whose valid values are the desk's: told per desk in the field's description
DESK_VALUES: dict[str, Callable[[DeskPolicy], Iterable[str]]] = {
    "resolution_code": lambda p: (code.id for code in p.resolution_codes),
    "priority": lambda p: (priority.id for priority in p.priorities),
    "target": lambda p: p.escalations,
    "party": lambda p: p.third_parties or ("any name",),
}


def kebab(name: str) -> str:
    """`AddComment` -> `add-comment`: a command's path."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def http_commands() -> list[type[Command]]:
    """The commands a person sends: every command `decide` handles but the desk's own."""
    return [command for command in HANDLERS if command not in SYSTEM_ONLY]


class CommandAccepted(BaseModel):
    """What a command did: the request after it (its version is also the new `ETag`) and the
    events it caused."""

    ticket_id: str
    key: str
    status: str | None
    version: int
    events: list[str] = Field(description="the types of the events recorded, in order")


# fields a client never sends: who acts is the verified identity, and how a comment arrived (an
# e-mail, its Message-ID) is set by the mail gateway alone; over HTTP it is the portal's
NOT_IN_BODY = frozenset({"actor", "channel", "source_message_id"})


def body_model(command: type[Command], policies: dict[str, DeskPolicy]) -> type[BaseModel]:
    """The body of `command`'s operation: its fields but `NOT_IN_BODY`, unknown fields refused,
    a field whose values are the desk's told per desk (`DESK_VALUES`)."""
    hints = get_type_hints(command, include_extras=True)
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(command):
        if field.name in NOT_IN_BODY:
            continue
        told = _values(field.name, policies)
        if field.default_factory is not dataclasses.MISSING:
            info = Field(default_factory=field.default_factory, description=told)
        else:
            required = field.default is dataclasses.MISSING
            info = Field(... if required else field.default, description=told)
        fields[field.name] = (hints[field.name], info)
    config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLES.get(command, {})]})
    return create_model(
        f"{command.__name__}Body",
        __config__=config,
        __doc__=inspect.cleandoc(command.__doc__ or ""),
        **fields,
    )


def _values(field: str, policies: dict[str, DeskPolicy]) -> str | None:
    values = DESK_VALUES.get(field)
    if values is None:
        return None
    told = "; ".join(f"{p.id}: {', '.join(values(p))}" for p in policies.values())
    return f"one of the desk's values ({told})"


def who_may(command: type[Command], policies: dict[str, DeskPolicy]) -> str:
    """Markdown: by desk, the roles that may send `command` and from which statuses."""
    rule = RULES[command]
    lines = [f"- `{policy.id}`: {_allowed(rule, policy)}" for policy in policies.values()]
    return (
        "**Who may send it** (the roles your identity grants at the request's desk; "
        "`X-Actor-Role` chooses one), by desk:\n\n" + "\n".join(lines)
    )


def _allowed(rule: Rule, policy: DeskPolicy) -> str:
    if isinstance(rule, Action):
        moves = [
            f"{', '.join(t.roles)} from {', '.join(t.from_)}" + (f" (to {t.to})" if t.to else "")
            for t in policy.transitions
            if t.action is rule
        ]
        return "; ".join(moves) or "not offered"
    if isinstance(rule, tuple):
        granted = [
            f"{p.value}: {', '.join(policy.permissions.get(p, ())) or 'nobody'}" for p in rule
        ]
        return "; ".join(granted)
    reopen = policy.reopen
    if not reopen.allowed:
        return "not offered (a closed request is final)"
    within = f" within {reopen.within_days} days" if reopen.within_days else ""
    return f"{', '.join(reopen.roles)}{within} (to {reopen.to_status})"


@dataclass(frozen=True)
class Caller:
    """Who sends a command (a verified identity that may write, and the role they choose, if
    any), and on which condition."""

    identity: Identity
    role: str | None
    if_match: str | None
    correlation_id: str


def caller_of(verifier: Verifier) -> Callable[..., Awaitable[Caller]]:
    """The dependency giving a command its caller: 401 without a verified identity, 403 for a
    read-only one."""
    identified = Depends(requires_identity(verifier))  # the verified caller

    async def caller(
        identity: Identity = identified,
        x_actor_role: RoleChoice = None,
        if_match: Annotated[
            str | None, Header(max_length=64, description="the request's ETag: act only on it")
        ] = None,
        x_correlation_id: Annotated[str | None, Header(max_length=200)] = None,
    ) -> Caller:
        refuse_read_only(identity)
        return Caller(identity, x_actor_role, if_match, x_correlation_id or str(uuid.uuid4()))

    return caller


ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "done: the request after the command",
        "headers": {
            "ETag": {"description": "the request's new version", "schema": {"type": "string"}}
        },
    },
    **IDENTITY_ANSWERS,
    **refusals(
        {
            403: "a read-only token, an identity that reads no desk's requests, or an "
            "X-Actor-Role it does not grant",
            404: "no such request (or not one the actor may see)",
            409: "refused by the desk's policy or the request's state (`detail` says why), "
            "or changed meanwhile (reload and retry), or at its size limit",
            412: "If-Match is not the request's version: reload it",
        }
    ),
    422: {
        "description": f"{INVALID}; a value the desk does not accept (`detail` lists the valid "
        "ones), or a person the directory does not admit"
    },
    **BODY_ANSWERS,
}

LoadFor = Callable[[asyncpg.Connection, str], Awaitable[Loaded]]
MakeCommand = Callable[[Actor], Command]


def command_router(
    pool: asyncpg.Pool,
    policies: dict[str, DeskPolicy],
    times: RequestTime,
    people: DirectorySource,
    loaded_for: LoadFor,
    verifier: Verifier,
) -> APIRouter:
    """The command operations; `verifier` checks who calls, `loaded_for` finds a request (404);
    an actor who may not read it is refused as the reads refuse (`workflow.adapters.readers`);
    `times` says what time it is for a request (its test clock's, if it lives on one)."""
    router = APIRouter(tags=["commands"])
    caller = caller_of(verifier)

    async def act(
        ticket: str, make: MakeCommand, who: Caller, response: Response
    ) -> CommandAccepted:
        desks = desks_read_by(who.identity, policies.values(), who.role)  # before any lookup
        async with pool.acquire() as conn, conn.transaction():
            loaded = await loaded_for(conn, ticket)
            reader_of(loaded, ticket, who.identity, desks)
            try:
                role = acting_role(who.identity, loaded.state.policy, who.role)
            except NotYourRole as error:
                raise HTTPException(403, str(error)) from None
            identity = who.identity
            _check_version(loaded, who.if_match)
            command = _admitted(
                make(Actor(identity.subject, role, identity.organisation)),
                loaded,
                current_directory(people),
            )
            with log_context(ticket_id=loaded.state.ticket_id, correlation_id=who.correlation_id):
                try:
                    outcome = await execute(
                        conn,
                        loaded,
                        command,
                        times.now(loaded.state.test_clock),
                        correlation_id=who.correlation_id,
                    )
                except ConcurrencyError as error:
                    raise HTTPException(409, f"{error}: reload and try again") from None
                except StreamFull:
                    key = loaded.state.key
                    raise HTTPException(
                        409,
                        f"request {key} has reached its size limit: "
                        f"open a new request that references {key}",
                    ) from None
        if isinstance(outcome, Rejection):
            raise _refused(outcome)
        response.headers["ETag"] = f'"{outcome.state.version}"'
        return CommandAccepted(
            ticket_id=outcome.state.ticket_id,
            key=outcome.state.key,
            status=outcome.state.status,
            version=outcome.state.version,
            events=[e.event_type for e in outcome.events],
        )

    for command in http_commands():
        path = f"/requests/{{ticket}}/{kebab(command.__name__)}"
        summary, _, details = inspect.cleandoc(command.__doc__ or "").partition("\n\n")
        router.add_api_route(
            path,
            _endpoint(command, body_model(command, policies), caller, act),
            methods=["POST"],
            name=command.__name__,
            operation_id=kebab(command.__name__).replace("-", "_"),
            summary=summary,
            description=f"{details}\n\n{who_may(command, policies)}".strip(),
            response_model=CommandAccepted,
            responses=ANSWERS,
        )

    known = ", ".join(kebab(command.__name__) for command in http_commands())

    @router.post(
        "/requests/{ticket}/{command}", include_in_schema=False, dependencies=[Depends(caller)]
    )
    async def unknown_command(ticket: str, command: str) -> None:
        """A command that is none of the above: 404 listing those there are (to a verified
        caller, as every command)."""
        raise HTTPException(404, f"no command {quoted(command)} (commands: {known})")

    return router


Act = Callable[[str, MakeCommand, Caller, Response], Awaitable[CommandAccepted]]


def _endpoint(
    command: type[Command],
    model: type[BaseModel],
    caller: Callable[..., Awaitable[Caller]],
    act: Act,
) -> Callable[..., Any]:
    """The route function of `command`: FastAPI reads its signature (made here, as the body's
    model is made at run time); the body may be left out when no field is required. The actor
    is known once the request's desk is (their role there)."""
    required = any(field.is_required() for field in model.model_fields.values())

    async def endpoint(
        ticket: str, response: Response, who: Caller, body: BaseModel | None = None
    ) -> CommandAccepted:
        fields = {} if body is None else {name: getattr(body, name) for name in model.model_fields}
        return await act(ticket, lambda actor: command(actor=actor, **fields), who, response)

    keyword = inspect.Parameter.KEYWORD_ONLY
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                "ticket",
                keyword,
                annotation=Annotated[str, Path(description="the request's key (SUP-1042) or id")],
            ),
            inspect.Parameter("response", keyword, annotation=Response),
            inspect.Parameter("who", keyword, annotation=Annotated[Caller, Depends(caller)]),
            inspect.Parameter(
                "body",
                keyword,
                annotation=Annotated[model if required else model | None, Body()],
                default=inspect.Parameter.empty if required else None,
            ),
        ],
        return_annotation=CommandAccepted,
    )
    return endpoint


def _check_version(loaded: Loaded, if_match: str | None) -> None:
    """412 unless `if_match` (when given) is the request's version."""
    if if_match is not None and if_match.strip('"') != str(loaded.state.version):
        raise HTTPException(
            412,
            f"request {loaded.state.key} is at version {loaded.state.version}, "
            f"not {quoted(if_match)}: reload it",
        )


def _admitted(command: Command, loaded: Loaded, people: Directory) -> Command:
    """`command` once the directory admits the people it names (see module); 422 if not."""
    state = loaded.state
    if isinstance(command, c.AddParticipant):
        refused = people.may_take_part(
            command.participant_id, state.organisation_id, state.policy.id
        )
        if refused is not None:
            raise _invalid("participant_id", f"participant refused: {refused}")
        return replace(command, participant_id=command.participant_id.lower())
    if isinstance(command, c.Assign) and command.assignee_id is not None:
        refused = people.may_be_assigned(command.assignee_id, state.policy.id)
        if refused is not None:
            raise _invalid("assignee_id", f"assignee refused: {refused}")
    return command


def _invalid(field: str, reason: str) -> HTTPException:
    return HTTPException(422, [refusal(("body", field), reason, "invalid")])


def _refused(rejection: Rejection) -> HTTPException:
    """A rejection's answer: 422 naming the field at fault, else 409."""
    if rejection.field is not None:
        return _invalid(rejection.field, rejection.reason)
    return HTTPException(409, rejection.reason)
