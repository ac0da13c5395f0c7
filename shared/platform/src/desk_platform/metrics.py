"""The Prometheus metrics of a process (`GET /metrics`): the facts its readiness is judged on,
and what its work has done.

Here, what every process has: whether each check passes, how far the outbox lags, how many
records wait on each consumer group's partitions assigned to this replica
(`desk_consumer_lag_records{group, partition}`: `sum by (group)` for the group's lag), how old
the oldest unsent message is, what the doors refuse past capacity (desk_platform.admission),
what each consumer group has done (records applied, duplicates skipped, dead-lettered,
parked: the consumer's own counts, read at each scrape), and the HTTP requests answered, by
route and status (`desk_platform.http_metrics`). A service's own work is counted by its own
metrics module, registered on the same `Metrics.registry` by its composition root: sla's
timers (`sla.adapters.metrics`), the notifier's messages (`notifier.adapters.metrics`), the
mail gateway's decisions and the survey answers (`intake.adapters.metrics`).
Labels are bounded (a check's name, a consumer group and partition number, a door, a route's
template, a desk's policy id, a timer kind, a gateway decision), never a ticket, an address or a
subject. Each process (each `ServiceRuntime`) has its own registry, so several runtimes in one
test process do not share gauges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST
UNKNOWN_DESK = "unknown"  # the `desk` label of what names no desk configured here


class Metrics:
    """The gauges a process exposes; probes set them as they observe."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.ready = Gauge(
            "desk_ready",
            "1 when the readiness check passes, 0 when it fails (see GET /ready for why)",
            ["check"],
            registry=self.registry,
        )
        self.relay_leader = Gauge(
            "desk_outbox_relay_leader",
            "1 when this process's outbox relay is the active one of its store",
            registry=self.registry,
        )
        self.outbox_lag = Gauge(
            "desk_outbox_lag_events",
            "events of this service's store after the relay checkpoint (not published yet)",
            registry=self.registry,
        )
        self.outbox_oldest = Gauge(
            "desk_outbox_oldest_unpublished_seconds",
            "age of the oldest event not published yet (0 when none waits)",
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "desk_consumer_lag_records",
            "records after the committed offset of a partition assigned to this consumer",
            ["group", "partition"],
            registry=self.registry,
        )
        self.consumer_stalled = Gauge(
            "desk_consumer_stalled_seconds",
            "longest time records waited on an assigned partition whose offset did not move",
            ["group"],
            registry=self.registry,
        )
        self.notifier_pending = Gauge(
            "desk_notifier_pending_messages",
            "messages recorded and not sent yet",
            registry=self.registry,
        )
        self.notifier_oldest = Gauge(
            "desk_notifier_oldest_pending_seconds",
            "age of the oldest message not sent yet (0 when none is pending)",
            registry=self.registry,
        )

        self.shed = Counter(
            "desk_shed",
            "new work refused past capacity (HTTP 503, SMTP 451), by door",
            ["door"],
            registry=self.registry,
        )
        self.shedding = Gauge(
            "desk_shedding",
            "1 while this process refuses new work past capacity (desk_platform.admission)",
            registry=self.registry,
        )
        self.admission_backlog = Gauge(
            "desk_admission_backlog_events",
            "the outbox backlog admission last read (the store's last position less the relay "
            "checkpoint)",
            registry=self.registry,
        )
        self.admission_lag = Gauge(
            "desk_admission_lag_seconds",
            "how far behind the slowest watched consumer group is, as admission last read "
            "(desk_platform.pipeline_lag)",
            registry=self.registry,
        )
        self.admission_in_flight = Gauge(
            "desk_admission_in_flight",
            "submissions (HTTP) and mails (SMTP) this process handles, as admission last saw",
            registry=self.registry,
        )

        self.http_requests = Counter(
            "desk_http_requests",
            "HTTP requests answered, by method, route (its path template) and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "desk_http_request_duration_seconds",
            "time from a request's arrival to the end of its answer, by method and route",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )

    def count_consumers(
        self, consumers: Callable[[], Iterable[tuple[str, ConsumerCounts]]]
    ) -> None:
        """Expose what each consumer group of the process has done (read at every scrape)."""
        self.registry.register(_ConsumerCollector(consumers))

    def render(self) -> bytes:
        """The text exposition format, as Prometheus scrapes it."""
        return generate_latest(self.registry)


class ConsumerCounts(Protocol):
    """What a consumer counts (`desk_platform.consumer.EventConsumer`)."""

    applied: int
    duplicates: int
    dead_lettered: int
    held: int


CONSUMER_COUNTERS = {  # counter name: (what it says, the count it reads)
    "desk_consumer_records_applied": ("records applied, each once", "applied"),
    "desk_consumer_duplicates_skipped": ("records found applied before, skipped", "duplicates"),
    "desk_consumer_dead_lettered": (
        "records sent to the dead-letter topic (those held behind an earlier one included)",
        "dead_lettered",
    ),
    "desk_consumer_parked": (
        "records dead-lettered because their ticket waits behind an earlier dead letter",
        "held",
    ),
}


class _ConsumerCollector(Collector):
    """The consumers' counts as Prometheus counters, by consumer group."""

    def __init__(self, consumers: Callable[[], Iterable[tuple[str, ConsumerCounts]]]) -> None:
        self.consumers = consumers

    def collect(self) -> Iterator[Metric]:
        families = {
            name: CounterMetricFamily(name, text, labels=["group"])
            for name, (text, _) in CONSUMER_COUNTERS.items()
        }
        for group, counts in self.consumers():
            for name, (_, count) in CONSUMER_COUNTERS.items():
                families[name].add_metric([group], getattr(counts, count))
        yield from families.values()
