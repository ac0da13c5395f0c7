"""Workflow's application and HTTP API on the real PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from desk_servers import envelope_of
from desk_servers import ticket_created as created
from identity_support import bearer, verifier
from service_support import service_store

from desk_contracts.envelope import Envelope
from desk_contracts.sla import ReminderDue
from desk_contracts.state import state_of
from desk_contracts.tickets import TicketCreated
from desk_eventstore.store import read_stream
from desk_platform.consumer import PoisonMessage
from desk_policies.audience import REQUEST_INTERNAL, REQUEST_SHOWN
from desk_policies.loader import load_policies
from workflow.adapters.http import create_app
from workflow.adapters.kafka import on_command

pytestmark = pytest.mark.integration

POLICIES = load_policies()
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_store(database_url, "workflow") as pool:
        yield pool


async def open_ticket(pool: asyncpg.Pool, event: TicketCreated) -> None:
    handle = on_command(POLICIES, lambda: NOW)
    async with pool.acquire() as conn, conn.transaction():
        await handle(conn, envelope_of(event), event)


def token(subject: str, **claims: Any) -> dict[str, str]:
    """The header of a token for workflow saying who calls."""
    return bearer(subject, audience="workflow", **claims)


AGENT = token("paul@partner.example", roles={"cloud-partner": ["agent"]})  # of the requests' desk
CUSTOMER = token("anne@acme.example", organisation="acme")  # the requester
CARLA = token("carla@globex.example", organisation="globex")  # a customer of another company
NOBODY = {"Authorization": ""}  # no identity: what a client without a token sends


def client(pool: asyncpg.Pool, now: datetime = NOW) -> httpx.AsyncClient:
    app = create_app(pool, POLICIES, lambda: now, verifier=verifier("workflow"))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://workflow",
        headers=AGENT,  # the agent reads and acts unless a test names someone else
    )


async def test_intakes_ticket_created_opens_the_stream_once_with_the_request_s_state(
    pool: asyncpg.Pool,
) -> None:
    event = created()
    await open_ticket(pool, event)
    await open_ticket(pool, event)
    async with pool.acquire() as conn:
        stream = await read_stream(conn, event.ticket_id)
    assert [r.event_type for r in stream] == ["TicketCreated"]
    envelope = stream[0].to_envelope("/desk/workflow")
    state = state_of(envelope.request_state)
    assert (state.key, state.version, state.status) == (event.key, 1, "submitted")
    assert state.requester_id == event.requester_id and state.subject == event.subject


async def test_commands_move_the_ticket_and_refusals_change_nothing(pool: asyncpg.Pool) -> None:
    event = created()
    await open_ticket(pool, event)
    async with client(pool) as http:
        detail = await http.get(f"/requests/{event.key}")
        assert detail.status_code == 200
        assert detail.json()["status"]["id"] == "submitted"
        assert detail.headers["ETag"] == '"1"'

        started = await http.post(f"/requests/{event.key}/start-work", headers=AGENT)
        assert started.status_code == 200, started.text
        assert started.json()["status"] == "in_progress"

        nul = await http.post(
            f"/requests/{event.key}/add-comment", json={"body": "a\u0000b"}, headers=AGENT
        )
        assert nul.status_code == 422
        malformed = await http.post(
            f"/requests/{event.key}/request-information", json={}, headers=AGENT
        )
        assert malformed.status_code == 422
        assert malformed.json()["detail"][0]["loc"] == ["body", "comment"]
        blank = await http.post(
            f"/requests/{event.key}/request-information", json={"comment": " "}, headers=AGENT
        )
        assert blank.status_code == 422  # as when it is missing: the same kind of error
        assert blank.json()["detail"][0]["loc"] == ["body", "comment"]
        assert "must not be blank" in blank.json()["detail"][0]["msg"]
        refused = await http.post(f"/requests/{event.key}/qualify", headers=AGENT)
        assert refused.status_code == 409
        assert refused.json()["detail"] == "cannot qualify the request while it is 'In progress'"
        after = await http.get(f"/requests/{event.key}")
        assert after.json()["version"] == 2

        stale = await http.post(
            f"/requests/{event.key}/start-work", headers={**AGENT, "If-Match": '"1"'}
        )
        assert stale.status_code == 412
        assert "version 2" in stale.json()["detail"]

        unknown = await http.post(f"/requests/{event.key}/fly", headers=AGENT)
        assert unknown.status_code == 404
        assert "(commands: qualify, assign, start-work" in unknown.json()["detail"]
        anonymous = await http.post(f"/requests/{event.key}/start-work", headers=NOBODY)
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"] == "Bearer"
        reader = await http.post(
            f"/requests/{event.key}/start-work",
            headers=token(
                "paul@partner.example", roles={"cloud-partner": ["agent"]}, scope=["read"]
            ),
        )
        assert reader.status_code == 403
        assert reader.json()["detail"].startswith("read-only token")
        after = await http.get(f"/requests/{event.key}")
        assert after.json()["version"] == 2


async def test_a_customer_sees_only_their_organisations_requests(pool: asyncpg.Pool) -> None:
    event = created()
    await open_ticket(pool, event)
    async with client(pool) as http:
        own = await http.get(f"/requests/{event.key}", headers=CUSTOMER)
        other = await http.get(f"/requests/{event.key}", headers=CARLA)
        listed = await http.get("/requests", params={"organisation_id": "acme", "state": "all"})
        foreign_list = await http.get(
            "/requests", params={"organisation_id": "acme"}, headers=CARLA
        )
        own_list = await http.get("/requests", params={"state": "all"}, headers=CARLA)
        anonymous = await http.get(f"/requests/{event.key}", headers=NOBODY)
        stranger = await http.get(f"/requests/{event.key}", headers={"X-Actor-Role": "wizard"})
        posing = await http.get(
            f"/requests/{event.key}", headers={**CARLA, "X-Actor-Role": "agent"}
        )
    assert own.status_code == 200
    assert other.status_code == 404
    assert [row["key"] for row in listed.json()] == [event.key]
    assert foreign_list.status_code == 403
    assert own_list.json() == []  # globex has no requests
    assert anonymous.status_code == 401
    assert stranger.status_code == 403  # a role the agent's identity does not grant
    assert posing.status_code == 403 and "do not hold the role 'agent'" in posing.text


async def test_a_reminder_armed_before_the_last_change_is_stale(pool: asyncpg.Pool) -> None:
    event = created()
    await open_ticket(pool, event)
    async with client(pool) as http:
        await http.post(f"/requests/{event.key}/start-work", headers=AGENT)
        asked = await http.post(
            f"/requests/{event.key}/request-information",
            json={"comment": "Which add-on version?"},
            headers=AGENT,
        )
        assert asked.status_code == 200, asked.text
    version = asked.json()["version"]
    later = NOW + timedelta(days=4)
    handle = on_command(POLICIES, lambda: later)
    stale = ReminderDue(
        ticket_id=event.ticket_id,
        occurred_at=later,
        armed_version=version - 1,
        due_at=later,
        days_waiting=3,
    )
    fresh = ReminderDue(
        ticket_id=event.ticket_id,
        occurred_at=later,
        armed_version=version,
        due_at=later,
        days_waiting=3,
    )
    async with pool.acquire() as conn, conn.transaction():
        await handle(conn, envelope_of(stale, "/desk/sla"), stale)
        assert len(await read_stream(conn, event.ticket_id)) == version
        await handle(conn, envelope_of(fresh, "/desk/sla"), fresh)
        stream = await read_stream(conn, event.ticket_id)
    assert stream[-1].event_type == "ReminderSent"


async def test_forwarded_mail_reply_and_failed_delivery_enter_the_history(
    pool: asyncpg.Pool,
) -> None:
    from desk_contracts.requests import CommentReceived, DeliveryFailed

    event = created()
    await open_ticket(pool, event)
    async with client(pool) as http:
        await http.post(f"/requests/{event.key}/start-work", headers=AGENT)
        await http.post(
            f"/requests/{event.key}/request-information",
            json={"comment": "Which add-on version?"},
            headers=AGENT,
        )
    handle = on_command(POLICIES, lambda: NOW)
    reply = CommentReceived(
        ticket_id=event.ticket_id,
        occurred_at=NOW,
        author_id="anne@acme.example",
        author_role="requester",
        organisation_id="acme",
        body="Version 4.2",
        source_message_id="<r1@acme.example>",
    )
    failed = DeliveryFailed(
        ticket_id=event.ticket_id,
        occurred_at=NOW,
        recipient="gone@acme.example",
        message_id="<m@desk.example>",
        notified_event_id=str(uuid.uuid4()),
        error="550 no such user",
    )
    for command, sender in ((reply, "/desk/intake"), (failed, "/desk/notifier")):
        env = Envelope(
            id=str(uuid.uuid4()),
            type=command.event_type,
            source=sender,
            subject=event.ticket_id,
            time=NOW,
            data=command.model_dump(mode="json"),
        )
        async with pool.acquire() as conn, conn.transaction():
            await handle(conn, env, command)
    async with client(pool) as http:
        detail = (await http.get(f"/requests/{event.key}")).json()
    assert detail["status"]["id"] == "in_progress"  # the requester's answer sends it back
    newest = detail["history"][:2]
    assert [h["type"] for h in newest] == ["NotificationFailed", "RequesterAnswered"]
    assert newest[1]["data"]["body"] == "Version 4.2"
    assert newest[1]["data"]["channel"] == "email"
    assert newest[0]["data"]["error"] == "550 no such user"


async def test_the_read_model_is_rebuilt_from_the_events_and_swapped_in(
    pool: asyncpg.Pool, database_url: str
) -> None:
    from workflow.entrypoints.rebuild import rebuild

    first, second = created(), created()
    for event in (first, second):
        await open_ticket(pool, event)
    async with client(pool) as http:
        await http.post(f"/requests/{first.key}/start-work", headers=AGENT)
    async with pool.acquire() as conn:
        expected = [dict(r) for r in await conn.fetch("SELECT * FROM tickets ORDER BY key")]
        await conn.execute("UPDATE tickets SET status = 'lost' WHERE key = $1", first.key)
        await conn.execute("DELETE FROM tickets WHERE key = $1", second.key)
        schema = await conn.fetchval("SELECT current_schema()")
    positions: list[int] = []
    count = await rebuild(database_url, schema, POLICIES, positions.append)
    async with pool.acquire() as conn:
        rebuilt = [dict(r) for r in await conn.fetch("SELECT * FROM tickets ORDER BY key")]
    assert count == 2 and positions

    def without_time(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in row.items() if k != "updated_at"} for row in rows]

    assert without_time(rebuilt) == without_time(expected)


@pytest.mark.parametrize(
    ("participant", "why"),
    [
        ("spam@outside.example", "neither a person of organisation 'acme'"),
        ("carla@globex.example", "neither a person of organisation 'acme'"),
        ("newcomer@acme.example", "in the directory"),  # the domain alone admits no one
        ("x@acme.example\r\nBcc: evil@evil.example", "is not an e-mail address"),
        ("not an address", "is not an e-mail address"),
        ("<script>", "is not an e-mail address"),
        ("../../etc/passwd", "is not an e-mail address"),
    ],
)
async def test_add_participant_refuses_whom_the_directory_does_not_admit(
    pool: asyncpg.Pool, participant: str, why: str
) -> None:
    event = created()
    await open_ticket(pool, event)
    async with client(pool) as http:
        refused = await http.post(
            f"/requests/{event.key}/add-participant",
            json={"participant_id": participant},
            headers=AGENT,
        )
        after = await http.get(f"/requests/{event.key}")
    assert refused.status_code == 422, refused.text
    detail = str(refused.json()["detail"])  # a bad address is refused first, by its field's type
    assert why in detail and ("participant refused" in detail or "e-mail address" in why)
    assert "\r\n" not in detail
    assert after.json()["participants"] == [] and after.json()["version"] == 1


async def test_add_participant_accepts_a_colleague_and_staff_of_the_desk(
    pool: asyncpg.Pool,
) -> None:
    event = created()
    await open_ticket(pool, event)
    async with client(pool) as http:
        for person in ("Bruno@ACME.example", "lea@desk.example"):
            added = await http.post(
                f"/requests/{event.key}/add-participant",
                json={"participant_id": person},
                headers=AGENT,
            )
            assert added.status_code == 200, added.text
            assert added.json()["events"] == ["ParticipantAdded"]
        after = await http.get(f"/requests/{event.key}")
    assert after.json()["participants"] == ["bruno@acme.example", "lea@desk.example"]


@pytest.mark.parametrize(
    "assignee",
    [
        "sales@desk.example",  # staff of erp-vendor only
        "anne@acme.example",  # the requester, a customer
        "spam@outside.example",
        "newcomer@desk.example",  # the staff's mail domain admits no one
    ],
)
async def test_assign_refuses_whom_the_directory_does_not_list_as_staff_of_the_desk(
    pool: asyncpg.Pool, assignee: str
) -> None:
    event = created()
    await open_ticket(pool, event)
    async with client(pool) as http:
        refused = await http.post(
            f"/requests/{event.key}/assign", json={"assignee_id": assignee}, headers=AGENT
        )
        after = await http.get(f"/requests/{event.key}")
    assert refused.status_code == 422, refused.text
    [problem] = refused.json()["detail"]
    assert problem["loc"] == ["body", "assignee_id"]
    assert problem["msg"] == (
        f"assignee refused: {assignee!r} is not staff of desk 'cloud-partner' in the directory"
    )
    assert after.json()["assignee_id"] is None and after.json()["version"] == 1


async def test_assign_accepts_staff_of_the_desk_and_a_group(pool: asyncpg.Pool) -> None:
    event = created()
    await open_ticket(pool, event)
    async with client(pool) as http:
        assigned = await http.post(
            f"/requests/{event.key}/assign", json={"assignee_id": "Lea@Desk.Example"}, headers=AGENT
        )
        assert assigned.status_code == 200, assigned.text
        assert assigned.json()["events"] == ["TicketAssigned"]
        # the policies know no groups: a group is a name the desk uses, mailed to no one
        grouped = await http.post(
            f"/requests/{event.key}/assign", json={"group_id": "level2"}, headers=AGENT
        )
        assert grouped.status_code == 200, grouped.text
        after = await http.get(f"/requests/{event.key}")
    assert after.json()["assignee_id"] is None and after.json()["version"] == 3
    assert [h["data"].get("assignee_id") for h in after.json()["history"][:2]] == [
        None,
        "lea@desk.example",
    ]


async def test_erp_vendor_closes_citing_the_requester_s_confirming_comment(
    pool: asyncpg.Pool,
) -> None:
    event = created("erp-vendor")
    await open_ticket(pool, event)
    desk = token("sd@desk.example", roles={"erp-vendor": ["service_desk"]})
    anne = CUSTOMER
    close = f"/requests/{event.key}/close"
    async with client(pool) as http:
        await http.post(f"/requests/{event.key}/start-work", headers=desk)
        resolved = await http.post(
            f"/requests/{event.key}/resolve",
            json={"resolution_code": "handled", "comment": "Correctif installé"},
            headers=desk,
        )
        assert resolved.json()["status"] == "resolved", resolved.text
        commented = await http.post(
            f"/requests/{event.key}/add-comment", json={"body": "ça fonctionne"}, headers=anne
        )
        assert commented.json()["status"] == "resolved", commented.text
        cited = commented.json()["version"]

        uncited = await http.post(close, headers=desk)
        assert uncited.status_code == 409
        why = uncited.json()["detail"]
        assert f"confirming the resolution (confirmation_version: {cited})" in why
        for bad in (0, -1, "four", 2**31):
            malformed = await http.post(close, json={"confirmation_version": bad}, headers=desk)
            assert malformed.status_code == 422, bad
            assert malformed.json()["detail"][0]["loc"] == ["body", "confirmation_version"]
        wrong = await http.post(close, json={"confirmation_version": cited - 1}, headers=desk)
        assert wrong.status_code == 409 and "is not a public comment" in wrong.json()["detail"]

        closed = await http.post(close, json={"confirmation_version": cited}, headers=desk)
        assert closed.status_code == 200, closed.text
        assert closed.json()["status"] == "closed"
        read = await http.get(f"/requests/{event.key}", headers=desk)
    history = read.json()["history"]
    newest = history[0]
    assert newest["type"] == "TicketClosed" and newest["data"]["confirmation_version"] == cited
    (confirming,) = [h for h in history if h["version"] == cited]
    assert confirming["type"] == "CommentAdded"
    assert confirming["data"]["actor_id"] == "anne@acme.example"
    assert confirming["data"]["body"] == "ça fonctionne"


NOTE = "Between us: this customer is on the legacy plan"


async def test_an_internal_note_never_reaches_the_requester(pool: asyncpg.Pool) -> None:
    """The note is kept for the support side; the requester reads the request, its list row and
    every page of its history without it, without the agent's name, role or assignment."""
    event = created()
    await open_ticket(pool, event)
    async with client(pool) as http:
        for command, body in (
            ("start-work", {}),
            ("assign", {"assignee_id": "lea@desk.example"}),
            ("add-comment", {"body": NOTE, "public": False}),
            ("add-comment", {"body": "We are on it", "public": True}),
        ):
            done = await http.post(f"/requests/{event.key}/{command}", json=body, headers=AGENT)
            assert done.status_code == 200, done.text
        team = (await http.get(f"/requests/{event.key}")).json()
        mine = await http.get(f"/requests/{event.key}", headers=CUSTOMER)
        pages = [
            await http.get(
                f"/requests/{event.key}", params={"history_limit": 1, **before}, headers=CUSTOMER
            )
            for before in ({}, {"before_version": 5}, {"before_version": 3}, {"before_version": 2})
        ]
        listed = await http.get("/requests", params={"state": "all"}, headers=CUSTOMER)
        team_rows = (await http.get("/requests", params={"organisation_id": "acme"})).json()
    decided = REQUEST_SHOWN | REQUEST_INTERNAL  # every field of a request is decided
    assert set(team_rows[0]) <= decided, set(team_rows[0]) - decided
    assert set(team) - {"history", "history_total", "history_more"} <= decided
    assert [h["data"].get("body") for h in team["history"][:2]] == ["We are on it", NOTE]
    assert team["assignee_id"] == "lea@desk.example" and team["history_total"] == 5

    assert mine.status_code == 200, mine.text
    seen = mine.json()
    assert [h["type"] for h in seen["history"]] == [
        "CommentAdded",
        "TicketAssigned",
        "WorkStarted",
        "TicketCreated",
    ]
    assert seen["history_total"] == 4 and seen["history_more"] is False
    public = seen["history"][0]["data"]
    assert (public["body"], public["actor_id"], public["actor_role"]) == (
        "We are on it",
        "support",
        "support",
    )
    assert "assignee_id" not in seen and seen["status"]["expected_actor"] == "support"
    assert [[h["version"] for h in p.json()["history"]] for p in pages] == [[5], [3], [2], [1]]
    assert [p.json()["history_more"] for p in pages] == [True, True, True, False]
    assert {p.json()["history_total"] for p in pages} == {4}
    rows = listed.json()
    assert [row["key"] for row in rows] == [event.key]
    assert "assignee_id" not in rows[0] and rows[0]["expected_actor"] == "support"
    for answer in (mine, *pages, listed):
        for internal in (NOTE, "paul@partner.example", "lea@desk.example", '"agent"'):
            assert internal not in answer.text, internal


