"""The UI's SVG charts: what they draw is what the numbers say."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from faultprint_collector.ui._svg import timeline

T = datetime(2030, 1, 1, tzinfo=UTC)


def _bar_xs(svg: str) -> list[float]:
    return [
        float(x)
        for x in re.findall(
            r'<rect x="([\d.]+)" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="[^"]+"><title>',
            svg,
        )
    ]


def test_the_timeline_axis_is_proportional_to_time() -> None:
    """Fifteen quiet hours take fifteen hours of the axis, not one slot: a spike
    after them must not look like the sparse background before it."""
    points = [(T, 1.0), (T + timedelta(hours=1), 1.0), (T + timedelta(hours=16), 9.0)]
    a, b, c = _bar_xs(timeline({"v1": points}, title="t"))
    # positions are written to a tenth of a pixel
    assert c - b == pytest.approx(15 * (b - a), abs=1.0)
    # the same chart, whether the quiet hours come as zeros or not at all
    zeros = [(T + timedelta(hours=h), 0.0) for h in range(2, 16)]
    assert timeline({"v1": points + zeros}, title="t") == timeline({"v1": points}, title="t")


def test_the_timeline_labels_hours_at_their_place() -> None:
    points = [(T, 1.0), (T + timedelta(hours=12), 2.0)]
    svg = timeline({"v1": points}, title="t")
    labels = re.findall(r">(\d\d-\d\d \d\d:\d\d)</text>", svg)
    assert labels[0] == "01-01 00:00"
    assert "01-01 12:00" in labels and len(labels) >= 6


def test_the_timeline_legend_fits_and_tells_every_series_apart() -> None:
    """Eight versions: every legend entry inside the chart, each with its own fill
    (the eighth reused the first's colour, the fifth on fell outside)."""
    series = {f"version-{k}": [(T, 3.0)] for k in range(8)}
    svg = timeline(series, title="t")
    width = float(re.search(r'<svg[^>]* width="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    height = float(re.search(r'<svg[^>]* height="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    legend = re.findall(
        r'<rect x="([\d.]+)" y="([\d.]+)" width="10" height="10" fill="([^"]+)"[^>]*/>'
        r'<text x="[\d.]+" y="[\d.]+"[^>]*>([^<]*)</text>',
        svg,
    )
    assert [label for *_, label in legend] == sorted(series)
    for x, y, _, label in legend:
        assert float(x) + 14 + 6 * len(label) <= width and float(y) + 10 <= height, label
    fills = [fill for _, _, fill, _ in legend]
    assert len(set(fills)) == 8
    # the bars use the legend's fills, and stay below the legend
    bars = re.findall(
        r'<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="[\d.]+" '
        r'fill="([^"]+)"><title>',
        svg,
    )
    assert {fill for _, fill in bars} == set(fills)
    assert min(float(y) for y, _ in bars) > max(float(y) + 10 for _, y, _, _ in legend)


def test_timeline_bars_stay_in_their_slot() -> None:
    """Many versions over a week of hours: no bar reaches into the next hour's slot."""
    hours = 24 * 7
    series = {
        f"v{k}": [(T + timedelta(hours=h), 1.0 + (h + k) % 5) for h in range(hours)]
        for k in range(8)
    }
    svg = timeline(series, title="t")
    left, plot_w = 48, 720 - 48 - 10
    slot = plot_w / hours
    bars = re.findall(
        r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)" height="[\d.]+" fill="[^"]+">'
        r"<title>\S+ (\d{4}-\d\d-\d\d \d\d:\d\d): ",
        svg,
    )
    assert len(bars) == hours * 8
    for x, w, when in bars:
        i = (datetime.fromisoformat(when).replace(tzinfo=UTC) - T) // timedelta(hours=1)
        start, end = left + i * slot, left + (i + 1) * slot
        assert start - 0.01 <= float(x) and float(x) + float(w) <= end + 0.01, (when, x, w)
