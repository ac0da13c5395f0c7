"""JSON Schemas of every contract, exported as files, and the compatibility rule they obey.

    uv run python -m desk_contracts.schemas            # (re)write shared/contracts/schemas/
    uv run python -m desk_contracts.schemas --check    # exit 1 on an incompatible change

A published version of an event may only gain optional fields. Anything else (a field removed,
renamed, made required, or its type changed) needs a new `schema_version` and an upcaster
from the old one; the old version's schema file stays, so stored events remain readable.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from desk_contracts.base import EVENT_TYPES, _load_event_modules
from desk_contracts.state import RequestState

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def current_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, for every registered event type at its current version and
    the request state workflow publishes with each ticket event."""
    _load_event_modules()
    schemas = {
        f"{name}.v{cls.schema_version}.json": {
            "$id": f"urn:desk:schema:{name}:v{cls.schema_version}",
            **cls.model_json_schema(mode="serialization"),
        }
        for name, cls in sorted(EVENT_TYPES.items())
    }
    state = f"{RequestState.schema_name}.v{RequestState.schema_version}.json"
    schemas[state] = {
        "$id": RequestState.urn(),
        **RequestState.model_json_schema(mode="serialization"),
    }
    return schemas


def incompatibilities(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why `new` cannot replace `old` under the same version (empty when it can)."""
    problems = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name, spec in old_props.items():
        if name not in new_props:
            problems.append(f"field {name!r} removed")
        elif _shape(spec) != _shape(new_props[name]):
            problems.append(f"field {name!r} changed type")
    for name in set(new.get("required", [])) - set(old.get("required", [])):
        problems.append(f"field {name!r} is now required")
    if old.get("$defs") and _shape(old["$defs"]) != _shape(
        {k: v for k, v in new.get("$defs", {}).items() if k in old["$defs"]}
    ):
        problems.append("a nested definition changed")
    return problems


def _shape(spec: Any) -> Any:
    """A schema without its prose (titles, descriptions, defaults), for comparison."""
    if isinstance(spec, dict):
        return {
            k: _shape(v) for k, v in spec.items() if k not in ("title", "description", "default")
        }
    if isinstance(spec, list):
        return [_shape(v) for v in spec]
    return spec


def check(directory: Path = SCHEMA_DIR, *, new_ok: bool = False) -> list[str]:
    problems = []
    for name, schema in current_schemas().items():
        path = directory / name
        if not path.exists():
            if not new_ok:
                problems.append(f"{name}: not exported (run python -m desk_contracts.schemas)")
            continue
        for problem in incompatibilities(json.loads(path.read_text()), schema):
            problems.append(f"{name}: {problem}: bump schema_version and add an upcaster")
    return problems


def export(directory: Path = SCHEMA_DIR) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in current_schemas().items():
        text = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        path = directory / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(name)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if args.check:
        problems = check()
        print("\n".join(problems) or "schemas compatible")
        sys.exit(1 if problems else 0)
    problems = check(new_ok=True)
    if problems:
        print("refusing to overwrite incompatible schemas:\n" + "\n".join(problems))
        sys.exit(1)
    print("written: " + (", ".join(export()) or "nothing changed"))


if __name__ == "__main__":
    main()
