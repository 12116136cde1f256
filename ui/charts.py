"""Plotly figures of the app and the HTML report: the embedding maps, loss curves, accuracy
bars and confusion matrices. Builders take plain data and return figures; wording comes from
ui.i18n, so a figure speaks the language of whoever asked for it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from ui.i18n import t

_PALETTE = qualitative.Safe + qualitative.Dark24  # colour-blind-safe first
# The loss curves' colours are set, not left to a template: a template's colours may be
# placeholders its own web page replaces (Streamlit's are), which a standalone report lacks.
_LOSS_COLOURS = ("#1f2430", "#3b6fe0", "#e07b39", "#2a9d8f")


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
    figures = []
    for which, coords, text in (("before", projection.before, projection.text_before),
                                ("after", projection.after, projection.text_after)):
        fig = go.Figure()
        for index, name in enumerate(classnames):
            mask = labels == index
            if not mask.any():
                continue
            predicted = [classnames[p] for p in preds[which][mask]]
            fig.add_trace(go.Scatter(
                x=coords[mask, 0], y=coords[mask, 1], mode="markers", name=name, legendgroup=name,
                marker={"size": 6, "color": colours[name], "opacity": 0.75, "line": {"width": 0}},
                customdata=np.stack([np.asarray([names[i] for i in np.flatnonzero(mask)], dtype=object),
                                     np.full(int(mask.sum()), name, dtype=object),
                                     np.asarray(predicted, dtype=object)], axis=1),
                hovertemplate=(f"<b>%{{customdata[0]}}</b><br>{t('chart.class', lang=lang)}: %{{customdata[1]}}"
                               f"<br>{t('chart.predicted', lang=lang)}: %{{customdata[2]}}<extra></extra>")))
        # Each star sits where the images its description matches best are (projection.place_texts),
        # so the stars spread out with the images and can carry their names.
        fig.add_trace(go.Scatter(
            x=text[:, 0], y=text[:, 1], mode="markers+text", name=t("chart.text_embeddings", lang=lang),
            text=classnames, textposition="top center", textfont={"size": 12, "color": "#222"},
            marker={"symbol": "star", "size": 17, "color": [colours[c] for c in classnames],
                    "line": {"width": 1.5, "color": "#222"}},
            hovertemplate=f"<b>%{{text}}</b><br>{t('chart.text_point', lang=lang)}<extra></extra>"))
        title = t("inspect.map_before" if which == "before" else "inspect.map_after", lang=lang)
        fig.update_layout(title=title, height=460, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                          legend={"orientation": "h", "y": -0.05}, hovermode="closest",
                          xaxis={"range": x_range, "showticklabels": False, "zeroline": False, "title": None},
                          yaxis={"range": y_range, "showticklabels": False, "zeroline": False, "title": None,
                                 "scaleanchor": "x", "scaleratio": 1})
        figures.append(fig)
    return figures[0], figures[1]


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
    terms = [("loss", 1.0, t("chart.loss_total", lang=lang)), ("ce", 1.0, t("chart.loss_ce", lang=lang))]
    if beta_v:
        terms.append(("intra", beta_v, t("chart.loss_intra", lang=lang, beta=f"{beta_v:g}")))
    if beta_t:
        terms.append(("inter", beta_t, t("chart.loss_inter", lang=lang, beta=f"{beta_t:g}")))
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
        for key in ("loss", "ce", "intra", "inter", "train_accuracy"):
            values = [v for v in (_finite(h.get(key)) for h in chunk) if v is not None]
            point[key] = sum(values) / len(values) if values else None
        thinned.append(point)
    return thinned


def train_accuracy_curve(history: list[dict], *, lang: str | None = None) -> go.Figure:
    steps = [h.get("step", h.get("epoch")) for h in history]
    fig = go.Figure(go.Scatter(x=steps, y=[_finite(h.get("train_accuracy")) for h in history], mode="lines",
                               name=t("chart.train_accuracy", lang=lang)))
    fig.update_layout(height=220, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      yaxis={"range": [0, 1.02], "tickformat": ".0%", "title": t("chart.train_accuracy", lang=lang)},
                      xaxis_title=t("chart.step" if history and "step" in history[0] else "chart.epoch", lang=lang))
    return fig


def per_class_bars(classnames: list[str], before: dict, after: dict, *, lang: str | None = None) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Bar(x=classnames, y=[before.get(c) for c in classnames], name=t("common.zero_shot", lang=lang),
                         marker_color="#9aa4b5"))
    fig.add_trace(go.Bar(x=classnames, y=[after.get(c) for c in classnames], name=t("common.tuned", lang=lang),
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
    fig = go.Figure(go.Heatmap(
        z=share, x=classnames, y=classnames, colorscale="Blues", zmin=0, zmax=1, showscale=False,
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
