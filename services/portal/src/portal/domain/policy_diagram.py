"""A desk's workflow drawn as an SVG diagram, for the console's policy page (pure,
deterministic): its statuses as boxes, its transitions as arrows labelled by their actions.

What is drawn comes from the desk as workflow describes it (`GET /desks`, read by its support
side; `diagram_of`):
- one box per status, filled by its category (open, waiting, closed: a legend names the fills),
  with its label and the lines the page adds (who is expected to act, the actions that keep the
  status);
- one arrow per pair of statuses (from -> to), labelled with every action that leads there, in
  the policy's order; an action whose transition keeps the status (`to: null`, e.g. `assign`)
  is listed in the box of each status it applies to instead of a loop; `escalate` (whose `to`
  is null) leads to the status of each escalation target the desk names; the reopening rule,
  when the desk allows it, is an arrow from each closed status to the status it reopens to.

Layout (`layout`): the statuses on an ellipse, clockwise from the top in the policy's order,
the closed ones last; arrows are gentle curves between the boxes' edges (the two directions of a
pair bend to opposite sides); each arrow's label goes at the first point along its curve, from
the middle outwards, where it covers no box and no other label (the least covered otherwise).
The page shows the same statuses and transitions in tables: the diagram is an image of them
(`role="img"` with its `<title>`), drawn with presentation attributes only (no inline style,
as the Content-Security-Policy requires) and escaped text (`portal.domain.charts`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from portal.domain.charts import checked_id, escaped, num, shortened, svg_open

REOPEN = "reopen"  # the action name the reopening rule's arrow is labelled with
ESCALATE = "escalate"
NODE_WIDTH = 220
LINE = 15  # height of one line of a box's text
LABEL_LINE = 13  # height of one line of an arrow's label
CHAR = 6.1  # the average width of a character of an arrow's label (11 px)
MARGIN = 24
FILLS = {  # category -> (fill, stroke)
    "open": ("#dbeafe", "#1e3a8a"),
    "waiting": ("#fef3c7", "#78350f"),
    "closed": ("#e5e7eb", "#1f2937"),
}
OTHER = ("#ffffff", "#1f2937")


@dataclass(frozen=True)
class StatusBox:
    """A status as drawn: its id, label, category and the lines under its label."""

    id: str
    label: str
    category: str
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Arrow:
    """The transitions from one status to another: their actions' names, in policy order."""

    source: str
    target: str
    actions: tuple[str, ...]


@dataclass
class Workflow:
    """A desk's statuses (in the policy's order), its arrows, and the actions that keep each
    status (`kept`: status id -> action names)."""

    statuses: list[Mapping[str, Any]]
    arrows: list[Arrow]
    kept: dict[str, list[str]] = field(default_factory=dict)


def workflow_of(desk: Mapping[str, Any]) -> Workflow:
    """The statuses, arrows and kept actions of a desk as workflow's `GET /desks` describes
    it (see module)."""
    statuses = [s for s in desk.get("statuses", ()) if isinstance(s, Mapping) and "id" in s]
    known = {str(s["id"]) for s in statuses}
    escalations = {str(v) for v in (desk.get("escalations") or {}).values() if str(v) in known}
    pairs: dict[tuple[str, str], list[str]] = {}
    kept: dict[str, list[str]] = {}

    def lead(source: str, target: str, action: str) -> None:
        if source not in known or target not in known:
            return
        if source == target:
            actions = kept.setdefault(source, [])
        else:
            actions = pairs.setdefault((source, target), [])
        if action not in actions:
            actions.append(action)

    for transition in desk.get("transitions", ()):
        action = str(transition.get("action", ""))
        target = transition.get("to")
        for source in transition.get("from", ()):
            source = str(source)
            if target is not None:
                lead(source, str(target), action)
            elif action == ESCALATE and escalations:
                for reached in sorted(escalations - {source}):
                    lead(source, reached, action)
            else:
                lead(source, source, action)
    reopen = desk.get("reopen") or {}
    if reopen.get("allowed") and reopen.get("to_status"):
        for status in statuses:
            if status.get("category") == "closed":
                lead(str(status["id"]), str(reopen["to_status"]), REOPEN)
    arrows = [Arrow(s, t, tuple(a)) for (s, t), a in pairs.items()]
    return Workflow(statuses, arrows, kept)


