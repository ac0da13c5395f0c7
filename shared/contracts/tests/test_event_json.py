"""Events read from their stored JSON text (`event_from_json`, a rebuild's way) are the events
read from their parsed data (`event_from_data`, every other reader's way), for every type."""

from __future__ import annotations

import importlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_contracts.base import EVENT_MODULES, EVENT_TYPES, event_from_data, event_from_json
from desk_contracts.tickets import CommentAdded

for module in EVENT_MODULES:
    importlib.import_module(module)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_an_event_read_from_its_json_text_is_the_one_read_from_its_data(
    event_type: str, data: st.DataObject
) -> None:
    cls = EVENT_TYPES[event_type]
    event = data.draw(st.from_type(cls))
    stored = event.model_dump(mode="json")
    text = json.dumps(stored, ensure_ascii=False)  # as PostgreSQL gives jsonb back: spaced
    from_text = event_from_json(event_type, cls.schema_version, text)
    assert from_text == event_from_data(event_type, cls.schema_version, stored) == event


def test_a_version_newer_than_the_code_is_refused_alike() -> None:
    text = '{"ticket_id": "t", "occurred_at": "2026-03-02T09:00:00Z"}'
    with pytest.raises(ValueError, match="newer than this code understands") as from_data:
        event_from_data("CommentAdded", CommentAdded.schema_version + 1, json.loads(text))
    with pytest.raises(ValueError, match="newer than this code understands") as from_text:
        event_from_json("CommentAdded", CommentAdded.schema_version + 1, text)
    assert str(from_text.value) == str(from_data.value)
