"""The style gate runs with the tests: ruff over the tree, mypy --strict over every package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_is_clean() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean_on_every_package() -> None:
    sources = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("*/*/src"))
    assert len(sources) == 9, sources
    result = run("mypy", *sources)
    assert result.returncode == 0, result.stdout + result.stderr
