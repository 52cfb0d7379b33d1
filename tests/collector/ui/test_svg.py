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
