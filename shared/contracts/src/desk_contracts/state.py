"""A request's state as workflow publishes it: the one view of a request every other service reads.

workflow owns each request's stream and folds it (`desk_policies.requests.evolve`, the one fold);
with every event it appends it stores the state *after* that event in the event's metadata
(`STATE_METADATA`), and the relay sends it with the event on `ticket-events` as the record's
`request-state` header (JSON) beside `request-state-schema` (this contract's URN). A reader takes
the event (what happened) and the request as it then stood from the same record, in the ticket's
order, and folds nothing itself. Replaying the log or the store gives both again.

Versioning obeys the rule of `desk_contracts.schemas`: a published version may only gain optional
fields; readers ignore fields they do not know (a newer producer may add some).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

STATE_METADATA = "request"  # key of the state in an event's stored metadata
STATE_HEADER = "request-state"
STATE_SCHEMA_HEADER = "request-state-schema"


class RequestState(BaseModel):
    """The request after the event it travels with (`version` is that event's stream version).

    `waiting_since` is when the request started waiting for the customer in a status its desk's
    automations watch (entering one, moving to another, or the last change by a person while
    there); `waiting_version` the version of that event, None/0 when it is not waiting. Waiting
    days ("N days without an answer") count from it, by the desk policy's `waited_until`.
    `person_changed_at` is the last event caused by a person (not the desk's automations);
    `last_change_version` the last event other than an automatic reminder.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_name: ClassVar[str] = "RequestState"
    schema_version: ClassVar[int] = 1

    ticket_id: str
    key: str
    policy_id: str
    version: int = Field(ge=1)
    request_type: str
    priority: str
    status: str
    category: str  # open | waiting | closed (desk_policies.model.StatusCategory)
    expected_actor: str | None = None  # the role expected to act next; None once closed
    organisation_id: str
    requester_id: str
    created_by: str
    created_by_role: str
    channel: str
    language: str
    subject: str
    source_message_id: str | None = None  # the e-mail that opened the request, if any
    participants: tuple[str, ...] = ()
    muted: tuple[str, ...] = ()
    assignee_id: str | None = None
    group_id: str | None = None
    links: tuple[str, ...] = ()
    resolution_code: str | None = None
    resolution_confirmed: bool = False
    created_at: AwareDatetime
    updated_at: AwareDatetime
    closed_at: AwareDatetime | None = None
    waiting_since: AwareDatetime | None = None
    waiting_version: int = 0
    person_changed_at: AwareDatetime | None = None
    last_change_version: int = 0
    reminders_sent: tuple[int, ...] = ()  # waiting days already reminded since waiting_since
    survey_rating: int | None = None
    test_clock: str | None = None  # the test clock it lives on (desk_contracts.testclocks)

    @classmethod
    def urn(cls) -> str:
        return f"urn:desk:schema:{cls.schema_name}:v{cls.schema_version}"


class MissingState(ValueError):
    """A ticket event published without the request's state, or with one that is not valid."""


def state_of(state: Mapping[str, Any] | None) -> RequestState:
    """The published state carried by a record (`Envelope.request_state`); MissingState when
    absent or invalid (a reader cannot apply such an event: it is dead-lettered)."""
    if state is None:
        raise MissingState("the event carries no request state (request-state header)")
    try:
        return RequestState.model_validate(dict(state))
    except ValueError as error:
        raise MissingState(f"invalid request state: {error}") from None
