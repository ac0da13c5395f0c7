"""A request's clocks as they stood at an instant (pure): its timeline cut there.

The timeline (`sla.domain.timeline`) is the request's status and priority after each version,
from when its event happened. At `as_of`, the request had the steps up to the first one after
that instant (a stream is cut once, so the clocks read a state the request really had); its
clocks are then read with that timeline and `now = as_of` (`sla.domain.clocks.read_clocks`),
as if sla were asked at that instant. Before its creation the request had no clocks (None).

An instant given from outside is read by the one rule of instants (`desk_contracts.inputs.
instant`).
"""

from __future__ import annotations

from datetime import datetime

from desk_contracts.state import RequestState
from sla.domain.timeline import Timeline


def timeline_at(
    timeline: Timeline, state: RequestState, as_of: datetime
) -> tuple[Timeline, RequestState] | None:
    """The request's timeline and state as they stood at `as_of` (see module); None before
    its creation."""
    kept = []
    for step in timeline.steps:
        if step.at > as_of:
            break
        kept.append(step)
    if not kept:
        return None
    last = kept[-1]
    then = state.model_copy(
        update={
            "version": last.version,
            "status": last.status,
            "priority": last.priority,
            "updated_at": last.at,
        }
    )
    return Timeline(tuple(kept)), then
