"""The dashboard's charts drawn on the server: images named by their title, every text escaped,
no inline style (the Content-Security-Policy allows none), the same figures the same bytes."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from portal.domain.charts import Bar, Share, bar_chart, compliance_chart, escaped, num

SVG = "{http://www.w3.org/2000/svg}"


def parsed(svg: str) -> ET.Element:
    """The chart as XML (it must be well formed)."""
    return ET.fromstring(svg)


def bars_of(svg: str) -> list[float]:
    return [float(r.get("width", "0")) for r in parsed(svg).iter(f"{SVG}rect")]


def test_a_bar_chart_is_an_image_named_by_its_title() -> None:
    svg = bar_chart("open-chart", "Open requests", [Bar("Open", 3, "3"), Bar("Waiting", 1, "1")])
    root = parsed(svg)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "open-chart-title"
    title = root.find(f"{SVG}title")
    assert title is not None and title.get("id") == "open-chart-title"
    assert title.text == "Open requests"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts == ["Open", "3", "Waiting", "1"]  # each label with its figure


def test_bars_are_scaled_to_the_largest_value() -> None:
    widths = bars_of(bar_chart("c", "t", [Bar("a", 4, "4"), Bar("b", 2, "2"), Bar("c", 0, "0")]))
    assert widths[0] > 0 and widths[1] == pytest.approx(widths[0] / 2, abs=0.1)
    assert widths[2] == 0
    assert bars_of(bar_chart("c", "t", [Bar("a", 0, "0")])) == [0]  # nothing counted: no bar
    assert bars_of(bar_chart("c", "t", [Bar("a", float("nan"), "?"), Bar("b", -3, "-3")])) == [
        0,
        0,
    ]


@pytest.mark.parametrize(
    "hostile", ["<script>alert(1)</script>", '" onload="x', "a & b", "x\x00\x07y", "\ud800z"]
)
def test_every_text_is_escaped(hostile: str) -> None:
    svg = bar_chart("c", hostile, [Bar(hostile, 1, hostile)])
    svg += compliance_chart("d", hostile, [Share(hostile, 0.5, hostile)], scale=(hostile,) * 3)
    for chart in (svg[: svg.index("</svg>") + 6], svg[svg.index("</svg>") + 6 :]):
        root = parsed(chart)  # well formed: nothing broke out of its text
        assert all(not k.startswith("on") for e in root.iter() for k in e.attrib)
    assert "<script" not in svg
    assert "\x00" not in svg and "\x07" not in svg


def test_no_inline_style_only_presentation_attributes() -> None:
    svg = bar_chart("c", "t", [Bar("a", 1, "1")]) + compliance_chart(
        "d", "t", [Share("a", 0.9, "90 %")]
    )
    assert "style" not in svg
    assert "fill=" in svg


def test_the_same_figures_give_the_same_bytes() -> None:
    bars = [Bar("Ouvert", 7, "7"), Bar("Qualifié", 2, "2")]
    assert bar_chart("c", "t", bars) == bar_chart("c", "t", list(bars))
    shares = [Share("Haute", 2 / 3, "66,7 %"), Share("Basse", None, "aucune requête")]
    assert compliance_chart("d", "t", shares) == compliance_chart("d", "t", shares)
    drawn = bar_chart("c", "t", [Bar("a", 1, "1"), Bar("b", 3, "3")])
    coordinates = re.findall(r' (?:x|y|width|height)="([^"]*)"', drawn)
    assert coordinates and all(re.fullmatch(r"-?[0-9]+(\.[0-9])?", c) for c in coordinates)


def test_a_compliance_bar_goes_from_0_to_100_percent_of_its_track() -> None:
    svg = compliance_chart(
        "d", "Kept", [Share("High", 0.5, "50 %"), Share("Low", 1.5, ">"), Share("None", None, "-")]
    )
    widths = bars_of(svg)
    track = widths[0]
    assert widths[1] == pytest.approx(track / 2, abs=0.1)  # High: half its track
    assert widths[3] == track  # more than 100 % is drawn as 100 %
    assert len(widths) == 5  # None has its track and no bar
    assert [t.text for t in parsed(svg).iter(f"{SVG}text")][-3:] == ["0 %", "50 %", "100 %"]


@pytest.mark.parametrize("bad", ["", "Chart", "a b", 'a"b', "x" * 65, "1abc"])
def test_a_chart_id_must_be_a_safe_name(bad: str) -> None:
    with pytest.raises(ValueError, match="chart id"):
        bar_chart(bad, "t", [])


def test_helpers() -> None:
    assert escaped('<a href="x">') == "&lt;a href=&quot;x&quot;&gt;"
    assert (num(1.0), num(2.25), num(-0.01)) == ("1", "2.2", "0")
