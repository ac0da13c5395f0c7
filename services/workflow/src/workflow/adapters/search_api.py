"""Search over the requests, for the support side of the desks (the agents' console): `GET
/search`.

What is searched is the read model's search vector (migration 0003): a request's key, subject,
description and every text people wrote on it, internal comments included, so only a desk's
support side searches it: a caller reads, among the desks their identity lets them read
(`desks_read_by`; `X-Actor-Role` may choose a role), those where they read as
`Audience.SUPPORT`, and none other; 403 when there is none (a customer never searches).

`q` is a request's key (exact, any case: that request comes first) or words in the syntax of
`websearch_to_tsquery` ("quoted phrases", `or`, `-word`), stemmed with the English and with the
French dictionary: a word matches in either language ("rapports" finds "rapport"). A search
answers at most `MATCHES` requests, the most recently changed of those that match: ranked by
`ts_rank` (key and subject first, then description, then comments), then newest change first;
without `q`, newest change first. So its cost stays bounded whatever a word's frequency
(counting and ranking read each match's vector): `X-Total-Count` says how many match, up to
`MATCHES`, and `X-More-Matches: true` that more do (narrow the search). Filters: desk,
status, priority, organisation, assignee (or unassigned), open or closed, creation dates (days
in the caller's time zone `zone`); one page of `limit` rows from `offset`. With
`snippets=true`, each row of a search by words carries where they are found (a bounded extract
of the description and the comments, in the caller's `language`), as segments with the words
found marked. Every input is bounded; control characters are refused (422)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Response

from desk_contracts.identity import Identity
from desk_platform.http import IDENTITY_ANSWERS, SCHEMAS, RoleChoice, refusals
from desk_platform.identity import Verifier, requires_identity
from desk_policies.audience import Audience
from desk_policies.model import DeskPolicy
from workflow.adapters.readers import desks_read_by
from workflow.adapters.sql_where import Where
from workflow.application.tickets import ROW_COLUMNS

MAX_Q = 200  # characters of a search
MAX_LIMIT = 100
MATCHES = 1_000  # requests one search answers at most (see module)
SNIPPET_CHARS = (2_000, 4_000)  # of the description, of the comments: what a snippet reads
KEY = re.compile(r"[A-Za-z][A-Za-z0-9²]{0,19}-[0-9]{1,12}")
UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffd]")
ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]{0,30}(/[A-Za-z0-9_+-]{1,30}){0,2}")
EARLIEST, LATEST = date(1970, 1, 1), date(9998, 12, 31)
HEADLINE = {"fr": "french", "en": "english"}  # the caller's language -> the snippet's stemming
START, STOP = "\x01", "\x02"  # the marks around a word found (never in a text: taken out first)
HEADLINE_OPTIONS = (
    f'StartSel="{START}", StopSel="{STOP}", MaxWords=20, MinWords=8, MaxFragments=2, '
    'FragmentDelimiter=" … "'
)
WORDS = (  # what `q` looks for, folded as the texts are (migration 0003), in either language
    "(websearch_to_tsquery('english', tickets_search_fold({q}))"
    " || websearch_to_tsquery('french', tickets_search_fold({q})))"
)


def refuse_unsafe(**values: str | None) -> None:
    """422 naming the first of `values` that holds characters that are not text."""
    for name, value in values.items():
        if value is not None and UNSAFE.search(value):
            raise HTTPException(422, f"{name} holds characters that are not text")


def zone_of(name: str) -> ZoneInfo:
    """The IANA time zone `name`; 422 when there is none of that name."""
    if ZONE.fullmatch(name):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise HTTPException(422, "zone is not a time zone name (e.g. Europe/Zurich)")


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The instant `day` begins in `zone`; 422 for a day too far in the past or future."""
    if not EARLIEST <= day <= LATEST:
        raise HTTPException(422, f"dates run from {EARLIEST} to {LATEST}")
    return datetime.combine(day, time(), tzinfo=zone)


def segments(headline: str) -> list[dict[str, Any]]:
    """A snippet as `ts_headline` made it with `START`/`STOP` marks: its segments, each with
    whether it is a word found."""
    found = []
    for n, part in enumerate(re.split(f"[{START}{STOP}]", headline)):
        if part:
            found.append({"text": part, "hit": n % 2 == 1})
    return found


