"""Inline SVG charts drawn on the server: no script, nothing fetched."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from markupsafe import Markup, escape


def line_chart(points: Sequence[tuple[date, float, int]], *, label: str, low: float = 0, high: float = 100,
               unit: str = "", width: int = 560, height: int = 200) -> Markup:
    """A line per week with dots, the y axis from ``low`` to ``high``; each dot titled with its value."""
    left, right, top, bottom = 40, 12, 12, 28
    w, h = width - left - right, height - top - bottom
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">']
    for i in range(5):
        v = low + (high - low) * i / 4
        y = top + h - h * i / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{v:g}{escape(unit)}</text>')
    if points:
        step = w / max(1, len(points) - 1)
        xy = []
        for i, (week, value, n) in enumerate(points):
            x = left + (step * i if len(points) > 1 else w / 2)
            y = top + h - h * (min(max(value, low), high) - low) / ((high - low) or 1)
            xy.append((x, y, week, value, n))
        parts.append('<polyline class="line" points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y, *_ in xy) + '"/>')
        every = max(1, len(xy) // 8)
        for i, (x, y, week, value, n) in enumerate(xy):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" class="dot"><title>{week:%d.%m.%Y}: '
                         f'{value:.0f}{escape(unit)} ({n})</title></circle>')
            if i % every == 0 or i == len(xy) - 1:
                anchor = "end" if i == len(xy) - 1 and len(xy) > 1 else "start" if i == 0 and len(xy) > 1 else "middle"
                parts.append(f'<text x="{x:.1f}" y="{height - 8}" text-anchor="{anchor}" class="axis">{week:%d.%m}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def share_colour(share: float | None) -> str:
    """Red (0%) through amber to green (100%); grey when there is nothing to show."""
    if share is None:
        return "#e5e7eb"
    return f"hsl({share * 120:.0f}, 70%, {82 - 20 * abs(share - 0.5):.0f}%)"
