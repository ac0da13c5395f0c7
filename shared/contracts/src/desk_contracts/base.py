"""Base class and registry for event payloads: every event has a type name and a schema version."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class Event(BaseModel):
    """A fact that happened to a ticket. Payloads are JSON; time is carried, never read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1

    ticket_id: str
    occurred_at: datetime


EVENT_TYPES: dict[str, type[Event]] = {}


def register(cls: type[Event]) -> type[Event]:
    """Class decorator: make an event type known to `event_from_data` and `event_from_json`."""
    if cls.event_type in EVENT_TYPES:
        raise ValueError(f"event type {cls.event_type!r} registered twice")
    EVENT_TYPES[cls.event_type] = cls
    return cls


class UnknownEventType(ValueError):
    """Raised when a stored or received event names a type no contract knows."""


# modules whose events are registered on import; loaded before the first look-up
EVENT_MODULES = (
    "desk_contracts.tickets",
    "desk_contracts.sla",
    "desk_contracts.requests",
    "desk_contracts.mail",
)


def _load_event_modules() -> None:
    import importlib

    for name in EVENT_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise


def event_class(event_type: str) -> type[Event]:
    if event_type not in EVENT_TYPES:
        _load_event_modules()
    try:
        return EVENT_TYPES[event_type]
    except KeyError:
        raise UnknownEventType(f"unknown event type {event_type!r}") from None


def event_from_data(event_type: str, schema_version: int, data: dict[str, Any]) -> Event:
    """Build the current version of an event from stored data, lifting old versions first."""
    from desk_contracts.upcasting import upcast

    cls = event_class(event_type)
    current = upcast(event_type, schema_version, data, cls.schema_version)
    return cls.model_validate(current)


def event_from_json(event_type: str, schema_version: int, text: str | bytes) -> Event:
    """`event_from_data` from the stored JSON text: parsed and validated in one step (pydantic's
    JSON mode, without a dict in between) when it is at the current version, lifted from its
    parsed dict first otherwise. For readers of many events (a rebuild)."""
    cls = event_class(event_type)
    if schema_version == cls.schema_version:
        return cls.model_validate_json(text)
    return event_from_data(event_type, schema_version, json.loads(text))
