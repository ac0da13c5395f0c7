"""Intake admits the people a request names by the directory as its feed has it at that moment:
someone linked to the organisation after the start is accepted from the moment the link
arrives, and someone deactivated is refused from then on (real Kafka and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from directory_support import directory_feed, until
from directory_topic import publish_directory
from identity_support import bearer, verifier
from service_support import service_store

from desk_contracts.directory import PersonDeactivated, PersonLinked, PersonRegistered, Profile
from desk_policies.directory import import_events, load_directory
from desk_policies.loader import load_policies
from intake.adapters.http import create_app

pytestmark = pytest.mark.integration

POLICIES = load_policies()
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NEWCOMER = "newcomer@acme.example"


def request(**changes: Any) -> dict[str, Any]:
    return {
        "policy_id": "saas-desk",
        "request_type": "problem_report",
        "priority": "high",
        "subject": "The monthly export fails",
        "description": "Error 500 on every export since Monday",
        "organisation_id": "acme",
        "requester": "anne@acme.example",
        **changes,
    }


async def test_a_participant_is_admitted_once_their_link_to_the_organisation_arrives(
    database_url: str, kafka_bootstrap: str
) -> None:
    shipped = import_events(load_directory(), now=NOW)
    async with (
        directory_feed(kafka_bootstrap, shipped) as feed,
        service_store(database_url, "intake") as pool,
    ):
        app = create_app(pool, POLICIES, lambda: NOW, "http://workflow",
                         verifier=verifier("intake"), directory=lambda: feed.current)  # fmt: skip
        transport = httpx.ASGITransport(app=app)
        anne = bearer("anne@acme.example", audience="intake", organisation="acme")
        async with httpx.AsyncClient(
            transport=transport, base_url="http://intake", headers=anne
        ) as http:
            before = await http.post("/requests", json=request(participants=[NEWCOMER]))
            assert before.status_code == 422, before.text
            assert "neither a person of organisation 'acme'" in before.text

            registered = PersonRegistered(occurred_at=NOW, by=NEWCOMER, email=NEWCOMER,
                                          profile=Profile(name="New Comer"))  # fmt: skip
            await publish_directory(kafka_bootstrap, feed.topic, [registered])
            await until(lambda: feed.current.person(NEWCOMER) is not None)
            listed = await http.post("/requests", json=request(participants=[NEWCOMER]))
            assert listed.status_code == 422, "registered alone: in no organisation yet"

            linked = PersonLinked(occurred_at=NOW, by="lea@desk.example", email=NEWCOMER,
                                  organisation_id="acme")  # fmt: skip
            await publish_directory(kafka_bootstrap, feed.topic, [linked])
            await until(lambda: feed.current.may_take_part(NEWCOMER, "acme", "saas-desk") is None)
            after = await http.post("/requests", json=request(participants=[NEWCOMER]))
            assert after.status_code == 201, after.text

            gone = PersonDeactivated(occurred_at=NOW, by="lea@desk.example", email=NEWCOMER)
            await publish_directory(kafka_bootstrap, feed.topic, [gone])
            await until(lambda: feed.current.person(NEWCOMER) is None)
            refused = await http.post(
                "/requests", json=request(participants=[NEWCOMER], subject="Another one")
            )
            assert refused.status_code == 422, refused.text
