"""`python -m intake.mail`: the e-mail gateway, a process of its own that shares intake's schema.

It serves SMTP (once its feed of the directory has caught up; 451 past capacity, as intake's
HTTP answers 503: `desk_platform.admission`), keeps the latest state workflow published of each
request from `ticket-events` (group `intake-mail.ticket-events`), and runs intake's outbox relay
too (one relay is active per store; the others stand by), so it works with or without the HTTP
process. Scale it by starting more.

Whom it believes (`MAIL_VERIFY`): our MX's `Authentication-Results` (`mx`, needs
`MAIL_AUTHSERV_IDS`), its own DKIM/SPF/DMARC checks (`self`, the default without authserv-ids),
or nobody (`off`, for a developer's machine: refused when `DESK_ENV` is production or staging).
Settings that leave the From address unchecked, or `mx` without authserv-ids, stop it before it
listens.
What becomes of each message is counted on the process's registry (`intake.adapters.metrics`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import structlog

from desk_contracts.topics import TICKET_EVENTS
from desk_eventstore.migrate import migrations_in
from desk_platform.admission import Admission, AdmissionLimits, outbox_backlog
from desk_platform.blobs import FolderBlobStore
from desk_platform.directory_feed import follow_directory
from desk_platform.logging import configure_logging
from desk_platform.pipeline_lag import pipeline_lag
from desk_platform.runtime import ServiceRuntime
from desk_platform.settings import Settings
from desk_platform.testclocks import follow_test_clocks
from desk_policies.loader import load_policies
from intake.adapters.mail_auth import SelfVerifier, resolver_for
from intake.adapters.mail_tickets import events_together, on_ticket_event
from intake.adapters.metrics import MailGatewayMetrics
from intake.adapters.smtp import GatewayHandler, serve
from intake.application.mail_gateway import MailGateway, forget_old_counts
from intake.bootstrap import topic_for
from intake.domain.mail import GatewayConfig

log = structlog.get_logger(__name__)


class UntrustedSetup(SystemExit):
    """The gateway's settings would let anyone write as anyone: it does not start."""


def trust_mode(settings: Settings) -> tuple[str, frozenset[str]]:
    """The effective `MAIL_VERIFY` and authserv-ids; raises `UntrustedSetup` (after a log line
    saying why) when the settings cannot be run."""
    ids = frozenset(a.strip().lower() for a in settings.mail_authserv_ids.split(",") if a.strip())
    mode = settings.mail_verify or ("mx" if ids else "self")
    problem = None
    if mode == "mx" and not ids:
        problem = "MAIL_VERIFY=mx needs MAIL_AUTHSERV_IDS (the authserv-ids of our MX)"
    elif mode == "off" and settings.guarded:
        problem = (
            "MAIL_VERIFY=off believes any From address: refused with DESK_ENV=production "
            "or staging; set MAIL_AUTHSERV_IDS (behind an MX that checks SPF, DKIM and DMARC) "
            "or MAIL_VERIFY=self"
        )
    if problem is not None:
        log.error("mail_gateway_not_started", reason=problem, desk_env=settings.desk_env)
        raise UntrustedSetup(2)
    if mode == "off":
        log.warning("mail_sender_unchecked", reason="MAIL_VERIFY=off: any From is believed")
    return mode, ids


GROUP = "intake-mail"


def now() -> datetime:
    return datetime.now(UTC)


async def build(settings: Settings) -> tuple[ServiceRuntime, None]:
    policies = load_policies(*([Path(settings.policies_dir)] if settings.policies_dir else []))
    configure_logging("intake", settings.log_format, settings.log_level)  # for a refusal
    verify, authserv_ids = trust_mode(settings)
    config = GatewayConfig.of(
        policies,
        settings.mail_from,
        messages_per_hour=settings.mail_sender_hourly_limit,
        answers_per_day=settings.mail_answers_daily_limit,
        authserv_ids=authserv_ids,
        verify=verify,
        domain_messages_per_hour=settings.mail_domain_hourly_limit,
        desk_messages_per_hour=settings.mail_desk_hourly_limit,
    )
    runtime = ServiceRuntime(
        "intake",
        settings,
        migrations=migrations_in("intake", resources.files("intake") / "migrations"),
        topic_for=topic_for,
        process="intake-mail",
    )
    pool = await runtime.start_store()
    verifier = SelfVerifier(resolver_for(settings.mail_dns_server)) if verify == "self" else None
    directory = follow_directory(runtime)
    gateway = MailGateway(
        pool, policies, lambda: directory.current, config, FolderBlobStore(Path(settings.blob_dir)),
        now, verifier, test_clocks=follow_test_clocks(runtime),
    )  # fmt: skip
    runtime.subscribe(
        TICKET_EVENTS,
        on_ticket_event(),
        group_id=f"{GROUP}.{settings.topic(TICKET_EVENTS)}",
        together=events_together(),
    )
    admission = Admission(
        outbox_backlog(pool, runtime.relay_name),
        AdmissionLimits.of(settings),
        runtime.readiness.metrics,
        lag=pipeline_lag(settings),
        waited=gateway.commits.waited,
    )
    runtime.every(admission.watch)
    handler = GatewayHandler(
        gateway,
        {*config.addresses, settings.mail_from.lower()},
        max_concurrent=settings.mail_max_concurrent,
        admission=admission,
        decided=MailGatewayMetrics(runtime.readiness.metrics.registry).decided,
    )

    async def smtp(stop: asyncio.Event) -> None:
        await directory.wait_caught_up()  # before, every sender would be a stranger
        server = await serve(
            handler,
            settings.mail_host,
            settings.mail_port,
            max_bytes=settings.mail_max_bytes,
            hostname=settings.mail_from.rpartition("@")[2] or "localhost",
        )
        log.info(
            "mail_gateway_listening",
            host=settings.mail_host,
            port=settings.mail_port,
            addresses=sorted(handler.addresses),
            max_bytes=settings.mail_max_bytes,
            max_concurrent=settings.mail_max_concurrent,
            verify=verify,
        )
        await stop.wait()
        server.close()
        await server.wait_closed()

    runtime.every(smtp)
    runtime.repeat("forget_old_counts", lambda: forget_old_counts(pool, now()), 3600)
    return runtime, None