@dataclass(frozen=True)
class Criteria:
    """One search as asked, its inputs checked (see module)."""

    desks: list[str]  # the desks searched: those the caller reads as support
    words: str = ""  # a key or words; "" for none
    policy_id: str | None = None
    status: str | None = None
    priority: str | None = None
    organisation_id: str | None = None
    assignee_id: str | None = None
    unassigned: bool = False
    state: str = "all"
    created_from: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive


@dataclass(frozen=True)
class Search:
    """The SQL of one search: how many rows match, up to `MATCHES` + 1 (`count`, with `args`),
    and one page of them (`page`, with `args` then limit and offset); a search by words counts
    in its page too (each row's `total`: `count` is then needed only for a page beyond the
    last)."""

    count: str
    page: str
    args: list[Any]
    counted: bool = False


def search_sql(criteria: Criteria) -> Search:
    """The SQL of `criteria`, from bound parameters only (see module for the order)."""
    c = criteria
    where = Where([c.desks], ["policy_id = ANY($1)"])
    where.equal("policy_id", c.policy_id)
    where.equal("status", c.status)
    where.equal("priority", c.priority)
    where.equal("organisation_id", c.organisation_id)
    where.equal("assignee_id", c.assignee_id)
    if c.unassigned:
        where.clauses.append("assignee_id IS NULL")
    if c.state != "all":
        where.clauses.append("category <> 'closed'" if c.state == "open" else "category = 'closed'")
    if c.created_from is not None:
        where.add("created_at >= {}", c.created_from)
    if c.created_before is not None:
        where.add("created_at < {}", c.created_before)
    n = len(where.args)
    if not c.words:
        return Search(
            count=f"SELECT count(*) FROM (SELECT FROM tickets WHERE {where} LIMIT {MATCHES + 1}) m",
            page=f"""SELECT {ROW_COLUMNS}, NULL::real AS rank FROM tickets WHERE {where}
                     ORDER BY updated_at DESC, ticket_id LIMIT ${n + 1} OFFSET ${n + 2}""",
            args=where.args,
        )
    where.args.append(c.words)
    q = f"${n + 1}"
    words = WORDS.format(q=q)
    matches, exact = f"search @@ {words}", ""
    if KEY.fullmatch(c.words):
        matches = f"({matches} OR lower(key) = lower({q}))"
        exact = f"(lower(key) = lower({q})) DESC, "
    where.clauses.append(matches)
    order = f"{exact}updated_at DESC, ticket_id"
    return Search(
        count=f"SELECT count(*) FROM (SELECT FROM tickets WHERE {where} LIMIT {MATCHES + 1}) m",
        page=f"""WITH found AS MATERIALIZED (
                     SELECT {ROW_COLUMNS}, search FROM tickets WHERE {where}
                     ORDER BY {order} LIMIT {MATCHES + 1}),
                 newest AS (
                     SELECT *, row_number() OVER (ORDER BY {order}) AS recency,
                            count(*) OVER () AS total
                     FROM found)
                 SELECT {ROW_COLUMNS}, ts_rank(search, {words}) AS rank, total FROM newest
                 WHERE recency <= {MATCHES}
                 ORDER BY {exact}rank DESC, updated_at DESC, ticket_id
                 LIMIT ${n + 2} OFFSET ${n + 3}""",
        args=where.args,
        counted=True,
    )


