"""The audit of requests, for the support side: who changed what, when, and why
(`workflow.domain.audit`), as JSON or as CSV (`?format=csv`, or `Accept: text/csv`).

- `GET /requests/{ticket}/audit`: every field change of one request, oldest first. For the
  support side of the request's desk; a customer who reads the request gets 403 (the audit
  names the desk's people and internal fields), anyone who may not read it 404, as for a
  request that does not exist.
- `GET /desks/{policy_id}/audit?from=&to=`: the changes made on the desk's requests in a period
  (`from` included, `to` excluded, instants with their offset, at most `MAX_PERIOD` apart), at
  most `limit` rows (default and at most `MAX_ROWS`), the earliest first; `X-More-Rows: true`
  when some were left out (narrow the period). For the desk's leads only (a role its policy
  marks `administers`, e.g. team lead, support manager): 403 for anyone else, deny by default.

Instants given from outside are read by one rule (`desk_contracts.inputs.instant`): 422 with the
reason for what is not one. A CSV export is UTF-8, each cell safe to open in a spreadsheet.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Response

from desk_contracts.identity import Identity
from desk_contracts.inputs import BadInstant, instant, quoted
from desk_platform.http import IDENTITY_ANSWERS, SCHEMAS, RoleChoice, refusals
from desk_platform.identity import Verifier, requires_identity
from desk_policies.audience import Audience, leads
from desk_policies.model import DeskPolicy
from workflow.adapters.readers import desks_read_by, reader_of
from workflow.application.history import changes_of, desk_changes
from workflow.application.tickets import Loaded
from workflow.domain.audit import COLUMNS, Change, csv_text

MAX_PERIOD = timedelta(days=93)  # a quarter, whatever its months
MAX_ROWS = 10_000
CSV = "text/csv; charset=utf-8"

INSTANT_REFUSED: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "invalid input, or an instant that is not one with its offset in the "
        "years this service reads (a sentence)",
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
    }
}
_TEXT = {"type": "string"}
_MAYBE = {"anyOf": [{"type": "string"}, {"type": "null"}]}
CHANGE_SCHEMA = {  # one row of `workflow.domain.audit.Change.row`
    "type": "object",
    "properties": {
        "key": _TEXT, "version": {"type": "integer"},
        "occurred_at": {"type": "string", "format": "date-time"}, "event": _TEXT,
        "actor_id": _TEXT, "actor_role": _TEXT, "field": _TEXT, "old": _MAYBE, "new": _MAYBE,
        "reason": _MAYBE,
    },
    "required": list(COLUMNS),
}  # fmt: skip
AS_CSV = {
    "content": {
        "application/json": {"schema": {"type": "array", "items": CHANGE_SCHEMA}},
        "text/csv": {"schema": {"type": "string"}},
    }
}


def instant_of(text: str, name: str) -> datetime:
    """The instant `text` given as the parameter `name` (`desk_contracts.inputs.instant`); 422
    naming the parameter and why, never echoing the input."""
    try:
        return instant(text)
    except BadInstant as error:
        raise HTTPException(422, f"{name}: {error}") from None


def wants_csv(format: str | None, accept: str | None) -> bool:
    """Is the answer asked as CSV: `format=csv`, or `text/csv` accepted (and JSON not named
    first)?"""
    if format is not None:
        return format == "csv"
    kinds = [part.split(";")[0].strip().lower() for part in (accept or "").split(",")]
    return "text/csv" in kinds and kinds.index("text/csv") < _index(kinds, "application/json")


def _index(kinds: list[str], kind: str) -> int:
    return kinds.index(kind) if kind in kinds else len(kinds)


def answer(
    found: Iterable[Change], as_csv: bool, filename: str, more: bool | None = None
) -> Response:
    """The changes as JSON (a list of rows) or as a CSV file named `filename`."""
    rows = [c.row() for c in found]
    headers = {} if more is None else {"X-More-Rows": "true" if more else "false"}
    if as_csv:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return Response(csv_text(rows).encode("utf-8"), media_type=CSV, headers=headers)
    body = json.dumps(rows, ensure_ascii=False).encode("utf-8")
    return Response(body, media_type="application/json", headers=headers)


def history_router(
    pool: asyncpg.Pool,
    policies: Mapping[str, DeskPolicy],
    verifier: Verifier,
    loaded_for: Callable[[asyncpg.Connection, str], Awaitable[Loaded]],
) -> APIRouter:
    """The routes described in the module docstring; `loaded_for` loads a request (404 when
    there is none), as the request's read does."""
    router = APIRouter()
    identified = Depends(requires_identity(verifier))

    @router.get(
        "/requests/{ticket}/audit",
        response_class=Response,
        responses={
            200: {"description": "the request's changes, oldest first", **AS_CSV},
            **IDENTITY_ANSWERS,
            **refusals(
                {
                    403: "the identity reads no desk's requests, or reads this one as a "
                    "customer (the audit is the support side's), or does not grant the role "
                    "X-Actor-Role chooses",
                    404: "no such request (or not one the reader may see)",
                }
            ),
        },
    )
    async def request_audit(
        ticket: str,
        format: Annotated[str | None, Query(pattern="^(json|csv)$")] = None,
        accept: Annotated[str | None, Header(max_length=1000)] = None,
        identity: Identity = identified,
        x_actor_role: RoleChoice = None,
    ) -> Response:
        """Every field change of the request, oldest first: who, when, what from and to, and
        the reason or comment its event carries (see module)."""
        desks = desks_read_by(identity, policies.values(), x_actor_role)  # before any lookup
        async with pool.acquire() as conn:
            loaded = await loaded_for(conn, ticket)
        if reader_of(loaded, ticket, identity, desks) is not Audience.SUPPORT:
            raise HTTPException(403, "the audit of a request is for its desk's support side")
        filename = f"{loaded.state.key}-audit.csv"
        return answer(changes_of(loaded), wants_csv(format, accept), filename)

    @router.get(
        "/desks/{policy_id}/audit",
        response_class=Response,
        responses={
            200: {
                "description": "the desk's changes of the period, oldest first",
                "headers": {
                    "X-More-Rows": {
                        "description": "true when some changes were left out",
                        "schema": {"type": "string", "enum": ["true", "false"]},
                    }
                },
                **AS_CSV,
            },
            **IDENTITY_ANSWERS,
            **refusals(
                {
                    403: "not a lead of the desk (or a role X-Actor-Role chooses that the "
                    "identity does not grant)",
                    404: "no such desk",
                }
            ),
            **INSTANT_REFUSED,
        },
    )
    async def desk_audit(
        policy_id: Annotated[str, Path(min_length=1, max_length=100)],
        start: Annotated[str, Query(alias="from", max_length=100)],
        end: Annotated[str, Query(alias="to", max_length=100)],
        limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = MAX_ROWS,
        format: Annotated[str | None, Query(pattern="^(json|csv)$")] = None,
        accept: Annotated[str | None, Header(max_length=1000)] = None,
        identity: Identity = identified,
        x_actor_role: RoleChoice = None,
    ) -> Response:
        """The field changes made on the desk's requests from `from` to `to` (excluded), the
        earliest first, at most `limit` (see module)."""
        policy = policies.get(policy_id)
        if policy is None:
            raise HTTPException(404, f"no desk {quoted(policy_id)}")
        desks_read_by(identity, policies.values(), x_actor_role)  # 403 for a role not granted
        if not leads(identity, policy, x_actor_role):
            raise HTTPException(403, f"the audit of desk {policy_id} is for its leads")
        since, until = instant_of(start, "from"), instant_of(end, "to")
        if until <= since:
            raise HTTPException(422, "to: the period ends before it starts")
        if until - since > MAX_PERIOD:
            raise HTTPException(422, f"to: a period is at most {MAX_PERIOD.days} days")
        async with pool.acquire() as conn:
            found = await desk_changes(conn, policies, policy_id, since, until, limit)
        filename = f"{policy_id}-audit-{since:%Y%m%d}-{until:%Y%m%d}.csv"
        return answer(found.changes, wants_csv(format, accept), filename, found.more)

    return router
