"""Plotly figures of the app and the HTML report: the embedding maps, loss curves, accuracy
bars and confusion matrices. Builders take plain data and return figures; wording comes from
ui.i18n, so a figure speaks the language of whoever asked for it."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from dapt_core.engine.loss_terms import CE, INTER, INTRA, LOSS, LOSS_TERMS
from ui.i18n import current_language, t

_PALETTE = qualitative.Safe + qualitative.Dark24  # colour-blind-safe first
# The loss curves' colours are set, not left to a template: a template's colours may be
# placeholders its own web page replaces (Streamlit's are), which a standalone report lacks.
_LOSS_COLOURS = ("#1f2430", "#3b6fe0", "#e07b39", "#2a9d8f")


# The words of Plotly's mode bar (the buttons over a chart) and its other built-in messages, for a
# Japanese page. Plotly.js takes a locale in each chart's config ("locales"), so no locale file
# needs to be loaded (which offline, from a CDN, could not be); these are the strings our charts can show.
_PLOTLY_JA = {
    # Plotly.js 3 says "PNG", "image"; older versions said "png", "snapshot"
    "Download plot as a PNG": "PNG 画像として保存", "Download plot as a png": "PNG 画像として保存",
    "Download plot": "ダウンロード",
    "Preparing image - this may take a few seconds": "画像を作成しています(数秒かかります)",
    "Taking snapshot - this may take a few seconds": "画像を作成しています(数秒かかります)",
    "Image download succeeded": "画像を保存しました", "Snapshot succeeded": "画像を保存しました",
    "Sorry, there was a problem downloading your image!": "画像を保存できませんでした",
    "Sorry, there was a problem downloading your snapshot!": "画像を保存できませんでした",
    "Zoom": "ズーム", "Pan": "移動", "Box Select": "矩形で選択", "Lasso Select": "投げ縄で選択",
    "Zoom in": "拡大", "Zoom out": "縮小", "Autoscale": "全体を表示", "Reset axes": "軸をリセット",
    "Reset": "リセット", "Reset view": "表示をリセット", "Reset views": "表示をリセット",
    "Toggle Spike Lines": "補助線の表示を切り替え", "Show closest data on hover": "カーソルに最も近いデータを表示",
    "Compare data on hover": "カーソル位置のデータを比較",
    "Toggle show closest data on hover": "最も近いデータの表示を切り替え",
    "Double-click to zoom back out": "ダブルクリックで元の表示に戻ります",
    "Double-click on legend to isolate one trace": "凡例をダブルクリックすると、その系列だけを表示します",
    "Produced with Plotly": "Plotly で作成",
}
_PLOTLY_JA_FORMAT = {"days": ["日曜日", "月曜日", "火曜日", "水曜日", "木曜日", "金曜日", "土曜日"],
                     "shortDays": ["日", "月", "火", "水", "木", "金", "土"],
                     "months": [f"{m}月" for m in range(1, 13)], "shortMonths": [f"{m}月" for m in range(1, 13)],
                     "date": "%Y/%m/%d"}


def plotly_config(lang: str | None = None) -> dict:
    """The config of every Plotly chart of the app and the report: no Plotly logo, no button that
    uploads the chart to Plotly's cloud (a report is opened offline, and the data stay in the factory),
    and the mode bar's words in the page's language."""
    lang = lang or current_language()
    config = {"displaylogo": False, "showSendToCloud": False}
    if lang == "ja":
        config.update(locale="ja", locales={"ja": {"dictionary": _PLOTLY_JA, "format": _PLOTLY_JA_FORMAT}})
    return config


def chart_text(value: object) -> str:
    """A name people typed (a class, a photo) as Plotly shows it literally. Plotly draws a few HTML tags in any
    text of a chart (<a href> becomes a link, <b>, <br>, <span style>), so < > & go in as entities, which it
    shows as the characters themselves."""
    return html.escape(str(value), quote=False)


def class_colours(classnames: list[str]) -> dict[str, str]:
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(classnames)}


def _padded_range(values: np.ndarray) -> list[float]:
    low, high = float(np.min(values)), float(np.max(values))
    pad = 0.05 * (high - low or 1.0)
    return [low - pad, high + pad]


def embedding_maps(projection, classnames: list[str], labels: np.ndarray, names: list[str],
                   predictions_before: np.ndarray, predictions_after: np.ndarray, *,
                   lang: str | None = None) -> tuple[go.Figure, go.Figure]:
    """The 'before' and 'after' maps of one shared fit, with the same axis ranges so that a
    position means the same thing in both. Circles are test images coloured by their true class,
    stars the class text embeddings; hovering shows the file, its class and the prediction."""
    rows = projection.rows
    labels = np.asarray(labels)[rows]
    names = [names[i] for i in rows]
    preds = {"before": np.asarray(predictions_before)[rows], "after": np.asarray(predictions_after)[rows]}
    every = np.concatenate([projection.before, projection.after, projection.text_before, projection.text_after])
    x_range, y_range = _padded_range(every[:, 0]), _padded_range(every[:, 1])
    colours = class_colours(classnames)
    shown = [chart_text(name) for name in classnames]
    names = [chart_text(name) for name in names]
    figures = []
    for which, coords, text in (("before", projection.before, projection.text_before),
                                ("after", projection.after, projection.text_after)):
        fig = go.Figure()
        for index, name in enumerate(classnames):
            mask = labels == index
            if not mask.any():
                continue
            predicted = [shown[p] for p in preds[which][mask]]
            fig.add_trace(go.Scatter(
                x=coords[mask, 0], y=coords[mask, 1], mode="markers", name=shown[index], legendgroup=shown[index],
                marker={"size": 6, "color": colours[name], "opacity": 0.75, "line": {"width": 0}},
                customdata=np.stack([np.asarray([names[i] for i in np.flatnonzero(mask)], dtype=object),
                                     np.full(int(mask.sum()), shown[index], dtype=object),
                                     np.asarray(predicted, dtype=object)], axis=1),
                hovertemplate=(f"<b>%{{customdata[0]}}</b><br>{t('chart.class', lang=lang)}: %{{customdata[1]}}"
                               f"<br>{t('chart.predicted', lang=lang)}: %{{customdata[2]}}<extra></extra>")))
        # Each star sits where the images its description matches best are (projection.place_texts).
        # Stars of classes the model confuses sit close together, so their names are annotations
        # placed apart (star_labels), each with a thin line to its star where it had to move.
        fig.add_trace(go.Scatter(
            x=text[:, 0], y=text[:, 1], mode="markers", name=t("chart.text_embeddings", lang=lang),
            text=shown, marker={"symbol": "star", "size": 17, "color": [colours[c] for c in classnames],
                                     "line": {"width": 1.5, "color": "#222"}},
            hovertemplate=f"<b>%{{text}}</b><br>{t('chart.text_point', lang=lang)}<extra></extra>"))
        for name, (x, y), (ax, ay) in zip(classnames, text[:, :2], star_labels(text[:, :2], classnames,
                                                                               x_range, y_range)):
            moved = (ax, ay) != _LABEL_OFFSETS[0]  # a name right above its star needs no line to it
            fig.add_annotation(x=float(x), y=float(y), ax=ax, ay=ay, yshift=0 if moved else -ay, text=chart_text(name),
                               showarrow=moved, arrowhead=0, arrowwidth=1, arrowcolor="#777", standoff=7,
                               font={"size": 12, "color": "#222"}, bgcolor="rgba(255,255,255,0.75)", borderpad=1)
        title = t("inspect.map_before" if which == "before" else "inspect.map_after", lang=lang)
        fig.update_layout(title=title, height=MAP_HEIGHT, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                          legend={"orientation": "h", "y": -0.05}, hovermode="closest",
                          xaxis={"range": x_range, "showticklabels": False, "zeroline": False, "title": None},
                          yaxis={"range": y_range, "showticklabels": False, "zeroline": False, "title": None,
                                 "scaleanchor": "x", "scaleratio": 1})
        figures.append(fig)
    return figures[0], figures[1]


MAP_HEIGHT = 460
# The plot area of a map, in pixels, as drawn in half the app's width or of the report's: the least
# room a label gets, so labels placed apart here stay apart on a wider screen.
MAP_PLOT_PIXELS = (440, 300)
# Where a star's name may go, in pixels from the star (x right, y down), nearest first.
_LABEL_OFFSETS = [(0, -20), (0, 20), (-44, -16), (44, -16), (-44, 16), (44, 16), (0, -38), (0, 38), (-70, 0),
                  (70, 0), (-60, -34), (60, -34), (-60, 34), (60, 34), (0, -56), (0, 56)]


def star_labels(points: np.ndarray, names: list[str], x_range: list[float],
                y_range: list[float]) -> list[tuple[float, float]]:
    """For each star, the pixel offset of its name: the nearest spot (_LABEL_OFFSETS) where the name
    covers neither a name placed before it nor another star. Two stars a few pixels apart would
    otherwise print their names over each other ("no defectcrack")."""
    width, height = MAP_PLOT_PIXELS
    # The axes keep one scale (scaleanchor), so a data unit is as many pixels as the tighter axis allows.
    scale = min(width / max(x_range[1] - x_range[0], 1e-9), height / max(y_range[1] - y_range[0], 1e-9))
    stars = [(float(x) * scale, -float(y) * scale) for x, y in points]  # pixels, y down
    star_boxes = [_box(x, y, 9, 9) for x, y in stars]
    placed: list[tuple[float, float, float, float]] = []
    offsets = []
    for index, ((x, y), name) in enumerate(zip(stars, names)):
        half_width = 3 + sum(12 if ord(c) > 0x2E80 else 7 for c in name) / 2  # CJK characters are twice as wide
        others = placed + [box for j, box in enumerate(star_boxes) if j != index]
        chosen = next(((dx, dy) for dx, dy in _LABEL_OFFSETS
                       if not any(_overlap(_box(x + dx, y + dy, half_width, 9), box) for box in others)),
                      _LABEL_OFFSETS[0])
        placed.append(_box(x + chosen[0], y + chosen[1], half_width, 9))
        offsets.append(chosen)
    return offsets


def _box(x: float, y: float, half_width: float, half_height: float) -> tuple[float, float, float, float]:
    return x - half_width, y - half_height, x + half_width, y + half_height


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@dataclass(frozen=True)
class LossSeries:
    name: str
    colour: str
    x: list
    y: list  # None where the step has no finite value
    x_title: str


def loss_series(history: list[dict], beta_v: float, beta_t: float, *, lang: str | None = None) -> list[LossSeries]:
    """The training loss and each of its terms, as they enter the loss (weighted by beta), per
    step (or per epoch for an older run's history)."""
    steps = [h["step"] if "step" in h else h["epoch"] for h in history]
    x_title = t("chart.step", lang=lang) if history and "step" in history[0] else t("chart.epoch", lang=lang)
    terms = [(LOSS, 1.0, t("chart.loss_total", lang=lang)), (CE, 1.0, t("chart.loss_ce", lang=lang))]
    if beta_v:
        terms.append((INTRA, beta_v, t("chart.loss_intra", lang=lang, beta=f"{beta_v:g}")))
    if beta_t:
        terms.append((INTER, beta_t, t("chart.loss_inter", lang=lang, beta=f"{beta_t:g}")))
    series = []
    for (key, weight, label), colour in zip(terms, _LOSS_COLOURS):
        values = [_finite(h.get(key)) for h in history]
        series.append(LossSeries(label, colour, steps, [None if v is None else v * weight for v in values], x_title))
    return series


def loss_curves(history: list[dict], beta_v: float, beta_t: float, *, lang: str | None = None) -> go.Figure:
    """The loss_series as an interactive figure."""
    fig = go.Figure()
    series = loss_series(history, beta_v, beta_t, lang=lang)
    for line in series:
        fig.add_trace(go.Scatter(x=line.x, y=line.y, mode="lines", name=line.name, line={"color": line.colour}))
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h", "y": 1.15},
                      xaxis={"title": series[0].x_title if series else "", "automargin": True},
                      yaxis={"title": t("chart.loss", lang=lang), "automargin": True})
    return fig


