"""Test clocks: a controllable time for the requests of a test environment (never production).

A test clock is created at a frozen instant for a desk and only moves forward. The requests it
is attached to (those created under it, or every new request of its desk when it is attached to
the desk) live on its time: every service reads "now" for them from the clock. sla owns the
clocks (it keeps them and advances them, firing the timers due on the way) and publishes each
change as `TestClockChanged` on `test-clocks` (key = `test-clock:<id>`): the clock's whole state,
so a reader keeps the latest one of each clock and folds nothing.

While a clock is `advancing` it moves step by step towards `advancing_to`, one due timer at a
time; it is `ready` again once there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

ClockId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
Attachment = Literal["requests", "desk"]  # what a clock is attached to (see module)
ClockStatus = Literal["ready", "advancing"]


def clock_stream(clock_id: str) -> str:
    """The stream of a clock's events (and the Kafka key of their records)."""
    return f"test-clock:{clock_id}"


class TestClockChanged(BaseModel):
    """A test clock as it now is: created, moved a step, or ready again."""

    __test__: ClassVar[bool] = False  # not a test class, for pytest
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str] = "TestClockChanged"
    schema_version: ClassVar[int] = 1

    clock_id: ClockId
    desk: str = Field(min_length=1, max_length=100)
    attached_to: Attachment = "requests"
    name: str = Field(default="", max_length=200)
    now: AwareDatetime  # the clock's instant
    status: ClockStatus = "ready"
    advancing_to: AwareDatetime | None = None
    occurred_at: datetime  # when it changed, in real time
