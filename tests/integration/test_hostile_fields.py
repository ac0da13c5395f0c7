"""Property: every field of every operation of intake, workflow and sla, given a hostile value
(lone surrogates, NUL, huge strings, non-finite numbers, odd structures) while the rest of the
request is valid, gets an answer below 500, and a refusal that does not echo large input.

The fields come from each service's OpenAPI document (path, query, header parameters and JSON
body properties, one operation per workflow command, and the `Authorization` header of every
operation that needs a verified identity: the rest of the request carries a valid token).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from desk_servers import Served, submission
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from identity_support import bearer

pytestmark = pytest.mark.integration

EXAMPLES = 250  # per service
MAX_REFUSAL_BYTES = 16 * 1024

TEXTS = [
    "\ud800",
    "a\udfffb",
    "\x00",
    "a\x00b",
    "\\u0000",
    "x" * 900_000,  # under the body limit, far over every field's
    "é" * 120_000,
    "😀" * 200_000,
    "\r\nBcc: evil@evil.example",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "Anne <anne@acme.example>",
    "",
    " ",
    "\u202e\ufeff\u200b",
]
RAW_BYTES = [b"\xff", b"\xed\xa0\x80", b"\xc0\x80", b"%", b"x" * 4000]


class Raw(str):
    """A JSON literal written as is (what json.dumps cannot make, e.g. 1e99999)."""


NUMBERS: list[Any] = [
    float("nan"),
    float("inf"),
    float("-inf"),
    Raw("1e99999"),
    Raw("-1e99999"),
    Raw("1" * 5000),
    -1,
    2**64,
    1e308,
]
STRUCTURES: list[Any] = [None, True, [], {}, ["\ud800"], {"\ud800": 1}, {"a\x00": "b"}]
DEEP = Raw("[" * 5000 + "]" * 5000)

VALID: dict[str, str] = {
    "policy_id": "saas-desk",
    "organisation_id": "acme",
    "state": "open",
    "limit": "10",
    "x-actor-role": "agent",
    "idempotency-key": "k-1",
}
# staff of every desk (the known request's included): whom the valid token of each service names
STAFF = {"erp-vendor": ["service_desk"], "cloud-partner": ["agent"], "saas-desk": ["agent"]}
SUBMISSION = submission(participants=["bob@acme.example"])


@dataclass(frozen=True)
class Operation:
    """One operation and the fields a client fills in: (where, name) pairs."""

    method: str
    path: str
    fields: tuple[tuple[str, str], ...]
    body: dict[str, Any] | None = None
    path_values: dict[str, str] = field(default_factory=dict)


def _sample(name: str, schema: dict[str, Any]) -> Any:
    """A valid value for a command field."""
    kinds = [schema, *schema.get("anyOf", [])]
    if any(k.get("format") == "email" for k in kinds):
        return "carla@acme.example"
    if any(k.get("format") == "date-time" for k in kinds):
        return "2026-03-03T10:00:00Z"
    if any(k.get("type") == "integer" for k in kinds):
        return 4
    if any(k.get("type") == "boolean" for k in kinds):
        return True
    return {"priority": "high", "target": "level2", "resolution_code": "fixed"}.get(name, "ok")


def _body_schema(content: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """The object schema of a JSON body (a `$ref`, or one in `anyOf` when it may be left out)."""
    refs = [content["schema"], *content["schema"].get("anyOf", [])]
    ref = next((r["$ref"] for r in refs if "$ref" in r), "")
    found: dict[str, Any] = components.get(ref.rsplit("/", 1)[-1], {})
    return found


def operations(served: Served) -> list[Operation]:
    document = httpx.get(f"{served.url}/openapi.json").json()
    components = document.get("components", {}).get("schemas", {})
    found: list[Operation] = []
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            params = tuple((p["in"], p["name"]) for p in spec.get("parameters", []))
            if spec.get("security"):  # a verified identity: its header may be hostile too
                params += (("header", "authorization"),)
            values = {"ticket": served.ticket or "SUP-1", "ticket_id": "x", "token": "x",
                      "policy_id": "saas-desk"}  # fmt: skip
            content = spec.get("requestBody", {}).get("content", {}).get("application/json")
            body = None
            if content:
                props = _body_schema(content, components).get("properties", {})
                body = {
                    n: SUBMISSION[n] if n in SUBMISSION else _sample(n, s) for n, s in props.items()
                }
                params += tuple(("body", n) for n in body)
            if params:
                found.append(Operation(method, path, params, body, values))
    return found


def _encoded(value: str | bytes) -> str:
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return quote(raw, safe="")


def _json(body: Any) -> bytes:
    raws: list[str] = []

    def mark(value: Any) -> Any:
        if isinstance(value, Raw):
            raws.append(str(value))
            return f"__raw_{len(raws) - 1}__"
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    text = json.dumps(mark(body))  # ASCII: a lone surrogate goes as the escape "\ud800"
    for n, raw in enumerate(raws):
        text = text.replace(f'"__raw_{n}__"', raw)
    return text.encode()


@st.composite
def hostile_requests(draw: st.DrawFn, ops: list[Operation]) -> tuple[Operation, str, str, Any]:
    op = draw(st.sampled_from(ops))
    where, name = draw(st.sampled_from(op.fields))
    if where == "body":
        value = draw(st.sampled_from([*TEXTS, *NUMBERS, *STRUCTURES, DEEP]))
    elif where == "header":  # what a client can put on the wire (the server refuses the rest)
        sendable = [t[:4000].strip() for t in TEXTS if not any(c in t for c in "\x00\r\n")]
        value = draw(st.sampled_from([t for t in sendable if t]))
    else:
        value = draw(st.sampled_from([*(t[:1000] for t in TEXTS), *RAW_BYTES]))
    return op, where, name, value


def send(
    client: httpx.Client,
    op: Operation,
    where: str,
    name: str,
    value: Any,
    valid: dict[str, str],
) -> httpx.Response:
    path_values = dict(op.path_values)
    query = {n: valid[n] for w, n in op.fields if w == "query" and n in valid}
    headers: dict[str, str | bytes] = {
        n: valid[n] for w, n in op.fields if w == "header" and n in valid
    }
    body = dict(op.body) if op.body is not None else None
    if where == "path":
        path_values[name] = value
    elif where == "query":
        query[name] = value
    elif where == "header":
        headers[name] = value.encode("utf-8", "surrogatepass")
    else:
        assert body is not None
        body[name] = [value] if name == "participants" else value
    url = op.path.format(**{k: _encoded(v) for k, v in path_values.items()})
    if query:
        url += "?" + "&".join(f"{_encoded(k)}={_encoded(v)}" for k, v in query.items())
    content = None if body is None else _json(body)
    if content is not None:
        headers["content-type"] = "application/json"
    return client.request(op.method.upper(), url, content=content, headers=headers)


def no_server_error(served: Served, service: str) -> None:
    ops = operations(served)
    assert ops
    signed = bearer("paul@desk.example", audience=service, roles=STAFF)["Authorization"]
    valid = {**VALID, "authorization": signed}
    with httpx.Client(base_url=served.url, timeout=30) as client:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(hostile_requests(ops))
        def check(request: tuple[Operation, str, str, Any]) -> None:
            op, where, name, value = request
            answer = send(client, op, where, name, value, valid)
            assert answer.status_code < 500, (op.method, op.path, where, name, answer.text[:300])
            if answer.status_code >= 400:
                assert len(answer.content) < MAX_REFUSAL_BYTES, (op.path, where, name)

        check()


def test_no_field_of_intake_can_cause_a_server_error(intake_server: Served) -> None:
    no_server_error(intake_server, "intake")


def test_no_field_of_workflow_can_cause_a_server_error(workflow_server: Served) -> None:
    no_server_error(workflow_server, "workflow")


def test_no_field_of_sla_can_cause_a_server_error(sla_server: Served) -> None:
    no_server_error(sla_server, "sla")
