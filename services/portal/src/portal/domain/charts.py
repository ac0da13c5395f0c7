"""Charts drawn on the server as SVG, for the console's dashboards (pure, deterministic).

Two kinds: a horizontal bar chart (a label, a bar, the figure printed beside it, one row each)
and a compliance chart (one 0-100 % bar per row, on a track with its scale). The page always
shows the same figures in a table beside the chart: the chart is an image of them.

Each chart is an `<svg role="img">` named by its `<title>` (`aria-labelledby`), so a screen
reader announces one image with its title and reads the figures in the table. The page's
Content-Security-Policy allows no inline style: the SVG uses presentation attributes only
(`fill`, `stroke`, `font-size`...), never a `style` attribute or element. Every text is escaped
(and characters XML cannot hold dropped); coordinates are printed with one decimal, so the same
figures always give the same bytes.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

CHART_ID = re.compile(r"[a-z][a-z0-9-]{0,63}")
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
INK = "#1f2933"  # text: contrast above 12:1 on white
BAR = "#2b6cb0"
TRACK = "#e2e8f0"
GRID = "#64748b"
ROW = 28  # height of one row
PAD = 8  # space above the first row and below the last
LABEL_CHARS = 28  # a longer label is shortened in the chart (the table says it whole)


def escaped(text: str) -> str:
    """`text` safe as SVG text or as an attribute's value: XML's special characters and quotes
    escaped, the characters XML cannot hold (controls, lone surrogates) dropped."""
    return html.escape(_NOT_XML.sub("", text), quote=True)


def shortened(text: str, limit: int = LABEL_CHARS) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def num(value: float) -> str:
    """A coordinate as the SVG gets it: one decimal, no trailing `.0`, never `-0`."""
    text = f"{value:.1f}".removesuffix(".0")
    return "0" if text == "-0" else text


def checked_id(chart_id: str) -> str:
    """`chart_id` when it may name an SVG element (and the ids made from it); else ValueError."""
    if not CHART_ID.fullmatch(chart_id):
        raise ValueError(f"a chart id is lower-case letters, digits and dashes: {chart_id!r}")
    return chart_id


def _finite(value: float) -> float:
    """`value`, or 0 for a negative or non-finite one (a bar cannot be drawn from it)."""
    return value if math.isfinite(value) and value > 0 else 0.0


def svg_open(
    chart_id: str,
    title: str,
    width: float,
    height: float,
    kind: str,
    left: float = 0,
    top: float = 0,
) -> str:
    """The opening of a chart's `<svg>` and its `<title>`: an image named by its title, of
    `width` by `height` from (`left`, `top`)."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{chart_id}" class="{kind}" role="img" '
        f'aria-labelledby="{chart_id}-title" '
        f'viewBox="{num(left)} {num(top)} {num(width)} {num(height)}" '
        f'width="{num(width)}" height="{num(height)}" font-family="{escaped(FONT)}" '
        f'font-size="13" fill="{INK}">'
        f'<title id="{chart_id}-title">{escaped(title)}</title>'
    )


@dataclass(frozen=True)
class Bar:
    """One row of a bar chart: what it counts, how many (0 or more), and the figure printed."""

    label: str
    value: float
    shown: str


@dataclass(frozen=True)
class Share:
    """One row of a compliance chart: what it measures, the share kept (0 to 1; None when
    there is nothing to measure: no bar) and the figure printed."""

    label: str
    kept: float | None
    shown: str


def _label(x: float, y: float, text: str) -> str:
    return (
        f'<text x="{num(x)}" y="{num(y)}" dy="0.35em" text-anchor="end">'
        f"{escaped(shortened(text))}</text>"
    )


def _figure(x: float, y: float, text: str) -> str:
    return f'<text x="{num(x)}" y="{num(y)}" dy="0.35em">{escaped(text)}</text>'


def bar_chart(
    chart_id: str,
    title: str,
    bars: Sequence[Bar],
    *,
    width: int = 560,
    label_width: int = 230,
) -> str:
    """A horizontal bar chart: each bar's label on the left, its bar scaled to the largest
    value, its figure beside it (see module). `chart_id` names the SVG element (its title is
    `<chart_id>-title`)."""
    chart_id = checked_id(chart_id)
    plot = width - label_width - 64  # room for the figure after the longest bar
    largest = max((_finite(b.value) for b in bars), default=0.0)
    height = 2 * PAD + ROW * max(len(bars), 1)
    parts = [svg_open(chart_id, title, width, height, "chart")]
    for i, bar in enumerate(bars):
        middle = PAD + ROW * i + ROW / 2
        length = plot * _finite(bar.value) / largest if largest else 0.0
        parts.append(
            f'<g class="bar">{_label(label_width - 8, middle, bar.label)}'
            f'<rect x="{num(label_width)}" y="{num(middle - ROW / 2 + 5)}" '
            f'width="{num(length)}" height="{num(ROW - 10)}" fill="{BAR}"/>'
            f"{_figure(label_width + length + 6, middle, bar.shown)}</g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def compliance_chart(
    chart_id: str,
    title: str,
    shares: Sequence[Share],
    *,
    scale: tuple[str, str, str] = ("0 %", "50 %", "100 %"),
    width: int = 560,
    label_width: int = 160,
) -> str:
    """One 0-100 % bar per row on a grey track, with the scale's marks (`scale`: the texts of
    0, 50 and 100 %) under the rows and each row's figure after the track (see module). The
    title is also written above the rows: a page shows several such charts side by side."""
    chart_id = checked_id(chart_id)
    plot = width - label_width - 130
    rows = max(len(shares), 1)
    head = 22  # the visible title
    bottom = head + PAD + ROW * rows
    height = bottom + 22
    parts = [
        svg_open(chart_id, title, width, height, "chart"),
        f'<text x="0" y="{num(head / 2 + 2)}" dy="0.35em" font-weight="bold">'
        f"{escaped(shortened(title, 80))}</text>",
    ]
    for i, share in enumerate(shares):
        middle = head + PAD + ROW * i + ROW / 2
        top = middle - ROW / 2 + 5
        kept = None if share.kept is None else min(_finite(share.kept), 1.0)
        bar = (
            ""
            if kept is None
            else f'<rect x="{num(label_width)}" y="{num(top)}" width="{num(plot * kept)}" '
            f'height="{num(ROW - 10)}" fill="{BAR}"/>'
        )
        parts.append(
            f'<g class="share">{_label(label_width - 8, middle, share.label)}'
            f'<rect x="{num(label_width)}" y="{num(top)}" width="{num(plot)}" '
            f'height="{num(ROW - 10)}" fill="{TRACK}"/>{bar}'
            f"{_figure(label_width + plot + 8, middle, shortened(share.shown, 18))}</g>"
        )
    for fraction, text in zip((0.0, 0.5, 1.0), scale, strict=True):
        x = label_width + plot * fraction
        anchor = "start" if fraction == 0 else "end" if fraction == 1 else "middle"
        parts.append(
            f'<line x1="{num(x)}" y1="{num(head + PAD)}" x2="{num(x)}" y2="{num(bottom + 2)}" '
            f'stroke="{GRID}" stroke-width="1" stroke-dasharray="3 3"/>'
            f'<text x="{num(x)}" y="{num(bottom + 14)}" font-size="11" '
            f'text-anchor="{anchor}">{escaped(text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
