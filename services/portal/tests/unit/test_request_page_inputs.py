"""What a request list or page makes of hostile query and form values: digits that are not
ASCII, zero, a page beyond the bound and an ETag that is not workflow's fall back to the
defaults (never a 500, never a header httpx cannot send)."""

from __future__ import annotations

import pytest

from portal.adapters.request_pages import ETAG, PAGE, VERSION, list_choice


@pytest.mark.parametrize("page", ["²", "0", "0000", "-1", "١٢", "99999", "1e3", ""])
def test_a_page_number_is_ascii_digits_from_one(page: str) -> None:
    assert list_choice({"page": page}).page == 1


def test_a_page_number_is_read() -> None:
    assert list_choice({"page": "42"}).page == 42
    assert PAGE.fullmatch("9999") and not PAGE.fullmatch("10000")


@pytest.mark.parametrize("before", ["²", "0", "1" * 10, "x"])
def test_an_older_history_page_needs_a_version(before: str) -> None:
    assert not VERSION.fullmatch(before)


@pytest.mark.parametrize("etag", ["é", '"é"', "\n", '"1"\r\nX: y', "W/1", '"' + "9" * 11 + '"'])
def test_only_workflows_etag_is_sent_as_if_match(etag: str) -> None:
    assert not ETAG.fullmatch(etag)
    assert ETAG.fullmatch('"17"')
