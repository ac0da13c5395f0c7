"""How sla's timer metrics read (`sla.adapters.metrics`, `sla.application.timers.lateness`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest

from sla.adapters.metrics import TimerMetrics
from sla.application.timers import lateness
from sla.domain.timers import TimerKind

DUE = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def test_lateness_is_the_time_after_the_due_instant_never_negative() -> None:
    assert lateness(DUE, DUE + timedelta(seconds=2.5)) == 2.5
    assert lateness(DUE, DUE - timedelta(seconds=1)) == 0.0


def test_every_kind_is_exposed_from_the_start_and_due_kinds_not_read_are_zero() -> None:
    registry = CollectorRegistry()
    meter = TimerMetrics(registry)
    text = generate_latest(registry).decode()
    for kind in TimerKind:
        assert f'desk_sla_timers_armed_total{{kind="{kind}"}} 0.0' in text
        assert f'desk_sla_timers_fired_total{{kind="{kind}"}} 0.0' in text
    meter.due({TimerKind.REMINDER: 3})
    meter.due({TimerKind.AUTO_CLOSE: 1})  # the reminders fired meanwhile
    assert registry.get_sample_value("desk_sla_timers_due", {"kind": "reminder"}) == 0
    assert registry.get_sample_value("desk_sla_timers_due", {"kind": "auto_close"}) == 1
