"""Upcasters: pure functions lifting a stored event payload from one schema version to the next."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

# (event_type, from_version) -> function returning the payload at from_version + 1
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    def wrap(fn: Upcaster) -> Upcaster:
        UPCASTERS[(event_type, from_version)] = fn
        return fn

    return wrap


def upcast(
    event_type: str, version: int, data: dict[str, Any], target_version: int
) -> dict[str, Any]:
    """Apply upcasters in order until the payload reaches `target_version`."""
    if version > target_version:
        raise ValueError(
            f"{event_type} v{version} is newer than this code understands (v{target_version})"
        )
    while version < target_version:
        step = UPCASTERS.get((event_type, version))
        if step is None:
            raise ValueError(f"no upcaster for {event_type} v{version} -> v{version + 1}")
        data = step(data)
        version += 1
    return data
