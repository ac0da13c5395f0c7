"""The clocks' timeline cut at an instant (pure), and the instants sla reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from desk_contracts.state import RequestState
from sla.domain.as_of import timeline_at
from sla.domain.timeline import Step, Timeline

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
TIMELINE = Timeline(
    (
        Step(1, T0, "open", "critical"),
        Step(2, T0 + HOUR, "open", "high"),
        Step(3, T0 + 2 * HOUR, "in_progress", "high"),
    )
)
STATE = RequestState(
    ticket_id="t-1", key="SPT-1", policy_id="erp-vendor", version=3, request_type="support",
    priority="high", status="in_progress", category="open", organisation_id="acme",
    requester_id="anne@acme.example", created_by="anne@acme.example",
    created_by_role="requester", channel="portal", language="fr", subject="s",
    created_at=T0, updated_at=T0 + 2 * HOUR,
)  # fmt: skip


def test_the_timeline_is_cut_at_the_instant_and_the_state_follows_it() -> None:
    assert timeline_at(TIMELINE, STATE, T0 - timedelta(seconds=1)) is None
    cut = timeline_at(TIMELINE, STATE, T0 + HOUR)  # exactly at the second step
    assert cut is not None
    timeline, state = cut
    assert [s.version for s in timeline.steps] == [1, 2]
    assert (state.version, state.status, state.priority) == (2, "open", "high")
    assert state.updated_at == T0 + HOUR
    whole = timeline_at(TIMELINE, STATE, T0 + 9 * HOUR)
    assert whole is not None and whole[1] == STATE.model_copy(update={"updated_at": T0 + 2 * HOUR})
