"""schemathesis against each service's own OpenAPI document, served by uvicorn on the real
PostgreSQL server: a few hundred generated requests per service, valid and invalid ones, and
none may get a server error (5xx)."""

from __future__ import annotations

import time

import pytest
import schemathesis
from desk_servers import Served
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

pytestmark = pytest.mark.integration

CASES = 300  # per service, spread over its operations
BUDGET_S = 60.0  # per service (each takes about 10 s here)


def no_server_error(served: Served) -> int:
    """Run generated cases against every operation of `served`; return how many were sent."""
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    sent = 0
    started = time.monotonic()
    for operation in operations:
        known = {"ticket": served.ticket} if served.ticket and "{ticket}" in operation.path else {}
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
            operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known),
            operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=known),
        )

        @settings(
            max_examples=CASES // len(operations),
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(cases)
        def call(case: schemathesis.Case) -> None:
            nonlocal sent
            sent += 1
            case.call_and_validate(checks=[not_a_server_error], timeout=10)

        call()
    assert time.monotonic() - started < BUDGET_S
    return sent


def test_intake_never_answers_a_server_error(intake_server: Served) -> None:
    assert no_server_error(intake_server) >= CASES // 2


def test_workflow_never_answers_a_server_error(workflow_server: Served) -> None:
    assert no_server_error(workflow_server) >= CASES // 2


def test_sla_never_answers_a_server_error(sla_server: Served) -> None:
    assert no_server_error(sla_server) >= CASES // 2