def thin_history(history, max_points: int) -> list[dict]:
    """At most `max_points` points of a per-step history: consecutive steps averaged in equal
    groups (each point sits at its group's last step), so a long noisy curve keeps its shape."""
    history = list(history)
    group = math.ceil(len(history) / max_points) if max_points > 0 else 1
    if group <= 1:
        return history
    thinned = []
    for start in range(0, len(history), group):
        chunk = history[start: start + group]
        point = dict(chunk[-1])
        for key in (*LOSS_TERMS, "train_accuracy"):
            values = [v for v in (_finite(h.get(key)) for h in chunk) if v is not None]
            point[key] = sum(values) / len(values) if values else None
        thinned.append(point)
    return thinned


def per_class_bars(classnames: list[str], before: dict, after: dict, *, lang: str | None = None) -> go.Figure:
    fig = go.Figure()
    shown = [chart_text(name) for name in classnames]
    fig.add_trace(go.Bar(x=shown, y=[before.get(c) for c in classnames], name=t("common.zero_shot", lang=lang),
                         marker_color="#9aa4b5"))
    fig.add_trace(go.Bar(x=shown, y=[after.get(c) for c in classnames], name=t("common.tuned", lang=lang),
                         marker_color="#3b6fe0"))
    fig.update_layout(barmode="group", height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      yaxis={"range": [0, 1.02], "tickformat": ".0%", "title": t("chart.accuracy", lang=lang),
                             "automargin": True},
                      xaxis={"automargin": True}, legend={"orientation": "h", "y": 1.15})
    return fig


def confusion_heatmap(matrix: list[list[int]], classnames: list[str], title: str, *,
                      lang: str | None = None) -> go.Figure:
    values = np.asarray(matrix, dtype=float)
    totals = values.sum(axis=1, keepdims=True)
    share = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    shown = [chart_text(name) for name in classnames]
    fig = go.Figure(go.Heatmap(
        z=share, x=shown, y=shown, colorscale="Blues", zmin=0, zmax=1, showscale=False,
        text=values.astype(int), texttemplate="%{text}",
        hovertemplate=(f"{t('chart.true', lang=lang)}: %{{y}}<br>{t('chart.predicted', lang=lang)}: %{{x}}"
                       f"<br>%{{text}} (%{{z:.0%}})<extra></extra>")))
    fig.update_layout(title=title, height=360, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      xaxis={"title": t("chart.predicted", lang=lang), "side": "bottom", "automargin": True},
                      yaxis={"title": t("chart.true", lang=lang), "autorange": "reversed", "automargin": True})
    return fig


def _finite(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
