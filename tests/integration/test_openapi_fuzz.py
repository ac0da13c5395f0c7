"""schemathesis against each service's own OpenAPI document, served by uvicorn on the real
PostgreSQL server: a few hundred generated requests per service, valid and invalid ones (with no
identity, and with the signed identity of staff of every desk, some on a request the service
knows), and none may get a server error (5xx) or an answer the document does not say: every
status code, content type and body must be documented."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import schemathesis
from desk_servers import Served
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from identity_support import bearer
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.integration

CASES = 300  # per service, spread over its operations
BUDGET_S = 60.0  # per service (each takes 10 to 30 s here)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# staff of every desk, the known request's (cloud-partner) included
STAFF = {"erp-vendor": ["service_desk"], "cloud-partner": ["agent"], "saas-desk": ["agent"]}


def conforms(served: Served, service: str) -> int:
    """Run generated cases against every operation of `served`, checking each answer against
    the document; return how many were sent."""
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    signed = bearer("paul@desk.example", audience=service, roles=STAFF)
    answered: Counter[int] = Counter()
    sent = 0
    started = time.monotonic()
    for operation in operations:
        known = {"ticket": served.ticket} if served.ticket and "{ticket}" in operation.path else {}
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
            operation.as_strategy(GenerationMode.POSITIVE, headers=signed),
            operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=known, headers=signed),
            operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known, headers=signed),
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
            answered[case.call_and_validate(checks=CHECKS, timeout=10).status_code] += 1

        call()
    assert time.monotonic() - started < BUDGET_S
    # both sides of the identity check were explored: refused callers and verified ones
    assert answered[401] > 0 and sum(answered.values()) > answered[401], answered
    return sent


def test_intake_answers_only_what_its_document_says(intake_server: Served) -> None:
    assert conforms(intake_server, "intake") >= CASES // 2


def test_workflow_answers_only_what_its_document_says(workflow_server: Served) -> None:
    assert conforms(workflow_server, "workflow") >= CASES // 2


def test_sla_answers_only_what_its_document_says(sla_server: Served) -> None:
    assert conforms(sla_server, "sla") >= CASES // 2
