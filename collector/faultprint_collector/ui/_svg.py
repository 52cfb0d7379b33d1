"""Small server-side SVG charts for the built-in UI.

Rendered in Python so the UI works offline and needs no JavaScript library:
every chart is a self-contained ``<svg>`` string (text escaped, sizes fixed,
``role="img"`` with a title for screen readers). The shapes are the few the
pages need: a sparkline, rates with their intervals, paired bars (baseline
against candidate) and a per-version timeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

__all__ = [
    "PALETTE",
    "RateBar",
    "paired_bars",
    "rate_bars",
    "sparkline",
    "timeline",
]

#: colour per series, in order (colour-blind safe, after Tableau 10)
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#9d755d")
_TEXT = "#333"
_GRID = "#ddd"


def _svg(width: int, height: int, title: str, body: Sequence[str], css: str = "") -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {escape(css)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{_TEXT}" '
        f'text-anchor="{anchor}">{escape(text)}</text>'
    )


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sparkline(
    values: Sequence[float | None], *, title: str, width: int = 140, height: int = 32
) -> str:
    """A line over VALUES (None = no data), the last point marked."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    body = [f'<line x1="0" y1="{height - 1}" x2="{width}" y2="{height - 1}" stroke="{_GRID}"/>']
    if points:
        top = max(v for _, v in points) or 1.0
        step = (width - 6) / max(1, len(values) - 1)

        def xy(i: int, v: float) -> tuple[float, float]:
            return 3 + i * step, height - 3 - (height - 6) * (v / top)

        coords = [xy(i, v) for i, v in points]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            body.append(
                f'<polyline points="{path}" fill="none" stroke="{PALETTE[0]}" stroke-width="1.5"/>'
            )
        x, y = coords[-1]
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{PALETTE[1]}"/>')
    return _svg(width, height, title, body, "sparkline")


@dataclass(frozen=True)
class RateBar:
    """One bar of ``rate_bars``: a rate in [0, 1] and its interval."""

    label: str
    rate: float
    low: float
    high: float
    color: str = PALETTE[0]


def rate_bars(bars: Sequence[RateBar], *, title: str, width: int = 520) -> str:
    """Horizontal bars for rates, each with its interval drawn as a whisker."""
    label_w, row_h, pad = 220, 34, 24
    height = pad + row_h * len(bars) + 18
    plot_w = width - label_w - 60
    top = max([b.high for b in bars] + [1e-9]) * 1.1
    body = [_text(0, 14, title, size=12)]

    def x(v: float) -> float:
        return label_w + plot_w * (v / top)

    for tick in _ticks(top):
        body.append(
            f'<line x1="{x(tick):.1f}" y1="{pad}" x2="{x(tick):.1f}" '
            f'y2="{height - 18}" stroke="{_GRID}"/>'
        )
        body.append(
            _text(x(tick), height - 4, f"{tick:.0%}" if top > 0.05 else f"{tick:.1%}", "middle", 10)
        )
    for i, b in enumerate(bars):
        y = pad + i * row_h + 6
        body.append(_text(label_w - 8, y + 15, _short(b.label, 34), "end"))
        body.append(
            f'<rect x="{label_w}" y="{y}" width="{max(1.0, x(b.rate) - label_w):.1f}" '
            f'height="20" fill="{b.color}" opacity="0.85"/>'
        )
        mid = y + 10
        body.append(
            f'<line x1="{x(b.low):.1f}" y1="{mid}" x2="{x(b.high):.1f}" y2="{mid}" '
            f'stroke="{_TEXT}" stroke-width="1.5"/>'
        )
        for end in (b.low, b.high):
            body.append(
                f'<line x1="{x(end):.1f}" y1="{mid - 6}" x2="{x(end):.1f}" y2="{mid + 6}" '
                f'stroke="{_TEXT}" stroke-width="1.5"/>'
            )
        body.append(_text(x(b.high) + 6, y + 15, f"{b.rate:.2%}"))
    return _svg(width, height, title, body, "rates")


def _ticks(top: float) -> list[float]:
    for step in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0):
        if top / step <= 5:
            return [step * k for k in range(int(top / step) + 1)]
    return [0.0, top]


def paired_bars(
    rows: Sequence[tuple[str, float, float]],
    *,
    names: tuple[str, str],
    title: str,
    width: int = 640,
    as_share: bool = True,
) -> str:
    """Two bars per row (e.g. a mode's share of failures on baseline and candidate)."""
    label_w, row_h, pad = 250, 30, 40
    height = pad + row_h * max(1, len(rows)) + 8
    plot_w = width - label_w - 60
    top = max([max(a, b) for _, a, b in rows] + [1e-9])
    body = [_text(0, 14, title, size=12)]
    for k, name in enumerate(names):
        lx = label_w + k * 190
        body.append(f'<rect x="{lx}" y="22" width="10" height="10" fill="{PALETTE[k]}"/>')
        body.append(_text(lx + 14, 31, _short(name, 30), size=10))
    for i, (label, a, b) in enumerate(rows):
        y = pad + i * row_h
        body.append(_text(label_w - 8, y + 16, _short(label, 40), "end"))
        for k, value in enumerate((a, b)):
            w = plot_w * value / top
            body.append(
                f'<rect x="{label_w}" y="{y + 2 + k * 12}" width="{max(0.5, w):.1f}" '
                f'height="11" fill="{PALETTE[k]}"/>'
            )
            shown = f"{value:.0%}" if as_share else f"{value:,.0f}"
            body.append(_text(label_w + w + 4, y + 12 + k * 12, shown, size=9))
    if not rows:
        body.append(_text(label_w, pad + 16, "no failures in either version"))
    return _svg(width, height, title, body, "paired")