async def test_roles_that_read_no_request_are_refused(pool: asyncpg.Pool) -> None:
    event = created()
    await open_ticket(pool, event)
    async with client(pool) as http:
        for role in ("third_party", "system"):
            granted = token("hosting@partner.example", roles={"cloud-partner": [role]})
            chosen = token(
                "paul@partner.example",
                roles={"cloud-partner": ["agent", role]},
            ) | {"X-Actor-Role": role}
            for headers in (granted, chosen):
                detail = await http.get(f"/requests/{event.key}", headers=headers)
                listed = await http.get(
                    "/requests", params={"policy_id": "cloud-partner"}, headers=headers
                )
                assert detail.status_code == listed.status_code == 403, (role, detail.text)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        (token("paul@partner.example", organisation=None), 403),  # reads no desk's requests
        ({**AGENT, "X-Actor-Role": "janitor"}, 403),
        (token("sales@desk.example", roles={"erp-vendor": ["sales_admin"]}), 404),  # not its desk
        (token("carla@globex.example", organisation="globex"), 404),  # another organisation's
    ],
)
async def test_who_reads_is_checked_before_any_request_is_looked_up(
    pool: asyncpg.Pool, headers: dict[str, str], status: int
) -> None:
    """An unknown reader gets the same answer for a request that exists and one that does not,
    so they cannot probe which keys exist; nor does one who may not read the request."""
    event = created()
    await open_ticket(pool, event)
    app = create_app(pool, POLICIES, lambda: NOW, verifier=verifier("workflow"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://workflow") as http:
        for key in (event.key, "SUP-404404"):
            assert (await http.get(f"/requests/{key}", headers=headers)).status_code == status


@pytest.mark.parametrize(
    ("kind", "sender"),
    [("reminder", "/desk/intake"), ("created", "/desk/sla"), ("reminder", "/desk/portal")],
)
async def test_a_command_from_a_service_that_may_not_send_it_is_poison(
    pool: asyncpg.Pool, kind: str, sender: str
) -> None:
    event = created()
    await open_ticket(pool, event)
    command = (
        ReminderDue(
            ticket_id=event.ticket_id, occurred_at=NOW, armed_version=1, due_at=NOW, days_waiting=3
        )
        if kind == "reminder"
        else created()
    )
    with pytest.raises(PoisonMessage, match="may send it"):
        async with pool.acquire() as conn, conn.transaction():
            await on_command(POLICIES, lambda: NOW)(conn, envelope_of(command, sender), command)
