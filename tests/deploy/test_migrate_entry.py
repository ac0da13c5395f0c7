"""`python -m desk_platform.migrate`, the migration Job's command: offline parts (the schemas it
knows and the migrations it would apply); it runs against PostgreSQL in the Job itself."""

from __future__ import annotations

import pytest

from desk_platform.migrate import SERVICES, main, service_migrations


def test_every_service_ships_the_migrations_the_job_applies() -> None:
    for service in SERVICES:
        migrations = service_migrations(service)
        assert migrations, service
        assert {m.source for m in migrations} == {service}
        versions = [m.version for m in migrations]
        assert versions == sorted(set(versions)), service


def test_an_unknown_service_is_refused_before_any_connection() -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["intake-mail"])  # the gateway works in intake's schema: migrate `intake`
    assert exit_.value.code == 2
