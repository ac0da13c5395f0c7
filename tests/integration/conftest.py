"""Fixtures of the cross-service integration tests: intake, workflow and sla served by uvicorn
on the real PostgreSQL (one server per test module; workflow knows one request)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from desk_servers import Served, intake_app, serving, sla_app, ticket_created, workflow_app


@pytest.fixture(scope="module")
def intake_server(database_url: str) -> Iterator[Served]:
    with serving(database_url, "intake", intake_app) as served:
        yield served


@pytest.fixture(scope="module")
def workflow_server(database_url: str) -> Iterator[Served]:
    with serving(database_url, "workflow", workflow_app, ticket_created()) as served:
        yield served


@pytest.fixture(scope="module")
def sla_server(database_url: str) -> Iterator[Served]:
    with serving(database_url, "sla", sla_app) as served:
        yield served
