"""Where a person lands after sign-in: only a page of this site, never another site (an open
redirect), whatever the `next` parameter says."""

from __future__ import annotations

import pytest

from portal.adapters.web import MAX_NEXT, local_path


@pytest.mark.parametrize(
    "target",
    ["/", "/requests/PRB-1001", "/requests?status=open&page=2", "/profile#time-zone",
     "/requests/%2F%2Fevil.example", "/a:b", "/é"],
)  # fmt: skip
def test_a_page_of_this_site_is_kept(target: str) -> None:
    assert local_path(target) == target


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "//evil.example",
        "//evil.example/requests",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https://evil.example/",
        "http:/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "requests",
        "/\t/evil.example",
        "/\n/evil.example",
        "/ /evil.example",
        "/requests\x00",
        "/\ud800",
        " /requests",
        "/" + "a" * MAX_NEXT,
    ],
)
def test_anything_else_lands_on_the_home_page(target: str | None) -> None:
    assert local_path(target) == "/"