@dataclass(frozen=True)
class Box:
    """Where a status's box is: its centre and half sizes."""

    x: float
    y: float
    half_width: float
    half_height: float

    def near(self, other: Box, gap: float = 16.0) -> bool:
        """Do the two boxes come closer than `gap` (or overlap)?"""
        return (
            abs(self.x - other.x) < self.half_width + other.half_width + gap
            and abs(self.y - other.y) < self.half_height + other.half_height + gap
        )

    def edge_towards(self, x: float, y: float, gap: float = 3.0) -> tuple[float, float]:
        """The point of the box's edge (`gap` outside it) on the way from its centre to
        (x, y)."""
        dx, dy = x - self.x, y - self.y
        if dx == 0 and dy == 0:
            return self.x, self.y
        w, h = self.half_width + gap, self.half_height + gap
        t = min(w / abs(dx) if dx else math.inf, h / abs(dy) if dy else math.inf)
        return self.x + dx * t, self.y + dy * t


Rect = tuple[float, float, float, float]  # left, top, right, bottom


def overlap(a: Rect, b: Rect) -> float:
    """The area two rectangles share."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0


@dataclass(frozen=True)
class Curve:
    """An arrow's curve (a quadratic Bézier from `start` to `end` bent by `control`) and where
    its label goes (`label`: the rectangle it covers)."""

    arrow: Arrow
    start: tuple[float, float]
    control: tuple[float, float]
    end: tuple[float, float]
    label: Rect

    def point(self, t: float) -> tuple[float, float]:
        (x0, y0), (x1, y1), (x2, y2) = self.start, self.control, self.end
        a, b, c = (1 - t) ** 2, 2 * (1 - t) * t, t**2
        return a * x0 + b * x1 + c * x2, a * y0 + b * y1 + c * y2


@dataclass(frozen=True)
class Layout:
    """Where everything goes: the canvas (its size, from `left`, `top`), each status's box,
    each arrow's curve."""

    width: float
    height: float
    boxes: dict[str, Box]
    curves: list[Curve]
    left: float = 0.0  # where the canvas starts (below 0 when a label stands out left or up)
    top: float = 0.0


def drawing_order(statuses: Sequence[StatusBox]) -> list[StatusBox]:
    """The statuses in the policy's order, the closed ones last."""
    return sorted(statuses, key=lambda s: s.category == "closed")


LABEL_SPOTS = (0.5, 0.42, 0.58, 0.34, 0.66, 0.26, 0.74, 0.18, 0.82)  # along a curve
GROWTH = 1.08  # how much wider the ellipse gets when boxes or labels do not fit
TRIES = 8  # at most this many growths for the labels (then the least covered layout)


def _boxes(
    ordered: Sequence[StatusBox], rx: float, ry: float, half_height: float
) -> dict[str, Box]:
    """The statuses on an ellipse of radii `rx`, `ry`, clockwise from the top."""
    n = max(len(ordered), 1)
    cx, cy = MARGIN + NODE_WIDTH / 2 + rx, MARGIN + half_height + ry
    return {
        status.id: Box(
            cx + rx * math.cos(-math.pi / 2 + 2 * math.pi * i / n),
            cy + ry * math.sin(-math.pi / 2 + 2 * math.pi * i / n),
            NODE_WIDTH / 2,
            half_height,
        )
        for i, status in enumerate(ordered)
    }


