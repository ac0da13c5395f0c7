"""HTTP API of the test clocks (`sla.application.testclocks`), served only where they are
enabled (`TEST_CLOCKS=true`, never in production).

- `POST /test-clocks`: a clock for a desk, frozen at `at` (201); attached to the requests created
  under it (intake's `test_clock` field), or to every new request of the desk (`attached_to:
  desk`, one such clock a desk: 409 for a second).
- `POST /test-clocks/{id}/advance`: move it forward to `to` (202, `advancing`; forward only: 422;
  already advancing: 409); it fires on the way every timer due, in order, and is `ready` there.
- `GET /test-clocks/{id}`: the clock now (`status`: advancing or ready).

Time is the desk's to move: only its administrators (roles that administer the desk) may create
or advance its clocks, its support side may read them; a verified identity is needed (401),
anyone else gets 403, and a clock of a desk the caller does not support 404, as an unknown one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from desk_contracts.identity import Identity
from desk_contracts.inputs import MAX_YEAR, MIN_YEAR, quoted
from desk_contracts.testclocks import Attachment, ClockId, TestClockChanged
from desk_platform.http import IDENTITY_ANSWERS, refusals
from desk_platform.identity import Verifier, requires_identity
from desk_policies.audience import Audience, identity_reads, leads
from sla.application.testclocks import ClockRefused, advance, clock_of, create_clock
from sla.application.timers import Desks

EARLIEST = datetime(MIN_YEAR, 1, 1, tzinfo=UTC)  # the years every instant is read in
LATEST = datetime(MAX_YEAR + 1, 1, 1, tzinfo=UTC)
LONGEST_STRIDE = timedelta(days=400)  # the furthest one advance may go


def bounded(instant: datetime) -> datetime:
    """`instant`, if it is in the years this system reads (ValueError otherwise)."""
    if not EARLIEST <= instant < LATEST:
        raise ValueError(f"an instant between the years {MIN_YEAR} and {MAX_YEAR}")
    return instant


class NewClock(BaseModel):
    """A clock to create."""

    model_config = ConfigDict(extra="forbid")

    id: ClockId | None = Field(default=None, description="its id (one is made if absent)")
    desk: str = Field(min_length=1, max_length=100)
    at: AwareDatetime = Field(description="the instant it is frozen at")
    attached_to: Attachment = "requests"
    name: str = Field(default="", max_length=200)

    @field_validator("at")
    @classmethod
    def _in_our_years(cls, at: datetime) -> datetime:
        return bounded(at)


class Advance(BaseModel):
    """Where to move a clock."""

    model_config = ConfigDict(extra="forbid")

    to: AwareDatetime

    @field_validator("to")
    @classmethod
    def _in_our_years(cls, to: datetime) -> datetime:
        return bounded(to)


class TestClock(BaseModel):
    """A test clock as it now is."""

    __test__ = False  # not a test class, for pytest

    id: str
    desk: str
    attached_to: Attachment
    name: str
    now: datetime
    status: str
    advancing_to: datetime | None

    @classmethod
    def of(cls, change: TestClockChanged) -> TestClock:
        """The clock as its latest change says."""
        return cls(
            id=change.clock_id,
            desk=change.desk,
            attached_to=change.attached_to,
            name=change.name,
            now=change.now,
            status=change.status,
            advancing_to=change.advancing_to,
        )


ANSWERS = {
    **IDENTITY_ANSWERS,
    **refusals(
        {
            403: "not an administrator of the desk (or, to read, of its support side)",
            404: "no such desk or clock (or not one the caller may see)",
            409: "the clock exists already, or is advancing already",
            422: "an invalid instant, or one not after the clock's (forward only)",
        }
    ),
}


def test_clocks_router(
    pool: asyncpg.Pool, desks: Desks, clock: Callable[[], datetime], *, verifier: Verifier
) -> APIRouter:
    """The test clocks' routes (module); `clock` is the real time, when changes are recorded."""
    router = APIRouter(tags=["test clocks"])
    identified = Depends(requires_identity(verifier))

    def administers(identity: Identity, desk: str) -> bool:
        return identity.may("write") and leads(identity, desks.policies[desk])

    async def readable(clock_id: str, identity: Identity) -> TestClockChanged:
        async with pool.acquire() as conn:
            found = await clock_of(conn, clock_id)
        supports = identity_reads(identity, desks.policies.values())
        if found is None or supports.get(found.desk) is not Audience.SUPPORT:
            raise HTTPException(404, f"no test clock {quoted(clock_id)}")
        return found

    @router.post("/test-clocks", status_code=201, responses=ANSWERS)
    async def new_clock(body: NewClock, identity: Identity = identified) -> TestClock:
        """A clock of a desk, frozen at `at`."""
        if body.desk not in desks.policies:
            raise HTTPException(404, f"no desk {quoted(body.desk)}")
        if not administers(identity, body.desk):
            raise HTTPException(403, f"only the administrators of {body.desk} move its time")
        try:
            created = await create_clock(
                pool,
                body.id or f"tc-{uuid.uuid4().hex[:12]}",
                desk=body.desk,
                at=body.at,
                attached_to=body.attached_to,
                name=body.name,
                by=identity.subject,
                now=clock(),
            )
        except ClockRefused as error:
            raise HTTPException(409, str(error)) from None
        return TestClock.of(created)

    @router.get("/test-clocks/{clock_id}", responses=ANSWERS)
    async def get_clock(
        clock_id: Annotated[str, Path(max_length=64)], identity: Identity = identified
    ) -> TestClock:
        """The clock now: its instant, and whether it is advancing or ready."""
        return TestClock.of(await readable(clock_id, identity))

    @router.post("/test-clocks/{clock_id}/advance", status_code=202, responses=ANSWERS)
    async def advance_clock(
        clock_id: Annotated[str, Path(max_length=64)],
        body: Advance,
        identity: Identity = identified,
    ) -> TestClock:
        """Move the clock forward to `to`: it is advancing until every timer due on the way has
        fired, then ready."""
        found = await readable(clock_id, identity)
        if not administers(identity, found.desk):
            raise HTTPException(403, f"only the administrators of {found.desk} move its time")
        if body.to - found.now > LONGEST_STRIDE:
            raise HTTPException(422, f"one advance goes at most {LONGEST_STRIDE.days} days")
        try:
            moved = await advance(pool, clock_id, body.to, clock())
        except ClockRefused as error:
            raise HTTPException(409 if error.conflict else 422, str(error)) from None
        if moved is None:
            raise HTTPException(404, f"no test clock {quoted(clock_id)}")
        return TestClock.of(moved)

    return router
