"""Composition root of intake: store, relay to `ticket-events`, the directory's feed, the test
clocks' feed (where enabled), the verifier of identity tokens (`IDENTITY_KEYS`, required),
admission (writes refused past capacity), HTTP API; survey answers counted on the process's
registry (`intake.adapters.metrics`)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from desk_contracts.topics import AUTOMATIC_REPLIES, TICKET_COMMANDS
from desk_eventstore.migrate import migrations_in
from desk_eventstore.records import RecordedEvent
from desk_platform.admission import Admission, AdmissionLimits, outbox_backlog
from desk_platform.blobs import FolderBlobStore
from desk_platform.directory_feed import directory_first, follow_directory
from desk_platform.identity import Verifier, required_identity_keys
from desk_platform.pipeline_lag import pipeline_lag
from desk_platform.runtime import ServiceRuntime
from desk_platform.settings import Settings
from desk_platform.testclocks import follow_test_clocks
from desk_policies.loader import load_policies
from intake.adapters.http import create_app
from intake.adapters.metrics import SurveyMetrics
from intake.adapters.survey import survey_router
from intake.domain.flood import RequestLimits


def now() -> datetime:
    return datetime.now(UTC)


def topic_for(event: RecordedEvent) -> str:
    """Where intake's events go: new requests and requesters' actions (mail replies, survey
    answers) to workflow's input, in one topic so a request's creation comes before what follows
    it (workflow then publishes the request on `ticket-events`), automatic answers to the
    notifier."""
    if event.event_type == "AutomaticReplyRequested":
        return AUTOMATIC_REPLIES
    return TICKET_COMMANDS


async def build(settings: Settings) -> tuple[ServiceRuntime, Any]:
    verifier = Verifier(required_identity_keys(settings, "intake"), audience="intake")
    policies = load_policies(*([Path(settings.policies_dir)] if settings.policies_dir else []))
    runtime = ServiceRuntime(
        "intake",
        settings,
        migrations=migrations_in("intake", resources.files("intake") / "migrations"),
        topic_for=topic_for,
    )
    pool = await runtime.start_store()
    answers = SurveyMetrics(runtime.readiness.metrics.registry, policies)
    directory = follow_directory(runtime)
    test_clocks = follow_test_clocks(runtime)
    survey = survey_router(
        pool, policies, settings.survey_secret, now, answers.answered, test_clocks=test_clocks
    )
    limits = RequestLimits(
        per_submitter=settings.requests_submitter_hourly_limit,
        per_domain=settings.requests_domain_hourly_limit,
        per_desk=settings.requests_desk_hourly_limit,
    )
    admission = Admission(
        outbox_backlog(pool, runtime.relay_name),
        AdmissionLimits.of(settings),
        runtime.readiness.metrics,
        lag=pipeline_lag(settings),
    )
    runtime.every(admission.watch)
    app = create_app(
        pool, policies, now, settings.workflow_url, routers=[survey], verifier=verifier,
        directory=lambda: directory.current, limits=limits,
        blobs=FolderBlobStore(Path(settings.blob_dir)), admission=admission,
        test_clocks=test_clocks,
    )  # fmt: skip
    return runtime, directory_first(app, directory)
