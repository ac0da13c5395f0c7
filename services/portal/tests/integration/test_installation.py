"""A fresh installation imports its directory once; imported people prove their address
before they sign in, unless a developer's demo password opens them all."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from service_support import service_store

from desk_policies.directory import load_directory
from portal.application import people
from portal.application.directory import account
from portal.application.installation import install

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


async def test_the_shipped_directory_is_imported_once_as_invitations(database_url: str) -> None:
    directory = load_directory()
    async with service_store(database_url, "portal") as pool:
        assert await install(pool, directory, NOW) > len(directory.people)
        assert await install(pool, directory, NOW) == 0
        async with pool.acquire() as conn:
            lea = await account(conn, "lea@desk.example")
            assert lea is not None and lea.status == "invited"
            assert lea.roles["erp-vendor"] == ("team_lead",)
            anne = await account(conn, "anne@acme.example")
            assert anne is not None and anne.organisation_id == "acme"
            refused = await people.sign_in(conn, "anne@acme.example", "whatever-1234", "c", NOW)
            assert refused == "refused"


async def test_a_demo_password_opens_every_imported_account(database_url: str) -> None:
    async with service_store(database_url, "portal") as pool:
        await install(pool, load_directory(), NOW, demo_password="demo-password-1")
        async with pool.acquire() as conn:
            signed = await people.sign_in(conn, "paul@desk.example", "demo-password-1", "c", NOW)
            assert not isinstance(signed, str) and signed.roles["saas-desk"] == ("agent",)
