"""The pure core stays pure: no infrastructure imports and no clock reads in any `domain/`
package, in `desk_policies` or in `desk_contracts` (an AST walk, so it sees every file)."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_MODULES = frozenset({"asyncpg", "aiokafka", "faststream", "structlog"})
CLOCK_METHODS = frozenset({"now", "utcnow", "today"})  # on datetime / date
TIME_FUNCTIONS = frozenset(
    {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns",
     "localtime", "gmtime", "ctime", "asctime", "process_time"}
)  # fmt: skip


def pure_files(root: Path = ROOT) -> list[Path]:
    """Every Python file that must stay pure."""
    patterns = (
        "services/*/src/*/domain/**/*.py",
        "shared/policies/src/desk_policies/**/*.py",
        "shared/contracts/src/desk_contracts/**/*.py",
    )
    return sorted({p for pattern in patterns for p in root.glob(pattern)})


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _violations(tree: ast.AST) -> Iterator[tuple[int, str]]:
    time_aliases = {"time"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_MODULES:
                    yield node.lineno, f"imports {alias.name}"
                if alias.name == "time" and alias.asname:
                    time_aliases.add(alias.asname)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                yield node.lineno, f"imports from {node.module}"
            if node.module == "time":
                for alias in node.names:
                    if alias.name in TIME_FUNCTIONS:
                        yield node.lineno, f"imports the clock time.{alias.name}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner, method = _dotted(node.func.value), node.func.attr
            last = owner.rsplit(".", 1)[-1]
            if method in CLOCK_METHODS and last in {"datetime", "date"}:
                yield node.lineno, f"reads the clock with {owner}.{method}()"
            if method in TIME_FUNCTIONS and owner in time_aliases:
                yield node.lineno, f"reads the clock with {owner}.{method}()"


def find_violations(files: Iterable[Path]) -> list[str]:
    """`path:line: what` for every impure import or clock read."""
    found: list[str] = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found += [f"{path}:{line}: {what}" for line, what in _violations(tree)]
    return found


def test_the_pure_packages_are_found() -> None:
    names = {str(p.relative_to(ROOT)) for p in pure_files()}
    assert "services/workflow/src/workflow/domain/decide.py" in names
    assert "shared/policies/src/desk_policies/model.py" in names
    assert "shared/contracts/src/desk_contracts/tickets.py" in names


def test_domain_packages_import_no_infrastructure_and_never_read_the_clock() -> None:
    assert find_violations(pure_files()) == []


@pytest.mark.parametrize(
    "source",
    [
        "import asyncpg",
        "import aiokafka.producer",
        "from faststream.kafka import KafkaBroker",
        "import structlog as log",
        "from datetime import datetime\nx = datetime.now()",
        "import datetime\nx = datetime.datetime.utcnow()",
        "from datetime import date\nx = date.today()",
        "import time\nx = time.time()",
        "import time as t\nx = t.monotonic()",
        "from time import perf_counter",
    ],
)
def test_the_checker_catches_an_offending_file(tmp_path: Path, source: str) -> None:
    offending = tmp_path / "services" / "x" / "src" / "x" / "domain" / "bad.py"
    offending.parent.mkdir(parents=True)
    offending.write_text(source + "\n")
    assert pure_files(tmp_path) == [offending]
    assert len(find_violations([offending])) == 1


def test_the_checker_accepts_time_as_an_argument(tmp_path: Path) -> None:
    fine = tmp_path / "fine.py"
    fine.write_text(
        "from datetime import datetime, timedelta\n"
        "def due(now: datetime) -> datetime:\n"
        "    return now + timedelta(hours=4)\n"
    )
    assert find_violations([fine]) == []
