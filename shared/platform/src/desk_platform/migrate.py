"""Migrate one service's PostgreSQL schema, then exit: the deployment's migration step.

    python -m desk_platform.migrate intake      # DATABASE_URL from the environment

Applies exactly what the service applies at start (`ServiceRuntime.start_store`, through
`desk_eventstore.db.open_store`): the event store's migrations and the service's own
(`<service>/migrations`), in its schema (named after the service), under the migration
advisory lock, so it may run while older replicas serve. Run before a rollout (the Kubernetes
Job in `deploy/k8s/migrate/job.yaml`): a migration that fails then stops the rollout instead of
leaving every new replica crash-looping. The e-mail gateway (`intake.mail`) works in intake's
schema: migrating `intake` covers both. Exit status 0 when the schema is up to date, 1 when a
migration failed, 2 for an unknown service.
"""

from __future__ import annotations

import argparse
import asyncio
from importlib import resources

import structlog

from desk_eventstore.db import open_store
from desk_eventstore.migrate import Migration, migrations_in
from desk_platform.logging import configure_logging
from desk_platform.settings import Settings

SERVICES = ("portal", "intake", "workflow", "sla", "notifier")  # each one schema of its own

log = structlog.get_logger(__name__)


def service_migrations(service: str) -> list[Migration]:
    """The migrations a service ships in its package's `migrations` folder (the service's
    package must be installed: each service image holds its own)."""
    return migrations_in(service, resources.files(service) / "migrations")


async def migrate(database_url: str, service: str) -> None:
    """Bring `service`'s schema up to date (creating it if needed), then close the pool."""
    pool = await open_store(database_url, service, service_migrations(service), max_size=1)
    await pool.close()


def main(argv: list[str] | None = None) -> int:
    """Parse the service's name, migrate its schema; the process's exit status."""
    parser = argparse.ArgumentParser(prog="python -m desk_platform.migrate", description=__doc__)
    parser.add_argument("service", choices=SERVICES, help="whose schema to migrate")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(f"{args.service}-migrate", settings.log_format, settings.log_level)
    try:
        asyncio.run(migrate(settings.database_url, args.service))
    except Exception as error:
        log.error("migration_failed", schema=args.service, error=str(error) or repr(error))
        return 1
    log.info("schema_up_to_date", schema=args.service)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
