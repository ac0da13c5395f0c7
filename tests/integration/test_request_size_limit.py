"""One request cannot grow without limit, and one read of it is bounded: workflow served by
uvicorn on the real PostgreSQL server, a customer adding 400 kB comments (100,000 emoji) until
the request is full (the real bound, `MAX_STREAM_BYTES`), then reading it back in pages."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from desk_servers import Served, serving, ticket_created, workflow_app
from identity_support import bearer

from desk_contracts.topics import MAX_EVENT_BYTES, MAX_STREAM_BYTES
from desk_eventstore import store

pytestmark = pytest.mark.integration

ANNE = bearer("anne@acme.example", audience="workflow", organisation="acme")
BIG = json.dumps({"body": "\N{GRINNING FACE}" * 100_000}, ensure_ascii=False).encode()


@pytest.fixture
def workflow(database_url: str) -> Iterator[Served]:
    with serving(database_url, "workflow", workflow_app, ticket_created()) as served:
        yield served


def comment(http: httpx.Client, key: str, body: bytes = BIG) -> httpx.Response:
    headers = {**ANNE, "Content-Type": "application/json"}
    return http.post(f"/requests/{key}/add-comment", content=body, headers=headers)


def read(http: httpx.Client, key: str, **params: Any) -> httpx.Response:
    return http.get(f"/requests/{key}", params=params, headers=ANNE)


def test_a_full_request_refuses_comments_and_one_read_of_it_stays_bounded(
    workflow: Served,
) -> None:
    key = workflow.ticket
    assert key is not None
    with httpx.Client(base_url=workflow.url, timeout=30) as http:
        answers = []
        for _ in range(40):  # 40 x 400 kB = 16 MB: twice the bound
            answers.append(comment(http, key))
            if answers[-1].status_code != 200:
                break
        refused = answers[-1]
        assert refused.status_code == 409, refused.text
        assert refused.json()["detail"] == (
            f"request {key} has reached its size limit: open a new request that references {key}"
        )
        accepted = len(answers) - 1
        assert accepted == MAX_STREAM_BYTES // (400_000 + 200)  # 20 comments fit in 8 MiB
        assert comment(http, key).status_code == 409  # refused for good, not a conflict

        started = time.monotonic()
        whole = read(http, key)
        elapsed = time.monotonic() - started
        assert whole.status_code == 200
        assert len(whole.content) < MAX_STREAM_BYTES + 64 * 1024  # the bound holds the read too
        assert elapsed < 2.0, elapsed
        detail = whole.json()
        assert detail["history_total"] == accepted + 1 and detail["history_more"] is False

        one = read(http, key, history_limit=1)
        assert len(one.content) < MAX_EVENT_BYTES
        assert one.json()["history_more"] is True
        assert [h["version"] for h in one.json()["history"]] == [accepted + 1]


def test_the_history_is_read_in_pages_newest_first(
    workflow: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = workflow.ticket
    assert key is not None
    monkeypatch.setattr(store, "MAX_STREAM_EVENTS", 8)  # a small bound: 7 comments fill it
    with httpx.Client(base_url=workflow.url, timeout=30) as http:
        codes = [comment(http, key, b'{"body": "still slow"}').status_code for _ in range(8)]
        assert codes == [200] * 7 + [409]
        pages, before = [], None
        while True:
            params = {"history_limit": 3} | ({"before_version": before} if before else {})
            page = read(http, key, **params).json()
            versions = [h["version"] for h in page["history"]]
            pages.append(versions)
            assert page["history_total"] == 8
            if not page["history_more"]:
                break
            before = versions[-1]
        assert pages == [[8, 7, 6], [5, 4, 3], [2, 1]]
        assert read(http, key, history_limit=501).status_code == 422
        assert read(http, key, history_limit=0).status_code == 422
