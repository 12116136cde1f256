"""A saved run prepared for display: labels, names and predictions in test-image order, the
shared map, and every figure the Inspect page and the HTML report draw."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from dapt_core.studio.projection import Projection, projection_for_run
from dapt_core.studio.runs import SavedRun
from ui import charts
from ui.i18n import t


@dataclass
class RunView:
    run: SavedRun
    data: dict
    classnames: list[str]
    labels: np.ndarray
    names: list[str]
    pred_before: np.ndarray
    pred_after: np.ndarray

    @property
    def metrics(self) -> dict:
        return self.data["metrics"]


def load_view(run: SavedRun) -> RunView:
    emb = run.embeddings()
    return RunView(run, run.data, run.classnames, emb["labels"].astype(int), [row["name"] for row in run.data["test"]],
                   emb["before_logits"].argmax(axis=1), emb["after_logits"].argmax(axis=1))


def projection(view: RunView) -> Projection:
    return projection_for_run(view.run)


def maps(view: RunView, proj: Projection, *, lang: str | None = None):
    return charts.embedding_maps(proj, view.classnames, view.labels, view.names, view.pred_before, view.pred_after,
                                 lang=lang)


def confusion_figures(view: RunView, *, lang: str | None = None):
    confusion = view.metrics["confusion"]
    return tuple(charts.confusion_heatmap(confusion[part], view.classnames, t(f"inspect.confusion_{part}", lang=lang),
                                          lang=lang) for part in ("before", "after"))


def per_class_figure(view: RunView, *, lang: str | None = None):
    return charts.per_class_bars(view.classnames, view.metrics.get("zero_shot_per_class") or {},
                                 view.metrics.get("per_class") or {}, lang=lang)


def loss_figure(view: RunView, *, lang: str | None = None):
    config = view.metrics.get("config") or {}
    return charts.loss_curves(view.metrics.get("history") or [], config.get("beta_v") or 0, config.get("beta_t") or 0,
                              lang=lang)


def thumbnail_bytes(view: RunView, row_index: int) -> bytes:
    row = view.data["test"][row_index]
    path = view.run.project.thumbnail_path(row["sha256"])
    try:
        return path.read_bytes()
    except OSError:
        return _blank()


def _blank() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (96, 96), (230, 230, 235)).save(buffer, format="JPEG")
    return buffer.getvalue()
