"""The analysts' reports as files: CSV tables and PNG charts (matplotlib, without a display).

- the compliance report (`sla.domain.compliance.Row` per month and priority): `compliance_csv`,
  `compliance_png`;
- the what-if report (`sla.domain.whatif.WhatIf`): `whatif_csv` (compliance now and under the
  alternative per month and priority), `changes_csv` (the requests whose verdict changes),
  `whatif_png` (compliance per month, one line per priority, now solid, alternative dashed).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed (or wanted) anywhere

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from sla.domain.clocks import ClockKind
from sla.domain.compliance import Row
from sla.domain.whatif import WhatIf

__all__ = [
    "COMPLIANCE_HEADER",
    "WHATIF_HEADER",
    "changes_csv",
    "compliance_csv",
    "compliance_lines",
    "compliance_png",
    "minutes",
    "whatif_csv",
    "whatif_png",
]

COMPLIANCE_HEADER = ["month", "priority", "requests", "response_kept_%", "resolution_kept_%"]
WHATIF_HEADER = [
    "month", "priority", "requests",
    "response_kept_%_now", "response_kept_%_alternative",
    "resolution_kept_%_now", "resolution_kept_%_alternative",
    "response_breached_now", "response_breached_alternative",
    "resolution_breached_now", "resolution_breached_alternative",
]  # fmt: skip
CHANGES_HEADER = [
    "key", "ticket_id", "desk", "priority", "created_at", "clock", "verdict_now",
    "verdict_alternative", "elapsed_min_now", "elapsed_min_alternative", "target_min_now",
    "target_min_alternative",
]  # fmt: skip
_PRIORITY_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def minutes(duration: timedelta | None) -> str:
    """Business minutes as the CSV files write them (empty for none)."""
    return "" if duration is None else f"{duration.total_seconds() / 60:.1f}"


def _percent(share: float) -> str:
    return f"{100 * share:.1f}"


def compliance_lines(rows: Sequence[Row]) -> list[list[str]]:
    """The compliance report's table (header first), as text cells."""
    return [COMPLIANCE_HEADER] + [
        [
            r.month,
            r.priority,
            str(r.requests),
            _percent(r.response_kept),
            _percent(r.resolution_kept),
        ]
        for r in rows
    ]


def compliance_csv(rows: Sequence[Row], path: Path) -> None:
    """The compliance report as CSV."""
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(compliance_lines(rows))


def whatif_csv(report: WhatIf, path: Path) -> None:
    """Compliance now and under the alternative, per month and priority, as CSV."""
    lines = [WHATIF_HEADER]
    for side in report.rows:
        now, alt = side.now, side.alternative
        lines.append(
            [
                side.month,
                side.priority,
                str(side.requests),
                _percent(now.response_kept),
                _percent(alt.response_kept),
                _percent(now.resolution_kept),
                _percent(alt.resolution_kept),
                str(now.response_breached),
                str(alt.response_breached),
                str(now.resolution_breached),
                str(alt.resolution_breached),
            ]
        )
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(lines)


def changes_csv(report: WhatIf, path: Path) -> None:
    """Every clock whose verdict changes under the alternative, as CSV."""
    lines = [CHANGES_HEADER]
    for change in report.changes:
        request, before, after = change.now, change.before, change.after
        lines.append(
            [
                request.key,
                request.ticket_id,
                request.desk,
                request.priority,
                request.created_at.isoformat(),
                change.clock.value,
                before.verdict.value,
                after.verdict.value,
                minutes(before.elapsed),
                minutes(after.elapsed),
                minutes(before.target),
                minutes(after.target),
            ]
        )
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(lines)


def _kept(row: Row, clock: ClockKind) -> float:
    """The share of the row's requests that kept `clock`, in %."""
    return 100 * (row.response_kept if clock is ClockKind.RESPONSE else row.resolution_kept)


def _priorities(names: set[str]) -> list[str]:
    return sorted(names, key=lambda p: (_PRIORITY_ORDER.get(p, 9), p))


def compliance_png(rows: Sequence[Row], path: Path, title: str = "SLA compliance") -> None:
    """Compliance per month, one line per priority, response and resolution side by side."""
    months = sorted({r.month for r in rows})
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for axis, clock in zip(axes, ClockKind, strict=True):
        for priority in _priorities({r.priority for r in rows}):
            kept = {r.month: _kept(r, clock) for r in rows if r.priority == priority}
            xs = [m for m in months if m in kept]
            axis.plot(xs, [kept[m] for m in xs], marker="o", label=priority)
        _dress(axis, f"{clock.value} kept")
    axes[0].legend(title="priority")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def whatif_png(report: WhatIf, path: Path, title: str = "What if") -> None:
    """Compliance per month and priority, now (solid) and under the alternative (dashed)."""
    months = sorted({r.month for r in report.rows})
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    priorities = _priorities({r.priority for r in report.rows})
    for axis, clock in zip(axes, ClockKind, strict=True):
        for index, priority in enumerate(priorities):
            colour = colours[index % len(colours)]
            sides = {r.month: r for r in report.rows if r.priority == priority}
            xs = [m for m in months if m in sides]
            for label, style in (("now", "-"), ("alternative", "--")):
                values = [
                    _kept(sides[m].now if label == "now" else sides[m].alternative, clock)
                    for m in xs
                ]
                axis.plot(
                    xs,
                    values,
                    linestyle=style,
                    marker="o" if style == "-" else "x",
                    color=colour,
                    label=f"{priority} ({label})",
                )
        difference = report.breach_difference(clock)
        _dress(axis, f"{clock.value} kept (breaches {difference:+d})")
    axes[0].legend(fontsize="small", ncol=2)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _dress(axis: Axes, title: str) -> None:
    """Titles, labels and the 0-100 % scale of one chart."""
    axis.set_title(title)
    axis.set_xlabel("month created")
    axis.set_ylabel("% of requests")
    axis.set_ylim(0, 102)
    axis.grid(alpha=0.3)
    axis.tick_params(axis="x", labelrotation=45)