def _series_fill(k: int, prefix: str) -> tuple[str, str]:
    """The fill of series K and the ``<defs>`` entry it needs (empty for a colour).

    The palette's colours first; beyond them the same colours striped, each
    round of the palette at another angle, so no two series look alike.
    """
    color = PALETTE[k % len(PALETTE)]
    round_ = k // len(PALETTE)
    if round_ == 0:
        return color, ""
    pid = f"{prefix}{k}"
    angle = (45 + 50 * (round_ - 1)) % 180
    pattern = (
        f'<pattern id="{pid}" width="4" height="4" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate({angle})"><rect width="4" height="4" fill="#fff"/>'
        f'<rect width="2.2" height="4" fill="{color}"/></pattern>'
    )
    return f"url(#{pid})", pattern


def timeline(
    series: dict[str, list[tuple[datetime, float]]],
    *,
    title: str,
    width: int = 720,
    height: int = 200,
    step: timedelta = timedelta(hours=1),
) -> str:
    """Bars per time bucket of length STEP, one fill per series (e.g. failures per
    hour per version).

    The time axis is proportional: every bucket from the first to the last
    has its slot, so a quiet stretch between two bursts is as wide as it
    lasted, whether or not the series carry its buckets as zeros. Every bar
    stays within its bucket's slot: side by side while each gets two pixels,
    else stacked. The legend wraps into as many rows as the series need (the
    chart grows taller), each series with its own fill.
    """
    left, bottom, legend_w, legend_row = 48, 34, 190, 16
    buckets = sorted({t for points in series.values() for t, _ in points})
    names = sorted(series)
    per_row = max(1, (width - left) // legend_w)
    legend_rows = max(1, -(-len(names) // per_row))
    top_pad = 14 + legend_rows * legend_row
    height += (legend_rows - 1) * legend_row
    fills = [_series_fill(k, "tl-fill-") for k in range(len(names))]
    body = [_text(0, 14, title, size=12)]
    defs = "".join(d for _, d in fills)
    if defs:
        body.append(f"<defs>{defs}</defs>")
    for k, name in enumerate(names):
        lx = left + (k % per_row) * legend_w
        ly = 20 + (k // per_row) * legend_row
        body.append(
            f'<rect x="{lx}" y="{ly}" width="10" height="10" fill="{fills[k][0]}" '
            f'stroke="{PALETTE[k % len(PALETTE)]}" stroke-width="0.5"/>'
        )
        body.append(_text(lx + 14, ly + 9, _short(name, 26), size=10))
    if not buckets:
        body.append(_text(left, height / 2, "no data in this window"))
        return _svg(width, height, title, body, "timeline")
    first = buckets[0]
    slots = int((buckets[-1] - first) / step) + 1
    plot_h = height - bottom - top_pad - 8
    plot_w = width - left - 10
    slot = plot_w / slots
    side_by_side = slot * 0.8 / max(1, len(names)) >= 2.0
    if side_by_side:
        bar_w = min(40.0, slot * 0.8 / max(1, len(names)))
        peak = max(v for points in series.values() for _, v in points) or 1.0
    else:
        bar_w = slot * 0.8
        totals: dict[datetime, float] = {}
        for points in series.values():
            for t, v in points:
                totals[t] = totals.get(t, 0.0) + max(0.0, v)
        peak = max(totals.values()) or 1.0
    base = height - bottom
    body.append(f'<line x1="{left}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#999"/>')
    body.append(_text(left - 6, base - plot_h + 4, f"{peak:,.0f}", "end", 10))
    body.append(_text(left - 6, base, "0", "end", 10))
    stacked: dict[int, float] = {}
    for k, name in enumerate(names):
        for t, v in series[name]:
            if v <= 0:  # an empty bucket is the gap its slot leaves
                continue
            i = int((t - first) / step)
            h = plot_h * v / peak
            if side_by_side:
                x = left + i * slot + (slot - bar_w * len(names)) / 2 + k * bar_w
                y = base - h
            else:
                x = left + i * slot + (slot - bar_w) / 2
                y = base - stacked.get(i, 0.0) - h
                stacked[i] = stacked.get(i, 0.0) + h
            body.append(
                f'<rect x="{x:.2f}" y="{y:.1f}" width="{bar_w:.2f}" '
                f'height="{h:.1f}" fill="{fills[k][0]}">'
                f"<title>{escape(name)} {t:%Y-%m-%d %H:%M}: {v:,.0f}</title></rect>"
            )
    label_every = max(1, slots // 6)
    stamp = "%m-%d %H:%M" if step < timedelta(days=1) else "%Y-%m-%d"
    for i in range(0, slots, label_every):
        t = first + i * step
        body.append(_text(left + i * slot + slot / 2, base + 14, f"{t:{stamp}}", "middle", 10))
    return _svg(width, height, title, body, "timeline")
