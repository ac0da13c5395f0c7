"""The edge's checks as pure functions: what they refuse, where they say it is, what a
refusal may quote."""

from __future__ import annotations

from typing import Any

import pytest

from desk_contracts.inputs import quoted
from desk_platform.edge import MAX_JSON_DEPTH, Refused, check_json, check_target, shorten


def where(body: bytes) -> list[object]:
    with pytest.raises(Refused) as refused:
        check_json(body)
    assert refused.value.status == 422
    detail = refused.value.detail
    assert isinstance(detail, list)
    loc: list[object] = detail[0]["loc"]
    return loc


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (b"NaN", ["body"]),
        (b'{"a": [1, {"b": -Infinity}]}', ["body", "a", 1, "b"]),
        (b'{"a": 1e400}', ["body", "a"]),
        (b'{"a": "x\\u0000"}', ["body", "a"]),
        (b'{"a": ["\\udc00"]}', ["body", "a", 0]),
        (b'{"\\ud800": 1}', ["body", "\\ud800"]),  # a bad key is named, escaped
        (b'{"a": "\xed\xa0\x80"}', ["body"]),  # a surrogate encoded in UTF-8 is not UTF-8
        (b'{"a": "\xff"}', ["body"]),
        (b'{"a": ', ["body"]),
        (b"[" * (MAX_JSON_DEPTH + 2) + b"]" * (MAX_JSON_DEPTH + 2), ["body"]),
        (b"[" * 100_000 + b"]" * 100_000, ["body"]),
        (b"1" * 5000, ["body"]),
    ],
)
def test_json_bodies_that_cannot_be_stored_are_refused_naming_where(
    body: bytes, loc: list[object]
) -> None:
    assert where(body) == loc


@pytest.mark.parametrize(
    "body",
    [b'{"a": "\\\\u0000 is text"}', '{"a": "é😀\\n\\t"}'.encode(), b"\xef\xbb\xbf{}", b"[1.5e300]"],
)
def test_ordinary_json_passes(body: bytes) -> None:
    check_json(body)


def scope(
    path: bytes, query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    return {"type": "http", "path": "/", "raw_path": path, "query_string": query,
            "headers": headers or []}  # fmt: skip


@pytest.mark.parametrize(
    ("target", "loc"),
    [
        (scope(b"/a/%00"), ["path"]),
        (scope(b"/a/%ED%A0%80"), ["path"]),
        (scope(b"/a/%ff"), ["path"]),
        (scope(b"/a/%0D%0A"), ["path"]),
        (scope(b"/a", b"q=%00"), ["query", "q"]),
        (scope(b"/a", b"ok=1&q=%C0%80"), ["query", "q"]),
        (scope(b"/a", b"%00=1"), ["query", "\\x00"]),
        (scope(b"/a", headers=[(b"authorization", b"a\x00")]), ["header", "authorization"]),
        (scope(b"/a", headers=[(b"x-actor-role", b"\xed\xa0\x80")]), ["header", "x-actor-role"]),
    ],
)
def test_targets_with_nul_or_invalid_text_are_refused(
    target: dict[str, object], loc: list[str]
) -> None:
    with pytest.raises(Refused) as refused:
        check_target(target)
    detail = refused.value.detail
    assert isinstance(detail, list) and detail[0]["loc"] == loc


def test_ordinary_targets_pass() -> None:
    check_target(scope(b"/requests/SUP-1%C3%A9", b"a=b+c&d=%C3%A9&e", [(b"x", "é\t".encode())]))


def test_quoted_input_is_short_and_escaped() -> None:
    assert quoted("x" * 10_000) == repr("x" * 80 + "…")
    assert quoted("a\x00\ud800") == repr("a\x00\ud800")
    assert shorten("a\r\nb\ud800") == "a\\r\\nb\\ud800"
    assert len(shorten("y" * 10_000, 60)) == 61
