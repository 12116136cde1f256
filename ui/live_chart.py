"""The loss chart of a running job, as a few lines of inline SVG.

A Plotly chart is re-mounted in the browser whenever its data change: about 0.45 s of CPU per
redraw per watching tab. On a 2-core machine every second of it is taken from the training that
the chart shows: one tab watching a demo run used 9.4 % of a core with the Plotly chart, 4.9 %
without it (benchmarks/app_vs_library.py measures the effect on training). Four polylines in an
SVG cost the browser next to nothing, so the live chart can follow every progress update; a
finished run's curves (Inspect page, report) stay interactive Plotly figures.
"""

from __future__ import annotations

import base64
import html
import math

from ui import charts
from ui.i18n import t

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 10, 34  # room for the tick labels


def loss_chart_html(history: list[dict], beta_v: float, beta_t: float, *, lang: str | None = None) -> str:
    """A legend and a picture of the loss and its weighted terms over the steps of `history`
    ("" until there are two steps); the legend names only the lines that can be seen. The SVG goes
    in as an image: st.html's sanitiser keeps HTML only, and an image of it is all a live chart needs."""
    series, hidden = visible_series(charts.loss_series(history, beta_v, beta_t, lang=lang))
    svg = loss_chart_svg(series)
    if not svg:
        return ""
    legend = "".join(f'<span style="margin-right:14px;white-space:nowrap"><span style="display:inline-block;'
                     f'width:14px;height:3px;background:{line.colour};vertical-align:middle;margin-right:5px">'
                     f'</span>{html.escape(line.name)}</span>' for line in series)
    if hidden:  # on a line of its own, wrapping in a narrow column
        legend += (f'<div style="color:#808495">'
                   f'{html.escape(t("chart.hidden_lines", lang=lang, names=", ".join(h.name for h in hidden)))}</div>')
    picture = base64.b64encode(svg.encode()).decode()
    return (f'<div style="font-size:12px;color:#31333f">{legend}</div>'
            f'<img src="data:image/svg+xml;base64,{picture}" style="width:100%" '
            f'alt="{html.escape(t("chart.loss", lang=lang))}">')


# A line that never lies further than this share of the chart's height from a line already drawn
# would be hidden under it (3 pixels of the plot's 176): it is left out, and the legend says so.
HIDDEN_SHARE = 3 / (HEIGHT - TOP - BOTTOM)


def visible_series(series: list[charts.LossSeries]) -> tuple[list[charts.LossSeries], list[charts.LossSeries]]:
    """(the lines to draw, the lines that would lie under them), in `series` order, leaving out
    lines without a value: with the
    recipe's betas the weighted dispersion terms are about 1% of the total, so the total covers
    the cross-entropy and the two terms cover each other near zero; listing all four in the
    legend would name lines nobody can see."""
    values = [y for line in series for y in line.y if y is not None]
    if not values:
        return list(series), []
    tolerance = HIDDEN_SHARE * ((max(values) - min(values)) or 1.0)
    shown, hidden = [], []
    for line in series:
        points = [(i, y) for i, y in enumerate(line.y) if y is not None]
        if not points:  # nothing to draw (a term without finite values): not named either
            continue
        covered = any(
            all(other.y[i] is not None and abs(other.y[i] - y) <= tolerance for i, y in points) for other in shown)
        (hidden if covered else shown).append(line)
    return shown, hidden


def loss_chart_svg(series: list[charts.LossSeries]) -> str:
    """The curves of `series` with round-number grid lines and step labels, as SVG."""
    steps = [float(x) for x in series[0].x] if series else []
    values = [y for s in series for y in s.y if y is not None]
    if len(steps) < 2 or not values:
        return ""
    x_low, x_high = steps[0], steps[-1]
    y_low, y_high = min(values), max(values)
    if y_high - y_low < 1e-9:
        y_low, y_high = y_low - 0.5, y_high + 0.5
    y_ticks = nice_ticks(y_low, y_high)
    y_low, y_high = min(y_low, y_ticks[0]), max(y_high, y_ticks[-1])

    def px(x: float) -> float:
        return LEFT + (x - x_low) / max(x_high - x_low, 1e-9) * (WIDTH - LEFT - RIGHT)

    def py(y: float) -> float:
        return HEIGHT - BOTTOM - (y - y_low) / (y_high - y_low) * (HEIGHT - TOP - BOTTOM)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
             f'height="{HEIGHT}" font-family="sans-serif" font-size="11" fill="#5a6070">']
    for tick in y_ticks:
        y = py(tick)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e6e8ee"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>')
    for tick in nice_ticks(x_low, x_high):
        if x_low <= tick <= x_high:
            parts.append(f'<text x="{px(tick):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{tick:g}</text>')
    parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 4}" text-anchor="middle">'
                 f'{html.escape(series[0].x_title)}</text>')
    for line in reversed(series):  # the total loss last, on top of the terms it sums
        path = _path([(px(x), None if y is None else py(y)) for x, y in zip(line.x, line.y)])
        if path:
            parts.append(f'<path d="{path}" fill="none" stroke="{line.colour}" stroke-width="1.8" '
                         'stroke-linejoin="round"/>')
    parts.append("</svg>")
    return "".join(parts)


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """About `count` round values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    raw = (high - low) / max(1, count)
    if raw <= 0 or not math.isfinite(raw):
        return [low]
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step + 1e-9) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _path(points: list[tuple[float, float | None]]) -> str:
    """An SVG path through the points, broken where a value is missing."""
    commands, pen_down = [], False
    for x, y in points:
        if y is None:
            pen_down = False
            continue
        commands.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
        pen_down = True
    return "".join(commands)
