"""The console search's form: what it accepts, what it refuses and why, and the links it makes."""

from __future__ import annotations

from typing import Any

import pytest

from portal.adapters.search import MAX_PAGE, SearchForm, choices, read_search, workflow_params

DESKS: dict[str, Any] = {
    "erp-vendor": {
        "statuses": [
            {"id": "open", "labels": {"fr": "Ouvert", "en": "Open"}},
            {"id": "in_progress", "labels": {"fr": "En cours", "en": "In progress"}},
        ],
        "priority_levels": [{"id": "low", "labels": {"fr": "Basse", "en": "Low"}}],
    },
    "cloud-partner": {
        "statuses": [
            {"id": "submitted", "labels": {"fr": "Soumise", "en": "Submitted"}},
            {"id": "in_progress", "labels": {"fr": "En cours", "en": "In progress"}},
        ],
        "priority_levels": [{"id": "critical", "labels": {"fr": "Bloquante", "en": "Blocking"}}],
    },
}


def test_a_whole_search_is_read_and_sent_to_workflow() -> None:
    form, errors = read_search(
        {
            "q": "  rapport  ", "desk": "erp-vendor", "status": "in_progress", "priority": "low",
            "organisation": "acme", "assignee": "Paul@Desk.example", "from": "2026-03-01",
            "to": "2026-03-31", "state": "open", "page": "3",
        },
        DESKS,
    )  # fmt: skip
    assert errors == {}
    assert form.q == "rapport" and form.page == 3
    sent = workflow_params(form, "Europe/Paris", "fr")
    assert sent["policy_id"] == "erp-vendor" and sent["assignee_id"] == "paul@desk.example"
    assert (sent["offset"], sent["limit"], sent["zone"]) == (50, 25, "Europe/Paris")
    assert sent["created_from"] == "2026-03-01" and sent["snippets"] == "true"


def test_an_empty_search_lists_every_request() -> None:
    form, errors = read_search({}, DESKS)
    assert errors == {} and form == SearchForm()
    sent = workflow_params(form, "UTC", "en")
    assert sent["q"] is None and sent["state"] == "all" and sent["snippets"] is None


@pytest.mark.parametrize(
    ("params", "field", "why"),
    [
        ({"q": "a\x00b"}, "q", "search.q_invalid"),
        ({"q": "x" * 201}, "q", "search.q_invalid"),
        ({"desk": "saas-desk"}, "desk", "search.desk_invalid"),
        ({"desk": "erp-vendor", "status": "submitted"}, "status", "search.status_invalid"),
        ({"status": "nowhere"}, "status", "search.status_invalid"),
        ({"desk": "cloud-partner", "priority": "low"}, "priority", "search.priority_invalid"),
        ({"organisation": "acme\x1b"}, "organisation", "search.organisation_invalid"),
        ({"assignee": "x" * 255}, "assignee", "search.assignee_invalid"),
        (
            {"assignee": "a@b.example", "unassigned": "1"},
            "assignee",
            "search.assignee_or_unassigned",
        ),
        ({"from": "2026-02-30"}, "created_from", "search.date_invalid"),
        ({"from": "1969-12-31"}, "created_from", "search.date_invalid"),
        ({"to": "\uff12\uff10\uff12\uff16-03-01"}, "created_to", "search.date_invalid"),  # wide
        ({"from": "2026-03-02", "to": "2026-03-01"}, "created_to", "search.dates_reversed"),
        ({"state": "both"}, "state", "search.state_invalid"),
    ],
)
def test_a_value_the_person_may_not_ask_for_is_refused_beside_its_field(
    params: dict[str, str], field: str, why: str
) -> None:
    _, errors = read_search(params, DESKS)
    assert errors == {field: why}


def test_what_is_typed_comes_back_without_control_characters_and_bounded() -> None:
    form, _ = read_search({"q": "a\x00b" + "c" * 1000, "page": "²"}, DESKS)
    assert form.q.startswith("ab") and len(form.q) == 300 and form.page == 1
    assert read_search({"page": "9999"}, DESKS)[0].page == MAX_PAGE


def test_statuses_are_the_chosen_desk_s_or_every_desk_s_once() -> None:
    assert [s for s, _ in choices(DESKS, "erp-vendor", "statuses")] == ["open", "in_progress"]
    assert [s for s, _ in choices(DESKS, "", "statuses")] == ["open", "in_progress", "submitted"]


def test_the_links_keep_the_search_and_change_the_page() -> None:
    form = SearchForm(q="rapport mensuel", desk="erp-vendor", unassigned=True, page=2)
    assert form.link(page=3) == (
        "/console/search?q=rapport+mensuel&desk=erp-vendor&unassigned=1&page=3"
    )
    assert form.link() == "/console/search?q=rapport+mensuel&desk=erp-vendor&unassigned=1"
