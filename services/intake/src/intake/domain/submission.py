"""A submitted request checked against its desk policy and the directory, then turned into
`TicketCreated` (pure).

A requester files into their own organisation only (the one their verified identity carries, or
for mail the directory's); staff filing on a client's behalf name an organisation of the
directory (`Directory.may_file_into`, by the side of the submitter's role).
Everyone a request names receives its mail, so the requester, the participants and the creator
(when not the requester) must be people the directory admits in the request's organisation
(`Directory.may_request`, `Directory.may_take_part`): a request cannot send our mail elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from desk_contracts.inputs import MAX_LINE, MAX_NAME, MAX_PEOPLE, MAX_TEXT, Address
from desk_contracts.testclocks import ClockId
from desk_contracts.tickets import Attachment, Channel, TicketCreated
from desk_policies.directory import Directory
from desk_policies.model import DeskPolicy, Side

MAX_ATTACHMENTS = 10  # files one request carries
SHA256 = r"^[0-9a-f]{64}$"  # how the blob store names a file (`desk_platform.blobs`)
REQUEST_KEY = r"^[A-Z][A-Z0-9]{0,19}-[0-9]{1,12}$"  # a request's key: type prefix and number


class SubmittedAttachment(BaseModel):
    """A file the submitter already put in the blob store (the portal does), by its sha256."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    filename: str = Field(min_length=1, max_length=200)
    content_type: str = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")
    size: int = Field(ge=0)
    sha256: str = Field(pattern=SHA256)

    @field_validator("filename")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        """A file's name only: no folder, no control character."""
        if any(c in value for c in "/\\") or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("must be a file name: no folder and no control character")
        return value

    def attachment(self) -> Attachment:
        """The attachment as the request's creation records it."""
        return Attachment(
            filename=self.filename, content_type=self.content_type, size=self.size,
            sha256=self.sha256,
        )  # fmt: skip


class Submission(BaseModel):
    """What a requester (or sales administration on a client's behalf) submits."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    policy_id: str = Field(min_length=1, max_length=100, description="the desk, e.g. erp-vendor")
    request_type: str = Field(
        min_length=1, max_length=100, description="request type id of the desk, e.g. spt"
    )
    priority: str = Field(min_length=1, max_length=100)
    subject: str = Field(min_length=3, max_length=MAX_NAME)
    description: str = Field(min_length=1, max_length=MAX_TEXT)
    organisation_id: str = Field(min_length=1, max_length=MAX_NAME)
    requester: Address = Field(description="requester's e-mail")
    participants: list[Address] = Field(default_factory=list, max_length=MAX_PEOPLE)
    product_version: str | None = Field(default=None, max_length=100)
    company: str | None = Field(default=None, max_length=MAX_NAME)
    contact: str | None = Field(default=None, max_length=MAX_LINE)
    error_message: str | None = Field(default=None, max_length=MAX_TEXT)
    language: str = Field(default="en", pattern=r"^(fr|en)$")
    references: str | None = Field(
        default=None, max_length=33, pattern=REQUEST_KEY,
        description="key of an earlier request this one follows (e.g. a closed one), SPT-1042",
    )  # fmt: skip
    test_clock: ClockId | None = Field(
        default=None,
        description="where test clocks are enabled (never in production): the test clock of "
        "the desk the request lives on (desk_contracts.testclocks)",
    )
    attachments: list[SubmittedAttachment] = Field(
        default_factory=list, max_length=MAX_ATTACHMENTS,
        description="files already in the blob store, by sha256 (an unknown one is refused)",
    )  # fmt: skip

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        """A NUL character cannot be stored (PostgreSQL text/jsonb): refuse it up front."""
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(t, str) and "\x00" in t for t in texts):
            raise ValueError("must not contain a NUL character")
        return value


@dataclass(frozen=True)
class Refusal:
    """Why a submission is not a valid request: the field and a sentence a person understands."""

    field: str
    reason: str
    kind: str = "invalid"  # invalid input | forbidden (the submitter may not) | conflict | flooded
    retry_after: int | None = None  # flooded: seconds until the hour's window frees


@dataclass(frozen=True)
class Submitter:
    """Who submits (an address), in which role of the desk, and the organisation their verified
    identity places them in (None: the directory places them, as for mail)."""

    id: str
    role: str
    organisation: str | None = None


def check(
    submission: Submission, policy: DeskPolicy, submitter: Submitter, directory: Directory
) -> Refusal | None:
    """Why `submission` is not a request `submitter` may make at `policy`'s desk (None: it is)."""
    request_type = policy.request_type(submission.request_type)
    if request_type is None:
        known = ", ".join(t.id for t in policy.request_types)
        return Refusal(
            "request_type",
            f"{submission.request_type!r} is not a request type of {policy.id} (known: {known})",
        )
    if policy.priority_rank(submission.priority) is None:
        known = ", ".join(p.id for p in policy.priorities)
        return Refusal("priority", f"{submission.priority!r} is not a priority (known: {known})")
    if submitter.role not in request_type.creators:
        allowed = ", ".join(request_type.creators)
        return Refusal(
            "request_type",
            f"a {submitter.role} may not create {request_type.prefix} requests (only: {allowed})",
            kind="forbidden",
        )
    role = policy.role(submitter.role)
    side = role.side if role is not None else Side.CUSTOMER
    refused = directory.may_file_into(
        submitter.id, submission.organisation_id, side, placed_in=submitter.organisation
    )
    if refused is not None:  # staff named an unknown organisation; anyone else, not their own
        return Refusal(
            "organisation_id", refused, "invalid" if side is Side.SUPPORT else "forbidden"
        )
    return _people(submission, policy, submitter, directory)


