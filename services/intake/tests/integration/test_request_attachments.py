"""`POST /requests` with attachments and a reference to an earlier request, against intake's
app, the real PostgreSQL server and a blob folder: an attachment names a file already in the
blob store (the portal puts it there), a reference is a request's key."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from identity_support import bearer, verifier
from service_support import service_store

from desk_platform.blobs import FolderBlobStore
from desk_policies.loader import load_policies
from intake.adapters.http import create_app

pytestmark = pytest.mark.integration

POLICIES = load_policies()
ANNE = bearer("anne@acme.example", audience="intake", organisation="acme")


def request(**changes: Any) -> dict[str, Any]:
    return {
        "policy_id": "saas-desk", "request_type": "problem_report", "priority": "high",
        "subject": "The monthly export fails", "description": "Error 500 on every export",
        "organisation_id": "acme", "requester": "anne@acme.example", **changes,
    }  # fmt: skip


@pytest.fixture
async def blobs(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "blobs")


@pytest.fixture
async def http(database_url: str, blobs: FolderBlobStore) -> AsyncIterator[httpx.AsyncClient]:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    async with service_store(database_url, "intake") as pool:
        app = create_app(
            pool, POLICIES, lambda: now, "http://workflow", verifier=verifier("intake"),
            blobs=blobs,
        )  # fmt: skip
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://intake", headers=ANNE
        ) as client:
            client.pool = pool  # type: ignore[attr-defined]
            yield client


async def stored_creation(http: httpx.AsyncClient, ticket_id: str) -> dict[str, Any]:
    data = await http.pool.fetchval(  # type: ignore[attr-defined]
        "SELECT payload FROM events WHERE stream_id = $1 AND event_type = 'TicketCreated'",
        ticket_id,
    )
    return json.loads(data) if isinstance(data, str) else dict(data)


def refused_fields(answer: httpx.Response) -> list[list[str]]:
    return [entry["loc"] for entry in answer.json()["detail"]]


async def test_a_stored_file_is_attached_to_the_request(
    http: httpx.AsyncClient, blobs: FolderBlobStore
) -> None:
    sha256 = await blobs.put(b"\x89PNG screenshot")
    attachment = {"filename": "screen.png", "content_type": "image/png", "size": 15,
                  "sha256": sha256}  # fmt: skip
    answer = await http.post("/requests", json=request(attachments=[attachment]))
    assert answer.status_code == 201, answer.text
    created = await stored_creation(http, answer.json()["ticket_id"])
    assert created["attachments"] == [attachment]


async def test_an_attachment_whose_file_is_not_stored_is_refused_naming_the_field(
    http: httpx.AsyncClient, blobs: FolderBlobStore
) -> None:
    unknown = {"filename": "a.txt", "content_type": "text/plain", "size": 1, "sha256": "0" * 64}
    answer = await http.post("/requests", json=request(attachments=[unknown]))
    assert answer.status_code == 422
    assert refused_fields(answer) == [["body", "attachments"]]
    sha256 = await blobs.put(b"four")
    lying = {**unknown, "sha256": sha256, "size": 5}  # the file has 4 bytes
    answer = await http.post("/requests", json=request(attachments=[lying]))
    assert answer.status_code == 422 and "4 bytes" in answer.text


@pytest.mark.parametrize(
    "attachment",
    [
        {"filename": "../etc/passwd", "content_type": "text/plain", "size": 1, "sha256": "a" * 64},
        {"filename": "a\nb.txt", "content_type": "text/plain", "size": 1, "sha256": "a" * 64},
        {"filename": "x" * 201, "content_type": "text/plain", "size": 1, "sha256": "a" * 64},
        {"filename": "a.txt", "content_type": "text/plain", "size": 1, "sha256": "A" * 64},
        {"filename": "a.txt", "content_type": "text/ plain", "size": 1, "sha256": "a" * 64},
    ],
)
async def test_an_attachment_out_of_bounds_is_refused(
    http: httpx.AsyncClient, attachment: dict[str, Any]
) -> None:
    answer = await http.post("/requests", json=request(attachments=[attachment]))
    assert answer.status_code == 422
    assert refused_fields(answer)[0][:2] == ["body", "attachments"]


async def test_at_most_ten_attachments(http: httpx.AsyncClient, blobs: FolderBlobStore) -> None:
    sha256 = await blobs.put(b"x")
    one = {"filename": "x.txt", "content_type": "text/plain", "size": 1, "sha256": sha256}
    answer = await http.post("/requests", json=request(attachments=[one] * 11))
    assert answer.status_code == 422
    assert refused_fields(answer) == [["body", "attachments"]]


async def test_a_request_references_an_earlier_one_by_its_key(http: httpx.AsyncClient) -> None:
    answer = await http.post("/requests", json=request(references="PRB-1001"))
    assert answer.status_code == 201, answer.text
    assert (await stored_creation(http, answer.json()["ticket_id"]))["references"] == "PRB-1001"


@pytest.mark.parametrize("key", ["prb-1001", "PRB", "PRB-1001; DROP", "P" * 30 + "-1", "-1"])
async def test_a_reference_that_is_not_a_request_key_is_refused(
    http: httpx.AsyncClient, key: str
) -> None:
    answer = await http.post("/requests", json=request(references=key))
    assert answer.status_code == 422
    assert refused_fields(answer) == [["body", "references"]]
