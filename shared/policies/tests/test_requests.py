"""The one fold's copy of a state (`evolve` changes a few fields of a frozen `Ticket`)."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime

import pytest

from desk_policies.loader import load_policies
from desk_policies.requests import Ticket, _changed

STATE = Ticket.blank(load_policies()["cloud-partner"], "t-1")


@pytest.mark.parametrize("name", [f.name for f in fields(Ticket)])
def test_a_changed_state_is_the_one_dataclasses_replace_gives(name: str) -> None:
    value = object()  # no field holds it: the change is seen wherever it lands
    assert _changed(STATE, {name: value}) == replace(STATE, **{name: value})
    assert getattr(_changed(STATE, {name: value}), name) is value


def test_several_changes_at_once_and_none_leave_the_rest_as_it_was() -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    changes = {"version": 3, "status": "in_progress", "updated_at": now}
    assert _changed(STATE, changes) == replace(STATE, **changes)
    assert _changed(STATE, {}) == STATE
