"""The notifier's messages as Prometheus metrics, on the process's registry
(`desk_platform.metrics`), by `desk` (the policy id; `unknown` for a message whose desk was not
kept):

- `desk_notifications_rendered_total{desk}`: messages worded from their templates (a
  notification or an automatic answer), when recorded for sending;
- `desk_notifications_sent_total{desk}`: messages the relay accepted, marked sent;
- `desk_notifications_retried_total{desk}`: send attempts that failed and will be tried again
  (a 4xx, a network error, the relay refusing us);
- `desk_notifications_failed_total{desk}`: messages given up for good (a 5xx, or retried too
  long);
- `desk_notifier_sla_events_waiting`, `desk_notifier_sla_events_failed` and
  `desk_notifier_sla_events_oldest_waiting_seconds`: the SLA warnings and breaches set aside
  until their request's state comes (`notifier.application.sla_events`), those of them that
  could not be told, and how long the oldest has waited (as of the release loop's last pass).

Each replica counts what it did: sum the replicas (the SLA gauges are the store's, the same in
every replica).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from desk_platform.metrics import UNKNOWN_DESK


class NotificationMetrics:
    """The `NotificationMeter` of the notifier process: its counters on `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, text: str) -> Counter:
            return Counter(f"desk_notifications_{name}", text, ["desk"], registry=registry)

        self.rendered_total = counter("rendered", "messages worded from their templates")
        self.sent_total = counter("sent", "messages the relay accepted, marked sent")
        self.retried_total = counter("retried", "send attempts that failed and will be tried again")
        self.failed_total = counter("failed", "messages given up for good")
        self.sla_waiting = Gauge(
            "desk_notifier_sla_events_waiting",
            "SLA warnings and breaches set aside until their request's state comes",
            registry=registry,
        )
        self.sla_failed = Gauge(
            "desk_notifier_sla_events_failed",
            "SLA warnings and breaches set aside that could not be told",
            registry=registry,
        )
        self.sla_oldest = Gauge(
            "desk_notifier_sla_events_oldest_waiting_seconds",
            "how long the oldest SLA event set aside has waited",
            registry=registry,
        )

    def show(self, desk: str) -> None:
        """Expose the desk's counters at 0 before it has any message (so rates start there)."""
        for counter in (
            self.rendered_total,
            self.sent_total,
            self.retried_total,
            self.failed_total,
        ):
            counter.labels(desk)

    def sla_events_waiting(self, waiting: int, failed: int, oldest_seconds: float) -> None:
        """Show the SLA events set aside: how many, how many failed, the oldest one's age."""
        self.sla_waiting.set(waiting)
        self.sla_failed.set(failed)
        self.sla_oldest.set(oldest_seconds)

    def rendered(self, desk: str | None) -> None:
        """Count a message rendered."""
        self.rendered_total.labels(desk or UNKNOWN_DESK).inc()

    def sent(self, desk: str | None) -> None:
        """Count a message sent."""
        self.sent_total.labels(desk or UNKNOWN_DESK).inc()

    def retried(self, desk: str | None) -> None:
        """Count a failed attempt to be tried again."""
        self.retried_total.labels(desk or UNKNOWN_DESK).inc()

    def failed(self, desk: str | None) -> None:
        """Count a message given up."""
        self.failed_total.labels(desk or UNKNOWN_DESK).inc()
