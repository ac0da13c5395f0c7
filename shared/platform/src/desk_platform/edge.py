"""The edge every HTTP service stands behind: bounded, well-formed input before any handler.

`EdgeGuard` is a pure ASGI middleware that, before routing or parsing:

- refuses a path, query string or header value that is not UTF-8 text without control
  characters, percent-decoded first (NUL, `%ED%A0%80` (a lone surrogate), invalid bytes): 422
  naming where, as PostgreSQL cannot store NUL and no lone surrogate can be encoded;
- reads a JSON body (`application/json`, `application/*+json`) through the app's body limit
  (FastAPI's `max_body_size`: `DEFAULT_BODY_LIMIT`, or a route's own, e.g. the survey's small
  forms): a declared `Content-Length` above it is refused at once, a chunked body is counted
  while it is read and refused (413) as soon as it passes it, so no more than the limit is ever
  held in memory; other bodies pass through to the route, under its limit, unread;
- refuses a JSON body that is not UTF-8, not JSON, nested deeper than `MAX_JSON_DEPTH`, made
  of more than `MAX_JSON_VALUES` values, or holds a number that is not finite (`NaN`,
  `Infinity`, `1e99999`) or a text with NUL or a lone surrogate: 422 naming the JSON path,
  before FastAPI and pydantic see it; a JSON body still arriving `BODY_SECONDS` after it began
  gets 408.

Refusals never echo large input: `guard(app)` also installs handlers that answer pydantic's
validation errors without their `input`/`ctx` (messages shortened, at most `MAX_ERRORS`), and
an event the store refuses (`EventRefused`) with 413 (too large), 409 (its stream is full) or
422 (in the shape of every 422: a list of the fields at fault, here the body).
`desk_contracts.inputs.quoted(value)` is the one way a message quotes what was sent.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from desk_contracts.inputs import MAX_QUOTED
from desk_eventstore.store import EventRefused, EventTooLarge, StreamFull

DEFAULT_BODY_LIMIT = 1024 * 1024  # a JSON API's request; the largest valid request fits
MAX_JSON_DEPTH = 32
# values (texts, numbers, keys, ...) in one JSON body: the largest valid request has a few
# hundred; a megabyte of tiny values would cost the validators seconds of the event loop
MAX_JSON_VALUES = 10_000
BODY_SECONDS = 30.0  # a body still arriving after this long is refused (408): slow clients
MAX_ERRORS = 20  # validation errors listed in one refusal

# control characters other than TAB: never in a path, a query or a header value
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
# what no stored text may hold: NUL (PostgreSQL) and lone surrogates (not encodable)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# what a message must not carry as is: control characters and lone surrogates
_ESCAPED = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def shorten(text: str, limit: int = MAX_QUOTED) -> str:
    """`text` safe to echo: at most `limit` characters (then "…"), control characters and
    lone surrogates escaped (`\\x00`, `\\ud800`)."""
    text = text if len(text) <= limit else text[:limit] + "…"
    return _ESCAPED.sub(lambda found: repr(found.group())[1:-1], text)


def _part(item: object) -> str | int:
    return item if isinstance(item, int) else shorten(str(item), 60)


def refusal(loc: Iterable[object], msg: str, kind: str) -> dict[str, Any]:
    """One entry of a 422 `detail`, in FastAPI's shape; `loc` parts are shortened and escaped."""
    return {"loc": [_part(p) for p in loc], "msg": msg, "type": kind}


