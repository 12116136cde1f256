"""The Export page's drift check: are new photos from the line still like the photos the chosen run was
calibrated on? (dapt_core.deploy.drift, as `dapt drift` computes it, through dapt_core.studio.drift_check.)

The user gives photos (files or a ZIP, in name order) or a CSV from `dapt predict --csv` (the unknown share
only: a CSV holds no image features). The check runs as a job in the device queue, in its own lane, and only
this section polls while it runs; the last check of each run is kept in the run's folder. It shows a verdict in
words with what to do, a chart of the windows (the unknown share against the calibrated rate, the feature
test's p-value against its alarm level) and a table of the windows.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from dapt_core.data.images import IMAGE_SUFFIXES
from dapt_core.deploy.drift import DEFAULT_WINDOW, MIN_WINDOW
from dapt_core.engine import prompt_file
from dapt_core.engine.progress import Phase
from dapt_core.errors import DaptError
from dapt_core.studio import drift_check, job_queue
from dapt_core.studio.backbone_cache import BACKBONES
from ui import charts, short_job, state, uploads
from ui.i18n import t
from ui.plain_text import as_text
from ui.widgets import isolated, show_error

FLAGGED, OK = "#d62728", "#3b6fe0"


def drift_section(project, run, device_key: str) -> None:
    """The section, drawn where it is called (the Export page's run); a failure in it leaves the page."""
    st.divider()
    st.subheader(t("drift.title"))
    with isolated(t("drift.title")):
        _section(project, run, device_key)


def _section(project, run, device_key: str) -> None:
    st.caption(t("drift.help"))
    try:
        header = prompt_file.load(run.prompt_file).header
    except DaptError as error:
        show_error(error)
        return
    if not header.get("calibration"):
        st.info(t("drift.no_calibration"), icon=":material/info:")
        return
    key = f"drift-upload-{run.id}-{state.counter('drift-uploads')}"
    files = st.file_uploader(t("drift.upload"), accept_multiple_files=True, key=key,
                             type=sorted({s.lstrip(".") for s in IMAGE_SUFFIXES} | {"zip", "csv"}))
    left, right = st.columns([1, 2], vertical_alignment="bottom")
    window = left.number_input(t("drift.window"), min_value=MIN_WINDOW, max_value=1000, value=DEFAULT_WINDOW,
                               step=5, key=f"drift-window-{run.id}", help=t("drift.window_help"))
    job = _latest_job(project, run)
    busy = job is not None and job.state in job_queue.ACTIVE_STATES
    if right.button(t("drift.run"), key=f"drift-run-{run.id}", icon=":material/monitoring:", type="primary",
                    disabled=busy or not files):
        _start(project, run, [(f.name, f.getvalue()) for f in files], int(window), device_key)
        uploads.release(files)  # the job holds its own copy until it ends
        state.bump("drift-uploads")  # the photos are taken: an empty uploader for the next batch
        st.rerun()
    if job is not None and job.state != job_queue.DONE:
        _follow(job)
    result = drift_check.load_last(run)
    if result is not None and not busy:
        show_result(result)


# ---------------------------------------------------------------------------------- the job
def _latest_job(project, run) -> job_queue.Job | None:
    found = [job for job in state.queue().jobs(project.id)
             if job.kind == drift_check.JOB_KIND and (job.request or {}).get("run_id") == run.id]
    return found[-1] if found else None


def _start(project, run, files: list[tuple[str, bytes]], window: int, device_key: str) -> job_queue.Job:
    def work(context: job_queue.JobContext) -> dict:
        from dapt_core.engine.inference import Classifier

        context.phase(Phase.LOADING)
        on_progress = context.counted(Phase.CHECK)

        return drift_check.check_run(
            run, files, window=window, on_progress=on_progress, workspace_root=project.workspace.root,
            classifier_for=lambda file: Classifier.from_prompt_file(file, BACKBONES.get(file.backbone_spec,
                                                                                        device_key)))

    job = project.start_job(state.queue(), work, kind=drift_check.JOB_KIND, label="drift",
                            device=f"{device_key}:drift", request={"run_id": run.id})
    state.claim_job(job.id)
    return job


def _follow(job: job_queue.Job) -> None:
    short_job.follow(job, "drift")


# ---------------------------------------------------------------------------------- the result
def verdict(result: dict) -> tuple[str, bool]:
    """(the verdict in words with what to do, whether it is drift), in the session's language."""
    report = drift_check.report_of(result)
    total, flagged = len(report.windows), report.flagged
    if report.drift:
        first = next(w for w in report.windows if w.flagged)
        level = report.alpha / len(report.tests)
        if first.p_unknown is not None and first.p_unknown < level:
            why = t("drift.why.unknown", share=_pct(first.unknown_share), expected=_pct(first.expected_share))
        else:
            why = t("drift.why.features", p=f"{first.p_features:.4f}")
        return t("drift.verdict.drift", start=drift_check.first_photo_of(report, first.index),
                 name=as_text(first.first), why=why, flagged=flagged, total=total), True
    if flagged:
        return t("drift.verdict.chance", flagged=flagged, total=total,
                 expected=f"{report.expected_false_alarms:.2f}"), False
    return t("drift.verdict.none", total=total, photos=result["photos"]), False


def show_result(result: dict) -> None:
    report = drift_check.report_of(result)
    words, drifted = verdict(result)
    (st.error if drifted else st.success)(words, icon=":material/warning:" if drifted else ":material/check_circle:")
    st.caption(t("drift.checked", photos=result["photos"], windows=len(report.windows), window=result["window"],
                 when=str(result.get("when", ""))[:16].replace("T", " ")))
    if result["source"] == "csv":
        st.caption(t("drift.note.csv"))
    elif "features" not in report.tests:
        st.caption(t("drift.note.no_reference"))
    if "unknown share" not in report.tests:
        st.caption(t("drift.note.no_unknown"))
    st.plotly_chart(figure(report), key=f"drift-chart-{result.get('when')}", config=charts.plotly_config())
    rows = [{t("drift.col.window"): w.index, t("drift.col.photos"): f"{w.first} … {w.last} ({w.photos})",
             t("drift.col.unknown"): "–" if w.unknown_share is None else f"{_pct(w.unknown_share)} ({w.unknown})",
             t("drift.col.expected"): "–" if w.expected_share is None else _pct(w.expected_share),
             t("drift.col.features"): "–" if w.p_features is None else f"{w.p_features:.4f}",
             t("drift.col.flagged"): t("drift.flagged") if w.flagged else ""} for w in report.windows]
    st.dataframe(rows, hide_index=True, width="stretch")
    for skipped in result.get("skipped") or []:
        st.caption(t("drift.skipped", name=as_text(skipped["name"]), reason=as_text(skipped["reason"])))


def figure(report) -> go.Figure:
    """The windows: the unknown share (bars) against the calibrated rate (dashed), and the feature test's
    p-value (log scale) against the alarm level (dotted); flagged windows in red."""
    tests = [test for test in ("unknown share", "features") if test in report.tests]
    fig = make_subplots(rows=len(tests), cols=1, shared_xaxes=True, vertical_spacing=0.12)
    x = [w.index for w in report.windows]
    colours = [FLAGGED if w.flagged else OK for w in report.windows]
    hover = [f"{charts.chart_text(w.first)} … {charts.chart_text(w.last)}" for w in report.windows]
    for row, test in enumerate(tests, start=1):
        if test == "unknown share":
            fig.add_bar(x=x, y=[w.unknown_share for w in report.windows], marker_color=colours, hovertext=hover,
                        name=t("drift.chart.unknown"), row=row, col=1)
            fig.add_scatter(x=x, y=[w.expected_share for w in report.windows], mode="lines",
                            line={"dash": "dash", "color": "#1f2430"}, name=t("drift.chart.expected"), row=row, col=1)
            fig.update_yaxes(title_text=t("drift.chart.unknown"), tickformat=".0%", rangemode="tozero", row=row,
                             col=1)
        else:
            level = report.alpha / len(report.tests)
            fig.add_scatter(x=x, y=[w.p_features for w in report.windows], mode="markers+lines",
                            marker={"color": colours, "size": 9}, line={"color": "#9aa4b5"}, hovertext=hover,
                            name=t("drift.chart.p"), row=row, col=1)
            fig.add_scatter(x=[x[0] - 0.5, x[-1] + 0.5], y=[level, level], mode="lines",
                            line={"dash": "dot", "color": FLAGGED}, name=t("drift.chart.alarm"), row=row, col=1)
            fig.update_yaxes(title_text=t("drift.chart.p"), type="log", row=row, col=1)
    fig.update_xaxes(title_text=t("drift.chart.window"), dtick=1, row=len(tests), col=1)
    fig.update_layout(height=240 * len(tests) + 80, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      legend={"orientation": "h", "y": 1.12})
    return fig


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"
