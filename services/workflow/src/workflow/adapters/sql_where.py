"""The WHERE clause of workflow's reads of its `tickets` read model (the lists, the search),
built from bound parameters only: a caller's value is never part of the SQL text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Where:
    """Conditions joined by AND, with the values of their parameters in order."""

    args: list[Any]
    clauses: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return " AND ".join(self.clauses)

    def add(self, clause: str, value: Any) -> str:
        """`clause` with `{}` standing for `value`'s parameter; returns the parameter."""
        self.args.append(value)
        parameter = f"${len(self.args)}"
        self.clauses.append(clause.format(parameter))
        return parameter

    def equal(self, column: str, value: str | None) -> None:
        """`column = value`, when a value is given."""
        if value is not None:
            self.add(f"{column} = {{}}", value)
