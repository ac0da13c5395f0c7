"""Composition root of the portal: its store (the directory's events, the outbox its relay
publishes on the `directory` topic), the signing keys of the identity it gives, account mail,
and the HTTP app. A fresh installation imports a directory file (the shipped demonstration
one unless `DIRECTORY_FILE` names another)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import structlog

from desk_contracts.topics import DIRECTORY
from desk_eventstore.migrate import migrations_in
from desk_platform.blobs import FolderBlobStore
from desk_platform.identity import load_signing_keys
from desk_platform.runtime import ServiceRuntime
from desk_platform.settings import Settings
from desk_policies.directory import DIRECTORY_FILE, load_directory
from desk_policies.loader import load_policies
from portal.adapters.mailer import Mailer
from portal.app import create_app, single_sign_on
from portal.application.installation import install
from portal.domain.requests_new import UploadLimits

log = structlog.get_logger(__name__)


def now() -> datetime:
    return datetime.now(UTC)


async def build(settings: Settings) -> tuple[ServiceRuntime, Any]:
    policies = load_policies(*([Path(settings.policies_dir)] if settings.policies_dir else []))
    runtime = ServiceRuntime(
        "portal",
        settings,
        migrations=migrations_in("portal", resources.files("portal") / "migrations"),
        topic_for=lambda _event: DIRECTORY,
        public=True,
    )
    pool = await runtime.start_store()
    if not settings.identity_signing_keys:
        log.error("service_not_started", reason="IDENTITY_SIGNING_KEYS names no key folder")
        raise SystemExit(2)
    keys = load_signing_keys(Path(settings.identity_signing_keys))
    if settings.demo_password and settings.guarded:
        log.error("service_not_started", reason="DEMO_PASSWORD opens every imported account: "
                  "refused with DESK_ENV=production or staging")  # fmt: skip
        raise SystemExit(2)
    directory = load_directory(Path(settings.directory_file or DIRECTORY_FILE))
    await install(pool, directory, now(), settings.demo_password or None)
    mailer = Mailer(settings.smtp_host, settings.smtp_port, settings.mail_from, settings.portal_url)
    services = {
        "intake": settings.intake_url,
        "workflow": settings.workflow_url,
        "sla": settings.sla_url,
    }
    app = create_app(
        pool,
        policies,
        now,
        keys,
        mailer.send,
        services=services,
        secure_cookies=settings.portal_url.startswith("https://"),
        sso=single_sign_on(settings, policies, now, keys) if settings.oidc_issuer else None,
        blobs=FolderBlobStore(Path(settings.blob_dir)),
        uploads=UploadLimits(settings.attachment_max_bytes, settings.attachments_max_total_bytes),
    )
    return runtime, app