def search_router(
    pool: asyncpg.Pool, policies: dict[str, DeskPolicy], verifier: Verifier
) -> APIRouter:
    """The route described in the module docstring."""
    router = APIRouter()
    identified = Depends(requires_identity(verifier))

    @router.get(
        "/search",
        responses={
            **IDENTITY_ANSWERS,
            **refusals(
                {
                    403: "the identity reads no desk's requests as its support side (or does "
                    "not grant the role X-Actor-Role chooses)",
                }
            ),
            422: {
                "description": "invalid input, or a search, a day or a time zone that is not one "
                "(a sentence)",
                "content": {
                    "application/json": {
                        "schema": {
                            "anyOf": [
                                {"$ref": f"{SCHEMAS}HTTPValidationError"},
                                {"$ref": f"{SCHEMAS}Problem"},
                            ]
                        }
                    }
                },
            },
        },
    )
    async def search(
        response: Response,
        q: Annotated[str | None, Query(max_length=MAX_Q)] = None,
        policy_id: Annotated[str | None, Query(max_length=100)] = None,
        status: Annotated[str | None, Query(max_length=64)] = None,
        priority: Annotated[str | None, Query(max_length=64)] = None,
        organisation_id: Annotated[str | None, Query(max_length=200)] = None,
        assignee_id: Annotated[str | None, Query(max_length=254)] = None,
        unassigned: bool = False,
        state: Annotated[str, Query(pattern="^(open|closed|all)$")] = "all",
        created_from: date | None = None,
        created_to: date | None = None,
        zone: Annotated[str, Query(max_length=64)] = "UTC",
        snippets: bool = False,
        language: Annotated[str, Query(pattern="^(en|fr)$")] = "en",
        offset: Annotated[int, Query(ge=0, lt=MATCHES)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 25,
        identity: Identity = identified,
        x_actor_role: RoleChoice = None,
    ) -> list[dict[str, Any]]:
        """Requests of the desks the caller reads as support, found by key or words, filtered
        (see module); each row as the support side sees it, with `rank` when searched by
        words and `snippet` when asked (and found)."""
        desks = desks_read_by(identity, policies.values(), x_actor_role)
        support = sorted(d for d, audience in desks.items() if audience is Audience.SUPPORT)
        if not support:
            raise HTTPException(403, "search is for the support side of a desk")
        refuse_unsafe(
            q=q, policy_id=policy_id, status=status, priority=priority,
            organisation_id=organisation_id, assignee_id=assignee_id,
        )  # fmt: skip
        if unassigned and assignee_id is not None:
            raise HTTPException(422, "give assignee_id or unassigned, not both")
        timezone = zone_of(zone)
        start = day_start(created_from, timezone) if created_from else None
        end = day_start(created_to, timezone) + timedelta(days=1) if created_to else None
        if start and end and start >= end:
            raise HTTPException(422, "created_from is after created_to")
        criteria = Criteria(
            support, words=(q or "").strip(), policy_id=policy_id, status=status,
            priority=priority, organisation_id=organisation_id, assignee_id=assignee_id,
            unassigned=unassigned, state=state, created_from=start, created_before=end,
        )  # fmt: skip
        sql = search_sql(criteria)
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            # planned for the words and filters given each time: a generic plan (what a
            # prepared statement falls back to) cannot tell a rare word from a common one
            await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            rows = await conn.fetch(sql.page, *sql.args, limit, offset)
            if sql.counted and rows:
                total = rows[0]["total"]
            else:
                total = await conn.fetchval(sql.count, *sql.args)
            found = {}
            if criteria.words and snippets and rows:
                ids = [r["ticket_id"] for r in rows]
                found = await _snippets(conn, ids, criteria.words, language)
        response.headers["X-Total-Count"] = str(min(total, MATCHES))
        if total > MATCHES:
            response.headers["X-More-Matches"] = "true"
        return [_row(dict(row), found.get(row["ticket_id"])) for row in rows]

    return router


async def _snippets(
    conn: asyncpg.Connection, ticket_ids: list[str], words: str, language: str
) -> dict[str, list[dict[str, Any]]]:
    """Where `words` are found in each of `ticket_ids` (one page): `ts_headline` over the first
    characters of the description and of the comments (`SNIPPET_CHARS`: what it costs stays
    bounded), stemmed in `language`; none for a request where they are not found there (e.g.
    only in its subject)."""
    described, commented = SNIPPET_CHARS
    rows = await conn.fetch(
        f"""SELECT ticket_id, ts_headline(
                '{HEADLINE[language]}',
                translate(left(description, {described}) || E'\\n' || left(comments, {commented}),
                          E'\\x01\\x02', '  '),
                {WORDS.format(q="$2")}, $3) AS headline
            FROM tickets WHERE ticket_id = ANY($1)""",
        ticket_ids,
        words,
        HEADLINE_OPTIONS,
    )
    found = {row["ticket_id"]: segments(row["headline"]) for row in rows}
    return {ticket: parts for ticket, parts in found.items() if any(p["hit"] for p in parts)}


def _row(row: dict[str, Any], snippet: list[dict[str, Any]] | None) -> dict[str, Any]:
    """One row of the answer: the request's list fields, its rank when searched by words, its
    snippet when asked."""
    row.pop("total", None)
    if row["rank"] is None:
        del row["rank"]
    if snippet is not None:
        row["snippet"] = snippet
    return row
