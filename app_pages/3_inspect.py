"""Inspect a run: the embedding space before and after, dispersion, accuracy, confusion, mistakes."""

from __future__ import annotations

import streamlit as st

from dapt_core.errors import DaptError
from dapt_core.studio.projection import settings_key
from ui import charts, nav, pass_fail_view, run_view, state
from ui.heatmap_view import inspect_section
from ui.i18n import engine_text, t
from ui.narrative import (
    accuracy_rows,
    dispersion_caption,
    dispersion_rows,
    dispersion_summary,
    manager_sentence,
    mistakes,
    pct,
    run_warnings,
)
from ui.plain_text import as_text
from ui.widgets import duration, isolated, page_header, require_project, run_picker, show_error

project = require_project()
page_header("inspect.title", project)
run = run_picker(project, key=f"inspect-run-{project.id}")
if run is None:
    st.stop()

try:
    view = run_view.load_view(run)
except DaptError as error:
    show_error(error)
    st.stop()
metrics = view.metrics

alarming = pass_fail_view.is_alarming(metrics) or bool(run_warnings(metrics))
(st.warning if alarming else st.info)(manager_sentence(view.data, markdown=True), icon=":material/campaign:")
pass_fail_numbers = pass_fail_view.key_numbers(metrics, markdown=True)
columns = st.columns(len(pass_fail_numbers) + 3)
for column, number in zip(columns, pass_fail_numbers):
    column.metric(number["label"], number["rate"], t("pf.zero_shot_was", value=number["zero_shot"]),
                  delta_color="off", delta_arrow="off", help=number["help"])
column = iter(columns[len(pass_fail_numbers):])
delta = None
if metrics.get("accuracy") is not None and metrics.get("zero_shot_accuracy") is not None:
    delta = t("common.points", value=f"{100 * (metrics['accuracy'] - metrics['zero_shot_accuracy']):+.1f}")
next(column).metric(t("inspect.tuned"), pct(metrics.get("accuracy")), delta,
                    help=t("inspect.accuracy_chance", before=pct(metrics.get("zero_shot_accuracy")),
                           chance=pct(metrics.get("chance"))))
next(column).metric(t("inspect.test_images"), metrics.get("n_test"))
next(column).metric(t("inspect.train_time"), duration(metrics.get("train_seconds")))
for note in metrics.get("notes") or []:
    st.caption(t("tune.note", note=as_text(engine_text(note))))  # notes name classes

# ---------------------------------------------------------------- pass or fail
if metrics.get("pass_fail"):
    st.subheader(t("pf.title"))
    with isolated(t("pf.title")):
        st.caption(t("pf.help"))
        st.dataframe(pass_fail_view.rows(metrics), hide_index=True, width="stretch", key="pass-fail-table")
        left, right = st.columns([3, 2], vertical_alignment="center")
        figure = pass_fail_view.tradeoff_figure(metrics)
        if figure is not None:
            left.plotly_chart(figure, key="tradeoff", config=charts.plotly_config())
        point_text = pass_fail_view.operating_point_text(metrics, markdown=True)
        if point_text:
            right.markdown(point_text)
elif "pass_fail" in metrics:
    st.caption(t("pf.none"))

# ---------------------------------------------------------------- the map (one shared UMAP fit)
st.subheader(t("inspect.map_title"))
st.caption(t("inspect.map_help"))
with isolated(t("inspect.map_title")):
    warm = state.warmup()
    if run.load_projection(settings_key()) is None and not warm.ready:
        with st.spinner(t("inspect.warming")):
            warm.wait(120)
    with st.spinner(t("inspect.mapping", n=2 * len(view.labels))):
        proj = run_view.projection(view)
    before_map, after_map = run_view.maps(view, proj)
    left, right = st.columns(2)
    left.plotly_chart(before_map, key="map-before", config=charts.plotly_config())
    right.plotly_chart(after_map, key="map-after", config=charts.plotly_config())
    st.caption(t("inspect.map_stars"))
    if len(proj.rows) < len(view.labels):
        st.caption(t("inspect.map_subsampled", shown=len(proj.rows), total=len(view.labels)))
    if proj.method != "umap":
        st.caption(t("inspect.map_pca"))

# ---------------------------------------------------------------- dispersion
st.subheader(t("inspect.dispersion_title"))
with isolated(t("inspect.dispersion_title")):
    st.caption(dispersion_caption(view.data))
    st.dataframe(dispersion_rows(metrics["dispersion"]), hide_index=True, width="stretch", key="dispersion-table")
    st.markdown(dispersion_summary(metrics))

# ---------------------------------------------------------------- accuracy
st.subheader(t("inspect.accuracy_title"))
with isolated(t("inspect.accuracy_title")):
    left, right = st.columns([3, 2])
    left.plotly_chart(run_view.per_class_figure(view), key="per-class", config=charts.plotly_config())
    right.dataframe(accuracy_rows(metrics), hide_index=True, width="stretch")

st.subheader(t("inspect.confusion_title"))
with isolated(t("inspect.confusion_title")):
    st.caption(t("inspect.confusion_help"))
    before_cm, after_cm = run_view.confusion_figures(view)
    left, right = st.columns(2)
    left.plotly_chart(before_cm, key="cm-before", config=charts.plotly_config())
    right.plotly_chart(after_cm, key="cm-after", config=charts.plotly_config())

with isolated(t("inspect.training_curve")):
    if metrics.get("history"):
        with st.expander(t("inspect.training_curve"), icon=":material/show_chart:"):
            st.plotly_chart(run_view.loss_figure(view), key="history", config=charts.plotly_config())

# ---------------------------------------------------------------- mistakes
st.subheader(t("inspect.mistakes_title"))
with isolated(t("inspect.mistakes_title")):
    groups = mistakes(view.data, view.pred_before, view.pred_after)
    tabs = st.tabs([t("inspect.still_wrong", n=len(groups["wrong_after"])), t("inspect.fixed", n=len(groups["fixed"])),
                    t("inspect.broken", n=len(groups["broken"]))])
    PER_PAGE = 24
    for tab, key in zip(tabs, ("wrong_after", "fixed", "broken")):
        with tab:
            rows = groups[key]
            if not rows:
                st.caption(t("inspect.none_here"))
                continue
            pages = -(-len(rows) // PER_PAGE)
            page = 1
            if pages > 1:
                page = int(st.number_input(t("data.grid_page", pages=pages, n=len(rows)), min_value=1, max_value=pages,
                                           value=1, key=f"mistakes-page-{key}"))
            shown = rows[(page - 1) * PER_PAGE: page * PER_PAGE]
            captions = []
            for i in shown:
                true = view.classnames[view.labels[i]]
                predicted = view.classnames[view.pred_after[i] if key != "fixed" else view.pred_before[i]]
                label_key = "inspect.caption_fixed" if key == "fixed" else "inspect.caption_wrong"
                # Image captions are Markdown: class and file names go in as text.
                captions.append(t(label_key, true=as_text(true), predicted=as_text(predicted),
                                  name=as_text(view.names[i])))
            st.image([run_view.thumbnail_bytes(view, i) for i in shown], caption=captions, width=120)

with isolated(t("heat.title")):
    spec = (run.data.get("backbone") or {}).get("spec", "demo")
    inspect_section(view, lambda: state.classifier(str(run.prompt_file), spec, state.device()[0]))

nav.EXPORT.link(t("inspect.to_export"), ":material/arrow_forward:")
