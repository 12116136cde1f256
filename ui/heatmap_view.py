"""Heatmaps on the page and in the report: each photo with where its defect evidence lies
(dapt_core.deploy.heatmaps). Only runs tuned with tiles have them."""

from __future__ import annotations

import io
from collections.abc import Callable

import streamlit as st

from dapt_core.data.images import load_image
from dapt_core.deploy.heatmaps import overlay
from dapt_core.errors import DaptError, ImageRejected
from dapt_core.studio.report import Picture
from ui import run_view
from ui.i18n import t
from ui.narrative import pct
from ui.plain_text import as_text

COLUMNS = 3
REPORT_EXAMPLES = 6


def tiled(view: run_view.RunView) -> bool:
    return ((view.metrics.get("config") or {}).get("tiles") or "off") != "off"


def heatmap_gallery(images: list, names: list[str], predictions: list) -> None:
    """The photos that have a heatmap, three to a row, each captioned with its answer."""
    shown = [(image, name, p) for image, name, p in zip(images, names, predictions) if p.heatmap is not None]
    if not shown:
        st.caption(t("heat.none"))
        return
    st.markdown(f"**{t('heat.title')}**")
    st.caption(t("heat.caption"))
    columns = st.columns(COLUMNS)
    for index, (image, name, prediction) in enumerate(shown):
        columns[index % COLUMNS].image(overlay(image, prediction.heatmap),  # captions are Markdown: names as text
                                       caption=as_text(_caption(name, prediction)), width="stretch")


def _caption(name: str, prediction, lang: str | None = None) -> str:
    verdict = f"{t(f'pf.verdict_{prediction.verdict}', lang=lang)} · " if prediction.verdict else ""
    return f"{name}: {verdict}{prediction.label} {pct(prediction.score)}"


def example_rows(view: run_view.RunView, limit: int) -> list[int]:
    """Test photos worth a map: defective ones the tuned model got wrong first, then ones it got right
    (for a task without a good class: wrong ones, then right ones)."""
    good = view.metrics.get("good_class")
    good_index = view.classnames.index(good) if good in view.classnames else None
    wanted = [i for i in range(len(view.labels)) if good_index is None or view.labels[i] != good_index]
    wrong = [i for i in wanted if view.pred_after[i] != view.labels[i]]
    right = [i for i in wanted if view.pred_after[i] == view.labels[i]]
    return (wrong[:limit // 2] + right + wrong[limit // 2:])[:limit]


def overlays(view: run_view.RunView, classifier, rows: list[int], lang: str | None = None) -> list[tuple[bytes, str]]:
    """(PNG bytes, caption) of each row's photo with its map; photos no longer on disk are left out."""
    out = []
    for row in rows:
        try:
            image = load_image(view.run.test_image_path(view.data["test"][row]))
        except (ImageRejected, OSError):
            continue
        prediction = classifier.predict(image, heatmaps=True)[0]
        if prediction.heatmap is None:
            continue
        buffer = io.BytesIO()
        overlay(image, prediction.heatmap).save(buffer, format="PNG")
        true = view.classnames[view.labels[row]]
        out.append((buffer.getvalue(), t("heat.example_caption", lang=lang, name=view.names[row], true=true,
                                         answer=_caption("", prediction, lang).removeprefix(": "))))
    return out


def report_heatmaps(view: run_view.RunView, get_classifier: Callable, lang: str | None = None) -> list[Picture] | None:
    """A few examples with their maps for the report; None for a run without tiles."""
    if not tiled(view):
        return None
    classifier = get_classifier()
    if classifier is None:
        return []
    return [Picture(data, caption, mime="image/png")
            for data, caption in overlays(view, classifier, example_rows(view, REPORT_EXAMPLES), lang)]


def inspect_section(view: run_view.RunView, get_classifier: Callable) -> None:
    """Inspect's 'Where is the defect': one test photo at a time, the mistakes first."""
    st.subheader(t("heat.title"))
    if not tiled(view):
        st.caption(t("heat.untiled"))
        return
    st.caption(t("heat.caption"))
    rows = example_rows(view, len(view.labels))
    if not rows:
        st.caption(t("inspect.none_here"))
        return
    def describe(i: int) -> str:
        return t("heat.pick_row", name=view.names[i], true=view.classnames[view.labels[i]],
                 predicted=view.classnames[view.pred_after[i]])

    row = st.selectbox(t("heat.pick"), rows, key=f"heat-row-{view.run.id}", format_func=describe)
    try:
        classifier = get_classifier()
    except DaptError as error:
        st.error(as_text(error), icon=":material/error:")
        return
    if classifier is None:
        return
    with st.spinner(t("heat.drawing")):
        shown = overlays(view, classifier, [row])
    if not shown:
        st.caption(t("heat.missing"))
        return
    data, caption = shown[0]
    st.image(data, caption=as_text(caption), width=560)  # the report escapes the same caption as HTML
