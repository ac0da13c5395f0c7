"""sla's timers as Prometheus metrics, on the process's registry (`desk_platform.metrics`).

- `desk_sla_timers_armed_total{kind}`: timers armed (each re-arming after a ticket event arms
  the ticket's pending timers again, so this counts armings, not distinct timers);
- `desk_sla_timers_due{kind}`: timers due and not fired yet, as the timer loop last read them
  at the start of a pass (a table-wide fact: every replica reads the same, take the max);
- `desk_sla_timers_fired_total{kind}`: timers fired (their warning, breach or command
  appended), stale ones and ones fired before left out;
- `desk_sla_timer_lateness_seconds{kind}`: how long after falling due each fired (a timer put
  back after a failure is due again at its new instant).

`kind` is the timer's kind (`sla.domain.timers.TimerKind`).
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sla.domain.timers import TimerKind

LATENESS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)


class TimerMetrics:
    """The `TimerMeter` of the sla process: its instruments registered on `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.armed_total = Counter(
            "desk_sla_timers_armed",
            "timers armed, by kind (each re-arming after a ticket event counts again)",
            ["kind"],
            registry=registry,
        )
        self.due_now = Gauge(
            "desk_sla_timers_due",
            "timers due and not fired yet, by kind, as the timer loop last read them",
            ["kind"],
            registry=registry,
        )
        self.fired_total = Counter(
            "desk_sla_timers_fired",
            "timers fired (their event appended), by kind",
            ["kind"],
            registry=registry,
        )
        self.lateness = Histogram(
            "desk_sla_timer_lateness_seconds",
            "time from a timer's due instant to its firing, by kind",
            ["kind"],
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        for kind in TimerKind:  # every kind shown from the start, at 0
            self.armed_total.labels(kind.value)
            self.due_now.labels(kind.value).set(0)
            self.fired_total.labels(kind.value)
            self.lateness.labels(kind.value)

    def armed(self, kind: TimerKind) -> None:
        """Count a timer armed."""
        self.armed_total.labels(kind.value).inc()

    def fired(self, kind: TimerKind, late: float) -> None:
        """Count a timer fired, and how late."""
        self.fired_total.labels(kind.value).inc()
        self.lateness.labels(kind.value).observe(late)

    def due(self, waiting: Mapping[TimerKind, int]) -> None:
        """Set the timers due now, every kind (0 for those without any)."""
        for kind in TimerKind:
            self.due_now.labels(kind.value).set(waiting.get(kind, 0))