def _curves(
    boxes: Mapping[str, Box], arrows: Sequence[Arrow], names: Callable[[str], str]
) -> tuple[list[Curve], float]:
    """Each arrow's curve and label (see module), and how much label area is covered in all
    (0: every label is clear of the boxes and of the other labels)."""
    taken: list[Rect] = [
        (b.x - b.half_width, b.y - b.half_height, b.x + b.half_width, b.y + b.half_height)
        for b in boxes.values()
    ]
    curves, covered_in_all = [], 0.0
    for arrow in arrows:
        source, target = boxes.get(arrow.source), boxes.get(arrow.target)
        if source is None or target is None or source is target:
            continue
        dx, dy = target.x - source.x, target.y - source.y
        length = math.hypot(dx, dy) or 1.0
        normal = (dy / length, -dx / length)  # to the left of the way from source to target
        bend = 0.12 * length  # the other direction of the pair bends the other way
        control = ((source.x + target.x) / 2 + normal[0] * bend,
                   (source.y + target.y) / 2 + normal[1] * bend)  # fmt: skip
        start = source.edge_towards(*control)
        end = target.edge_towards(*control, gap=4.0)
        half_w = (CHAR * max(len(shortened(names(a), 28)) for a in arrow.actions) + 10) / 2
        half_h = (LABEL_LINE * len(arrow.actions) + 4) / 2
        draft = Curve(arrow, start, control, end, (0, 0, 0, 0))
        best: tuple[float, Rect] | None = None
        for t in LABEL_SPOTS:
            x, y = draft.point(t)
            for side in (0.0, 1.0, -1.0):  # on the curve, then beside it
                shift = side * (half_h + 3)
                mx, my = x + normal[0] * shift, y + normal[1] * shift
                rect = (mx - half_w, my - half_h, mx + half_w, my + half_h)
                covered = sum(overlap(rect, other) for other in taken)
                if best is None or covered < best[0]:
                    best = (covered, rect)
            if best is not None and best[0] == 0:
                break
        assert best is not None
        covered_in_all += best[0]
        taken.append(best[1])
        curves.append(Curve(arrow, start, control, end, best[1]))
    return curves, covered_in_all


def layout(
    statuses: Sequence[StatusBox], arrows: Sequence[Arrow], names: Callable[[str], str] = str
) -> Layout:
    """Where each box, curve and label goes (see module; `names` gives the text of each
    action, which sizes the labels): the ellipse grows until no two boxes come close and every
    label finds a clear place (at most `TRIES` times for the labels). The same input, the same
    layout."""
    ordered = drawing_order(statuses)
    n = max(len(ordered), 1)
    lines = max((len(s.lines) for s in ordered), default=0)
    half_height = (LINE * (lines + 1) + 14) / 2
    rx, ry = max(250.0, 42.0 * n), max(190.0, 30.0 * n + LINE * lines)
    boxes = _boxes(ordered, rx, ry, half_height)
    while any(a.near(b) for a, b in combinations(boxes.values(), 2)):
        rx, ry = rx * GROWTH, ry * GROWTH
        boxes = _boxes(ordered, rx, ry, half_height)
    best: tuple[float, float, float, dict[str, Box], list[Curve]] | None = None
    for _ in range(TRIES + 1):
        curves, covered = _curves(boxes, arrows, names)
        if best is None or covered < best[0]:
            best = (covered, rx, ry, boxes, curves)
        if covered == 0:
            break
        rx, ry = rx * GROWTH, ry * GROWTH
        boxes = _boxes(ordered, rx, ry, half_height)
    assert best is not None
    _, rx, ry, boxes, curves = best
    left = min([0.0, *(c.label[0] - MARGIN for c in curves)])
    top = min([0.0, *(c.label[1] - MARGIN for c in curves)])
    right = max([2 * (MARGIN + NODE_WIDTH / 2 + rx), *(c.label[2] + MARGIN for c in curves)])
    bottom = max([2 * (MARGIN + half_height + ry), *(c.label[3] + MARGIN for c in curves)])
    return Layout(right - left, bottom - top, boxes, curves, left, top)  # labels out: room


def _marker(diagram_id: str, category: str) -> str:
    _, stroke = FILLS.get(category, OTHER)
    return (
        f'<marker id="{diagram_id}-head-{category}" viewBox="0 0 10 10" refX="9" refY="5" '
        f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        f'<path d="M0,0L10,5L0,10z" fill="{stroke}"/></marker>'
    )


