"""Composition root of workflow: store, consumer of its input (`ticket-commands`: new requests
and commands), relay to `ticket-events`, the directory's feed, the test clocks' feed (where
enabled), the verifier of identity tokens (`IDENTITY_KEYS`, required), HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from desk_contracts.topics import TICKET_COMMANDS, TICKET_EVENTS
from desk_eventstore.migrate import migrations_in
from desk_platform.directory_feed import directory_first, follow_directory
from desk_platform.identity import Verifier, required_identity_keys
from desk_platform.runtime import ServiceRuntime
from desk_platform.settings import Settings
from desk_platform.testclocks import follow_test_clocks
from desk_policies.loader import load_policies
from workflow.adapters.http import create_app
from workflow.adapters.kafka import creations_together, on_command


def now() -> datetime:
    return datetime.now(UTC)


async def build(settings: Settings) -> tuple[ServiceRuntime, Any]:
    verifier = Verifier(required_identity_keys(settings, "workflow"), audience="workflow")
    policies = load_policies(*([Path(settings.policies_dir)] if settings.policies_dir else []))
    runtime = ServiceRuntime(
        "workflow",
        settings,
        migrations=migrations_in("workflow", resources.files("workflow") / "migrations"),
        topic_for=lambda _event: TICKET_EVENTS,
    )
    test_clocks = follow_test_clocks(runtime)
    runtime.subscribe(
        TICKET_COMMANDS,
        on_command(policies, now, test_clocks),
        together=creations_together(policies),
    )
    pool = await runtime.start_store()
    directory = follow_directory(runtime)
    app = create_app(
        pool,
        policies,
        now,
        verifier=verifier,
        directory=lambda: directory.current,
        test_clocks=test_clocks,
    )
    return runtime, directory_first(app, directory)
