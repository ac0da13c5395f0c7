"""`sla.domain` stays pure: no infrastructure imports, no I/O modules, no reading of the clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sla.domain

DOMAIN = Path(sla.domain.__file__).parent
MODULES = sorted(DOMAIN.glob("*.py"))
FORBIDDEN_IMPORTS = {
    "asyncpg",
    "aiokafka",
    "faststream",
    "structlog",
    "desk_eventstore",
    "desk_platform",
    "os",
    "socket",
    "subprocess",
    "time",
    "logging",
}
CLOCK_READS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_the_sla_domain_imports_no_infrastructure(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    assert _imports(tree) & FORBIDDEN_IMPORTS == set()


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_the_sla_domain_never_reads_the_clock(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    calls = [
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    ]
    assert set(calls) & CLOCK_READS == set()


def test_the_purity_check_sees_every_domain_module() -> None:
    assert {p.name for p in MODULES} >= {"business_time.py", "clocks.py", "timers.py"}
