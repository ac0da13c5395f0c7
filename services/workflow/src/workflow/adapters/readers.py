"""Who reads a request of workflow, and as whom: the one rule of its reads and commands.

The caller is a verified identity (`desk_platform.identity`). Who reads comes first, before any
request is looked up: a caller who reads no desk's requests (or who chooses, in `X-Actor-Role`,
a role their identity grants at no desk) gets 403 whatever they ask for, so they cannot probe
which keys exist. Then a request they may not read (no reading role at its desk, or a customer
of another organisation) is answered 404, as an unknown one (`desk_policies.audience`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fastapi import HTTPException

from desk_contracts.identity import Identity
from desk_contracts.inputs import quoted
from desk_policies.audience import Audience, NotYourRole, reader_desks, request_reader
from desk_policies.model import DeskPolicy
from workflow.application.tickets import Loaded


def desks_read_by(
    identity: Identity, policies: Iterable[DeskPolicy], role: str | None
) -> dict[str, Audience]:
    """The desks whose requests `identity` reads (in `role` when they choose one), and as whom;
    403 when none, or when they do not hold `role`."""
    try:
        return reader_desks(identity, policies, role)
    except NotYourRole as error:
        raise HTTPException(403, str(error)) from None


def reader_of(
    loaded: Loaded, ticket: str, identity: Identity, desks: Mapping[str, Audience]
) -> Audience:
    """As whom `identity`, reading `desks`, reads the request `loaded` (asked as `ticket`); 404
    when they may not read it, as for an unknown request."""
    state = loaded.state
    audience = request_reader(identity, desks, state.policy.id, state.organisation_id)
    if audience is None:
        raise HTTPException(404, f"no request {quoted(ticket)}")
    return audience
