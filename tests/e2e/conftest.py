"""The system end-to-end tests share (`test_one_request`, `test_one_trace`, `test_time_travel`):
every process separate, two notifier replicas, each process exporting its spans to a local OTLP
receiver, test clocks on. Started once for these modules: a system takes seconds to start."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_support import isolated_system
from otlp_receiver import Receiver, otlp_receiver
from system import System


@pytest.fixture(scope="package")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    with otlp_receiver(tmp_path_factory.mktemp("traces") / "spans.jsonl") as running:
        yield running


@pytest.fixture(scope="package")
def one_system(
    database_url: str,
    kafka_bootstrap: str,
    receiver: Receiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[System]:
    exporting = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    with isolated_system(
        database_url,
        kafka_bootstrap,
        tmp_path_factory.mktemp("system"),
        "e2e",
        replicas={"notifier": 2},
        environment=exporting,
    ) as running:
        yield running
