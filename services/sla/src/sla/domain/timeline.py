"""What the clocks read of a request: its status and priority after each of its events.

workflow publishes the request's state with every ticket event (`desk_contracts.state`). sla
folds no event itself: it keeps, per version, the status and priority that state gives and
since when (`Step.of`), and reads the clocks from that timeline and the latest state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from desk_contracts.state import RequestState
from sla.domain.business_time import as_utc

__all__ = ["Step", "Timeline"]


@dataclass(frozen=True, slots=True)
class Step:
    """The request from `at` (UTC) on, as the event of stream version `version` left it."""

    version: int
    at: datetime
    status: str
    priority: str

    @classmethod
    def of(cls, state: RequestState) -> Step:
        """The step a published state says (its `updated_at` is when its event happened: the
        one fold sets it to each event's `occurred_at`); ValueError for a naive time."""
        return cls(state.version, as_utc(state.updated_at), state.status, state.priority)


@dataclass(frozen=True, slots=True)
class Timeline:
    """A request's steps in version order, from its creation (version 1)."""

    steps: tuple[Step, ...]

    @classmethod
    def of(cls, states: Iterable[RequestState]) -> Timeline:
        """The timeline of the states published with a request's events, in order."""
        return cls(tuple(Step.of(state) for state in states))

    @property
    def missing(self) -> int | None:
        """The first version the timeline lacks (1 when empty); None when it has no gap."""
        for expected, step in enumerate(self.steps, start=1):
            if step.version != expected:
                return expected
        return None if self.steps else 1
