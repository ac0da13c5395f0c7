"""Contract schemas: every event's JSON Schema is exported, and changes stay compatible."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from desk_contracts.schemas import check, incompatibilities
from desk_contracts.upcasting import UPCASTERS, upcast


def schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(mode="serialization")


class V1(BaseModel):
    ticket_id: str
    priority: str
    reason: str | None = None


def test_every_contract_is_exported_and_compatible_with_its_published_schema() -> None:
    assert check() == []


def test_an_added_optional_field_is_compatible() -> None:
    class Later(V1):
        channel: str = "portal"

    assert incompatibilities(schema(V1), schema(Later)) == []


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"ticket_id": (str, ...)}, "field 'priority' removed"),
        ({"ticket_id": (str, ...), "priority": (int, ...)}, "field 'priority' changed type"),
        (
            {"ticket_id": (str, ...), "priority": (str, ...), "reason": (str, ...)},
            "field 'reason' is now required",
        ),
    ],
)
def test_incompatible_changes_are_named(fields: dict[str, Any], problem: str) -> None:
    from pydantic import create_model

    changed = create_model("V1", **fields)
    assert problem in incompatibilities(schema(V1), schema(changed))


def test_old_versions_are_lifted_by_upcasters_in_order() -> None:
    UPCASTERS[("Example", 1)] = lambda d: {
        "ticket_id": d["ticket_id"],
        "priority": d["criticality"],
    }
    UPCASTERS[("Example", 2)] = lambda d: {**d, "reason": None}
    try:
        lifted = upcast("Example", 1, {"ticket_id": "t", "criticality": "high"}, 3)
    finally:
        del UPCASTERS[("Example", 1)], UPCASTERS[("Example", 2)]
    assert lifted == {"ticket_id": "t", "priority": "high", "reason": None}
    with pytest.raises(ValueError, match="no upcaster for Example v1"):
        upcast("Example", 1, {}, 2)
    with pytest.raises(ValueError, match="newer than this code understands"):
        upcast("Example", 3, {}, 2)
