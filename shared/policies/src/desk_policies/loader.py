"""Reading policy files (YAML) at start-up, with errors that name the file, field and reason.

The three seed desks ship inside the package (`data/policies/*.yaml`); a deployment adds
desks by passing extra directories, so a fourth desk needs a file, not code.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from desk_policies.checks import PolicyIssue, policy_issues
from desk_policies.model import DeskPolicy

POLICIES_DIR = Path(__file__).parent / "data" / "policies"
SHIPPED = ("erp-vendor", "cloud-partner", "saas-desk")


class PolicyError(ValueError):
    """A policy that cannot be used. `issues` lists (field path, reason) pairs."""

    def __init__(self, source: str, issues: Iterable[PolicyIssue]) -> None:
        self.source = source
        self.issues = tuple(issues)
        lines = [f"{source}: invalid desk policy"]
        lines += [f"  {issue.path or '(top level)'}: {issue.reason}" for issue in self.issues]
        super().__init__("\n".join(lines))


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part.replace("from_", "from")
    return text


def parse_policy(
    data: Any,
    source: str = "<policy>",
    known_calendars: Collection[str] | None = None,
    known_events: Collection[str] | None = None,
) -> DeskPolicy:
    """Validate parsed data; raise PolicyError listing every problem with its field path."""
    if not isinstance(data, Mapping):
        raise PolicyError(source, [PolicyIssue("", f"expected a mapping, got {type(data)}")])
    try:
        policy = DeskPolicy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(
            source, [PolicyIssue(_path(e["loc"]), e["msg"]) for e in exc.errors()]
        ) from None
    issues = policy_issues(policy, known_calendars, known_events)
    if issues:
        raise PolicyError(source, issues)
    return policy


def load_policy(
    path: Path,
    known_calendars: Collection[str] | None = None,
    known_events: Collection[str] | None = None,
) -> DeskPolicy:
    """Read one policy file; its id must equal the file name without extension."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PolicyError(str(path), [PolicyIssue("", f"not valid YAML: {exc}")]) from None
    except OSError as exc:
        raise PolicyError(str(path), [PolicyIssue("", f"cannot read: {exc}")]) from None
    policy = parse_policy(data, str(path), known_calendars, known_events)
    if policy.id != path.stem:
        raise PolicyError(
            str(path), [PolicyIssue("id", f"{policy.id!r} differs from the file name")]
        )
    return policy


def load_policies(
    *directories: Path,
    include_shipped: bool = True,
    known_calendars: Collection[str] | None = None,
    known_events: Collection[str] | None = None,
) -> dict[str, DeskPolicy]:
    """All policies of the shipped folder (unless excluded) and of `directories`, by id."""
    folders = ([POLICIES_DIR] if include_shipped else []) + list(directories)
    found: dict[str, DeskPolicy] = {}
    for folder in folders:
        if not folder.is_dir():
            raise PolicyError(str(folder), [PolicyIssue("", "not a directory")])
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            policy = load_policy(path, known_calendars, known_events)
            if policy.id in found:
                raise PolicyError(str(path), [PolicyIssue("id", f"{policy.id!r} defined twice")])
            found[policy.id] = policy
    return found


@cache
def shipped_policy(policy_id: str) -> DeskPolicy:
    """One of the policies shipped with the product (read once, then cached)."""
    path = POLICIES_DIR / f"{policy_id}.yaml"
    if not path.is_file():
        raise KeyError(f"no shipped policy {policy_id!r} (shipped: {', '.join(SHIPPED)})")
    return load_policy(path)