def validation_details(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """pydantic's errors as a refusal tells them: where, why and which kind, never the input
    (nor `ctx`, which may hold it); at most `MAX_ERRORS`, messages shortened."""
    return [
        refusal(e.get("loc", ()), shorten(str(e.get("msg", "")), 300), str(e.get("type", "")))
        for e in errors[:MAX_ERRORS]
    ]


class Refused(Exception):
    """A request the edge answers itself, without calling the service."""

    def __init__(self, status: int, detail: str | list[dict[str, Any]]) -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail


class ClientGone(Exception):
    """The client disconnected while its body was read: nothing to answer."""


def _text(raw: bytes, loc: tuple[str, ...], allow_control: bool = False) -> str:
    """`raw` as UTF-8 text without control characters, or Refused naming `loc`."""
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise Refused(422, [refusal(loc, "must be UTF-8 text", "invalid_text")]) from None
    if not allow_control and _CONTROL.search(text):
        reason = "must not hold control characters (NUL, line breaks...)"
        raise Refused(422, [refusal(loc, reason, "invalid_text")])
    return text


def check_target(scope: Scope) -> None:
    """Refused unless the path, the query string and every header value are clean text."""
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    _text(unquote_to_bytes(raw_path.split(b"?", 1)[0]), ("path",))
    _text(scope["path"].encode("utf-8", "surrogateescape"), ("path",))
    for pair in scope.get("query_string", b"").split(b"&"):
        name, _, value = pair.replace(b"+", b" ").partition(b"=")
        loc = ("query", unquote_to_bytes(name).decode("utf-8", "replace"))
        _text(unquote_to_bytes(name), loc)
        _text(unquote_to_bytes(value), loc)
    for name, value in scope.get("headers", ()):
        loc = ("header", name.decode("latin-1"))
        _text(value, loc)


def check_json(body: bytes) -> None:
    """Refused unless `body` is UTF-8 JSON whose numbers are finite and texts storable."""
    text = _text(body, ("body",), allow_control=True).removeprefix("\ufeff")
    try:
        value = json.loads(text)
    except RecursionError:
        value = None
        too_deep = True
    except ValueError as error:  # not JSON, or an integer of more than 4300 digits
        reason = f"not JSON: {shorten(str(error), 120)}"
        raise Refused(422, [refusal(("body",), reason, "json_invalid")]) from None
    else:
        too_deep = False
    stack: list[tuple[object, tuple[object, ...]]] = [(value, ("body",))]
    values = 0
    while stack and not too_deep:
        item, loc = stack.pop()
        values += 1
        if values > MAX_JSON_VALUES:
            reason = f"JSON of more than {MAX_JSON_VALUES} values"
            raise Refused(422, [refusal(("body",), reason, "json_invalid")])
        if len(loc) > MAX_JSON_DEPTH + 1:
            too_deep = True
        elif isinstance(item, str):
            _check_string(item, loc)
        elif isinstance(item, float) and not math.isfinite(item):
            reason = "must be a finite number (not NaN, Infinity or out of range)"
            raise Refused(422, [refusal(loc, reason, "finite_number")])
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_string(key, (*loc, key))
                stack.append((child, (*loc, key)))
        elif isinstance(item, list):
            stack.extend((child, (*loc, index)) for index, child in enumerate(item))
    if too_deep:
        reason = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
        raise Refused(422, [refusal(("body",), reason, "json_invalid")])


def _check_string(text: str, loc: tuple[object, ...]) -> None:
    found = _UNSTORABLE.search(text)
    if found:
        reason = (
            "must not contain a NUL character"
            if found.group() == "\x00"
            else "must be valid Unicode (no lone surrogate)"
        )
        raise Refused(422, [refusal(loc, reason, "invalid_text")])


def _is_json(scope: Scope) -> bool:
    """Whether FastAPI would read the body as JSON (no content type, or application/*json)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            kind: str = value.decode("latin-1").split(";", 1)[0].strip().lower()
            return kind == "application/json" or (
                kind.startswith("application/") and kind.endswith("+json")
            )
    return True


class EdgeGuard:
    """The ASGI middleware described in the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body: bytes | None = None
        try:
            check_target(scope)
            if _is_json(scope):
                body = await _read(receive)
                if body:
                    check_json(body)
        except Refused as refused:
            await JSONResponse({"detail": refused.detail}, refused.status)(scope, receive, send)
            return
        except ClientGone:
            return
        await self.app(scope, receive if body is None else _replay(body, receive), send)


async def _read(receive: Receive) -> bytes:
    """The whole body, read through the app's size limit (Starlette's counter, outside this
    middleware, refuses a declared or counted size above it with 413 as soon as it is passed),
    within `BODY_SECONDS`."""
    chunks: list[bytes] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BODY_SECONDS
    while True:
        try:
            message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
        except TimeoutError:
            reason = f"the body did not arrive within {BODY_SECONDS:g} s"
            raise Refused(408, [refusal(("body",), reason, "timeout")]) from None
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands over the body already read, then waits as the server's does."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _validation_refused(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return JSONResponse({"detail": validation_details(error.errors())}, 422)


async def _event_refused(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, EventRefused)
    if isinstance(error, EventTooLarge):
        return JSONResponse({"detail": str(error)}, 413)
    if isinstance(error, StreamFull):
        return JSONResponse({"detail": str(error)}, 409)
    return JSONResponse({"detail": [refusal(("body",), str(error), "event_refused")]}, 422)


def guard(app: FastAPI) -> None:
    """Put `app` behind the edge: the middleware and the refusal handlers above (the app is
    made with `max_body_size`, e.g. `DEFAULT_BODY_LIMIT`)."""
    app.add_middleware(EdgeGuard)
    app.add_exception_handler(RequestValidationError, _validation_refused)
    app.add_exception_handler(EventRefused, _event_refused)
