"""The profile's time zone on the real PostgreSQL server: the form offers the IANA zones with
the person's own selected, a chosen zone is kept (read model, `ProfileChanged` on the person's
stream, `/me`) and the pages show instants in it; a zone that is not one gets 422 and changes
nothing. The shipped directory gives the demonstration customers their zones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from portal_support import ADMIN, ADMIN_PASSWORD, Browser, seed_directory
from service_support import service_store

from desk_contracts import directory as d
from desk_eventstore.store import read_stream
from desk_platform.identity import new_signing_key
from desk_policies.directory import import_events, load_directory
from desk_policies.loader import load_policies
from portal.app import create_app

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[tuple[asyncpg.Pool, Browser]]:
    async with service_store(database_url, "portal") as pool:
        await seed_directory(pool, NOW)

        async def unused(*_: object) -> None: ...

        app = create_app(pool, load_policies(), lambda: datetime.now(UTC), [new_signing_key()],
                         unused, services={})  # fmt: skip
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p")
        person = Browser(client)
        assert (await person.sign_in(ADMIN, ADMIN_PASSWORD)).status_code == 303
        yield pool, person


def fields(time_zone: str) -> dict[str, str]:
    return {"name": "Léa Lead", "phone": "", "language": "en", "date_format": "%Y-%m-%d",
            "time_zone": time_zone}  # fmt: skip


async def test_a_chosen_time_zone_is_kept_and_published(
    world: tuple[asyncpg.Pool, Browser],
) -> None:
    pool, person = world
    form = await person.client.get("/profile")
    assert '<option value="UTC" selected>' in form.text
    assert '<optgroup label="Europe">' in form.text or "Europe" in form.text
    assert '<label for="time_zone">' in form.text
    saved = await person.submit("/profile", "/profile", **fields("Europe/Zurich"))
    assert saved.status_code == 200, saved.text
    assert '<option value="Europe/Zurich" selected>' in saved.text
    assert (await person.client.get("/me")).json()["time_zone"] == "Europe/Zurich"
    async with pool.acquire() as conn:
        stream = await read_stream(conn, d.person_stream(ADMIN))
    changed = d.directory_event(stream[-1].event_type, dict(stream[-1].payload))
    assert isinstance(changed, d.ProfileChanged)
    assert changed.profile.time_zone == "Europe/Zurich"
    reread = await person.client.get("/profile")
    assert '<option value="Europe/Zurich" selected>' in reread.text


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "europe/zurich", "../../etc/passwd", "UTC\x00", "Z" * 300]
)
async def test_a_zone_that_is_not_one_is_refused(
    world: tuple[asyncpg.Pool, Browser], zone: str
) -> None:
    _, person = world
    refused = await person.submit("/profile", "/profile", **fields(zone))
    assert refused.status_code == 422
    assert 'id="time_zone-error"' in refused.text
    assert (await person.client.get("/me")).json()["time_zone"] == "UTC"


def test_the_contract_takes_only_iana_zones() -> None:
    assert d.Profile(name="A", time_zone="America/New_York").time_zone == "America/New_York"
    assert d.Profile(name="A").time_zone is None
    for wrong in ("Mars/Olympus", "", "x" * 100):
        with pytest.raises(ValueError, match="time_zone"):
            d.Profile(name="A", time_zone=wrong)


def test_the_demonstration_customers_have_their_zones() -> None:
    directory = load_directory()
    anne = directory.person("anne@acme.example")
    assert anne is not None and anne.time_zone == "Europe/Zurich"
    invited = [e for e in import_events(directory, now=NOW) if isinstance(e, d.PersonInvited)]
    zones = {e.email: e.profile.time_zone for e in invited}
    assert zones["anne@acme.example"] == "Europe/Zurich"
    assert zones["dan@initech.example"] == "America/New_York"