def _people(
    submission: Submission, policy: DeskPolicy, submitter: Submitter, directory: Directory
) -> Refusal | None:
    """The people the request names (who will receive its mail) must be admitted in its
    organisation by the directory."""
    organisation = submission.organisation_id
    refused = directory.may_request(submission.requester, organisation, policy.id)
    if refused is not None:
        return Refusal("requester", f"the requester may not receive this request's mail: {refused}")
    for address in submission.participants:
        refused = directory.may_take_part(address, organisation, policy.id)
        if refused is not None:
            return Refusal("participants", f"participant refused: {refused}")
    if submitter.id.lower() != submission.requester.lower():
        refused = directory.may_take_part(submitter.id, organisation, policy.id)
        if refused is not None:
            # the creator is whom the identity names: the refusal names where it came from
            return Refusal(
                "Authorization", f"the creator may not take part: {refused}", "forbidden"
            )
    return None


def ticket_created(
    submission: Submission,
    policy: DeskPolicy,
    submitter: Submitter,
    *,
    ticket_id: str,
    sequence: int,
    channel: Channel,
    now: datetime,
    source_message_id: str | None = None,
    attachments: tuple[Attachment, ...] = (),
    test_clock: str | None = None,
) -> TicketCreated:
    request_type = policy.request_type(submission.request_type)
    assert request_type is not None, "check() first"
    return TicketCreated(
        ticket_id=ticket_id,
        occurred_at=now,
        key=f"{request_type.prefix}-{sequence}",
        policy_id=policy.id,
        request_type=request_type.id,
        priority=submission.priority,
        subject=submission.subject,
        description=submission.description,
        organisation_id=submission.organisation_id,
        requester_id=submission.requester.lower(),
        created_by=submitter.id.lower(),
        created_by_role=submitter.role,
        channel=channel,
        participants=tuple(dict.fromkeys(p.lower() for p in submission.participants)),
        product_version=submission.product_version,
        company=submission.company,
        contact=submission.contact,
        error_message=submission.error_message,
        language=submission.language,
        source_message_id=source_message_id,
        attachments=(*attachments, *(a.attachment() for a in submission.attachments)),
        references=submission.references,
        test_clock=test_clock,
    )