def _box(status: StatusBox, box: Box) -> str:
    fill, stroke = FILLS.get(status.category, OTHER)
    left, top = box.x - box.half_width, box.y - box.half_height
    first = box.y - LINE * len(status.lines) / 2  # the lines centred in the box
    texts = [
        f'<text x="{num(box.x)}" y="{num(first)}" dy="0.35em" text-anchor="middle" '
        f'font-weight="bold">{escaped(shortened(status.label, 28))}</text>'
    ]
    for i, line in enumerate(status.lines, start=1):
        texts.append(
            f'<text x="{num(box.x)}" y="{num(first + LINE * i)}" dy="0.35em" '
            f'text-anchor="middle" font-size="11">{escaped(shortened(line, 34))}</text>'
        )
    return (
        f'<g class="status" data-status="{escaped(status.id)}" '
        f'data-category="{escaped(status.category)}">'
        f'<rect x="{num(left)}" y="{num(top)}" width="{num(2 * box.half_width)}" '
        f'height="{num(2 * box.half_height)}" rx="8" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="{"3" if status.category == "closed" else "1.5"}"/>{"".join(texts)}</g>'
    )


def _curve(diagram_id: str, curve: Curve, category: str) -> str:
    _, stroke = FILLS.get(category, OTHER)
    (x0, y0), (x1, y1), (x2, y2) = curve.start, curve.control, curve.end
    arrow = curve.arrow
    return (
        f'<path class="transition" data-from="{escaped(arrow.source)}" '
        f'data-to="{escaped(arrow.target)}" d="M{num(x0)},{num(y0)} Q{num(x1)},{num(y1)} '
        f'{num(x2)},{num(y2)}" fill="none" stroke="{stroke}" stroke-width="1.4" '
        f'marker-end="url(#{diagram_id}-head-{category if category in FILLS else "other"})"/>'
    )


def _label(curve: Curve, names: Callable[[str], str]) -> str:
    left, top, right, bottom = curve.label
    arrow = curve.arrow
    texts = "".join(
        f'<text x="{num((left + right) / 2)}" y="{num(top + 2 + LABEL_LINE * (i + 0.75))}" '
        f'text-anchor="middle" data-action="{escaped(action)}">'
        f"{escaped(shortened(names(action), 28))}</text>"
        for i, action in enumerate(arrow.actions)
    )
    return (
        f'<g class="transition-label" data-from="{escaped(arrow.source)}" '
        f'data-to="{escaped(arrow.target)}" font-size="11">'
        f'<rect x="{num(left)}" y="{num(top)}" width="{num(right - left)}" '
        f'height="{num(bottom - top)}" rx="3" fill="#ffffff" fill-opacity="0.92" '
        f'stroke="#cbd5e1" stroke-width="0.8"/>{texts}</g>'
    )


def diagram(
    diagram_id: str,
    title: str,
    statuses: Sequence[StatusBox],
    arrows: Sequence[Arrow],
    *,
    names: Callable[[str], str] = str,
    legend: Iterable[tuple[str, str]] = (),
) -> str:
    """The SVG of `statuses` and `arrows` (see module): `names` gives the text of an action,
    `legend` the text of each category's fill (category, text), drawn under the diagram."""
    diagram_id = checked_id(diagram_id)
    placed = layout(statuses, arrows, names)
    legend = list(legend)
    height = placed.height + (LINE + 16 if legend else 0)
    category = {s.id: s.category for s in statuses}
    parts = [
        svg_open(diagram_id, title, placed.width, height, "diagram", placed.left, placed.top),
        "<defs>",
        *(_marker(diagram_id, c) for c in (*FILLS, "other")),
        "</defs>",
        *(_curve(diagram_id, c, category[c.arrow.target]) for c in placed.curves),
        *(_box(s, placed.boxes[s.id]) for s in drawing_order(statuses)),
        *(_label(c, names) for c in placed.curves),
    ]
    x = placed.left + MARGIN
    for kind, text in legend:
        fill, stroke = FILLS.get(kind, OTHER)
        y = placed.top + placed.height + 4
        parts.append(
            f'<g class="legend"><rect x="{num(x)}" y="{num(y)}" width="16" height="12" '
            f'fill="{fill}" stroke="{stroke}"/><text x="{num(x + 22)}" y="{num(y + 6)}" '
            f'dy="0.35em" font-size="12">{escaped(text)}</text></g>'
        )
        x += 22 + CHAR * 1.1 * len(text) + 24
    parts.append("</svg>")
    return "".join(parts)
