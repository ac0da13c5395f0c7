"""Make the `workflow_story` helper importable (pytest runs with --import-mode=importlib)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


@pytest.fixture
def desk() -> Callable[[str], object]:
    """A factory of `workflow_story.Desk` for a policy id."""
    from workflow_story import Desk

    return Desk
