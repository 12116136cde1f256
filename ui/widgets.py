"""Small pieces several pages share: error display, the open-project guard, the sidebar status,
thumbnail grids, the run picker and the live job panel."""

from __future__ import annotations

import math
import time

import streamlit as st

from dapt_core.errors import DaptError
from dapt_core.studio import jobs
from dapt_core.studio.workspace import Project
from ui import state
from ui.i18n import current_language, error_text, t

GRID_PAGE = 48  # thumbnails shown at once per class


def show_error(error: BaseException) -> None:
    st.error(error_text(error), icon=":material/error:")


def require_project() -> Project:
    """The open project; otherwise a pointer to the Projects page, and the page stops."""
    project = state.current_project()
    if project is None:
        st.info(t("common.no_project"), icon=":material/info:")
        st.page_link("pages/1_projects.py", label=t("nav.projects"), icon=":material/folder_open:")
        st.stop()
    try:
        project.manifest()
    except DaptError as error:
        show_error(error)
        st.page_link("pages/1_projects.py", label=t("nav.projects"), icon=":material/folder_open:")
        st.stop()
    return project


def page_header(title_key: str, project: Project | None) -> None:
    st.title(t(title_key))
    if project is not None:
        st.caption(t("common.project_caption", name=project.name))


def sidebar_status(sidebar) -> None:
    key, description = state.device()
    warm = state.warmup()
    with sidebar:
        st.divider()
        st.caption(t("sidebar.device", device=description))
        if warm.state == "ready":
            st.caption(t("sidebar.map_ready"))
        elif warm.state == "failed":
            st.caption(t("sidebar.map_failed", error=warm.error or ""))
        else:
            st.caption(t("sidebar.map_warming"))
        queue = state.queue()
        running = [j for j in queue.jobs(active_only=True) if j.state == jobs.RUNNING]
        waiting = queue.waiting()
        if running or waiting:
            st.caption(t("sidebar.queue", running=len(running), waiting=waiting))


def thumbnail_grid(project: Project, records: list, key: str, *, captions: list[str] | None = None) -> None:
    """A grid of previews; large sets are shown a page at a time."""
    if not records:
        return
    pages = math.ceil(len(records) / GRID_PAGE)
    page = 1
    if pages > 1:
        page = st.number_input(t("data.grid_page", pages=pages, n=len(records)), min_value=1, max_value=pages,
                               value=1, step=1, key=f"grid-page-{key}")
    chunk = records[(page - 1) * GRID_PAGE: page * GRID_PAGE]
    chunk_captions = (captions or [r.name for r in records])[(page - 1) * GRID_PAGE: page * GRID_PAGE]
    st.image([str(project.thumbnail_path(r.sha256)) for r in chunk], caption=[_short(c) for c in chunk_captions],
             width=96)


def _short(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_picker(project: Project, key: str):
    """Select box of the project's runs (newest first); returns the chosen SavedRun or None."""
    runs = [info for info in project.runs() if info.error is None]
    damaged = [info for info in project.runs() if info.error is not None]
    for info in damaged:
        st.warning(error_text(info.error))
    if not runs:
        st.info(t("common.no_runs"), icon=":material/info:")
        st.page_link("pages/2_tune.py", label=t("nav.tune"), icon=":material/tune:")
        return None
    ids = [info.id for info in runs]
    by_id = {info.id: info for info in runs}
    chosen = state.chosen_run_id(ids)
    lang = current_language()  # fixed now: a format function may be called outside this run
    # The labels are in the session's language; a new key per language keeps the widget valid.
    run_id = st.selectbox(t("common.run"), ids, index=ids.index(chosen), key=f"{key}-{chosen}-{current_language()}",
                          format_func=lambda rid: run_label(by_id[rid], lang))
    state.choose_run(run_id)
    return project.run(run_id)


def run_label(info, lang: str | None = None) -> str:
    from ui.narrative import pct

    when = info.created.replace("T", " ")[:16]
    return t("common.run_label", lang=lang, when=when, method=t(f"method.{info.method}.name", lang=lang),
             backbone=info.backbone, shots=info.shots, before=pct(info.zero_shot_accuracy), after=pct(info.accuracy))


def duration(seconds) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


# ------------------------------------------------------------------------------ job panel


def job_panel(project: Project, kind: str, on_done=None) -> None:
    """Live cards for this project's jobs of `kind` ('tune' or 'evaluate'). Polls once a second
    (a fragment: only this part of the page reruns) while any job is queued or running."""
    queue = state.queue()

    def relevant() -> list[jobs.Job]:
        mine = st.session_state.setdefault("_my_jobs", [])
        dismissed = st.session_state.setdefault("_dismissed_jobs", set())
        found = []
        for job in queue.jobs(project.id):
            if not job.label.startswith(kind) or job.id in dismissed:
                continue
            if job.state in jobs.ACTIVE_STATES or job.id in mine or _recent(job):
                found.append(job)
        return found[-4:]

    active = any(job.state in jobs.ACTIVE_STATES for job in relevant())

    @st.fragment(run_every=1.0 if active else None)
    def panel():
        seen = st.session_state.setdefault("_seen_active", set())
        finished_now = False
        for job in relevant():
            snap = job.snapshot()
            if snap.active:
                seen.add(snap.id)
            elif snap.id in seen:
                seen.discard(snap.id)
                finished_now = True
            _job_card(snap, on_done)
        if finished_now:
            st.rerun()  # the whole page: the run list and the links change

    panel()


def _recent(job: jobs.Job, minutes: float = 30) -> bool:
    snap = job.snapshot()
    return snap.finished is not None and time.time() - snap.finished < minutes * 60


def _job_card(snap: jobs.JobSnapshot, on_done) -> None:
    queue = state.queue()
    with st.container(border=True):
        title = t("job.title_tune") if snap.label.startswith("tune") else t("job.title_evaluate")
        request = snap.request
        if snap.label.startswith("tune") and request is not None:
            title = t("job.title_tune_detail", method=t(f"method.{request.settings.get('method', 'dapt')}.name"),
                      backbone=request.backbone, shots=request.shots)
        st.markdown(f"**{title}**")
        if snap.state == jobs.QUEUED:
            st.info(t("job.queued", place=snap.place, device=snap.device), icon=":material/hourglass_top:")
            if st.button(t("job.cancel"), key=f"cancel-{snap.id}", icon=":material/close:"):
                queue.cancel(snap.id)
                st.rerun(scope="fragment")
        elif snap.state == jobs.RUNNING:
            _running(snap)
            if st.button(t("job.cancel"), key=f"cancel-{snap.id}", icon=":material/stop:",
                         disabled=snap.progress.phase in ("saving", "mapping")):
                queue.cancel(snap.id)
                st.rerun(scope="fragment")
        elif snap.state == jobs.DONE:
            if on_done is not None:
                on_done(snap)
        elif snap.state == jobs.FAILED:
            st.error(t("job.failed", error=_job_error(snap)), icon=":material/error:")
        elif snap.state == jobs.CANCELLED:
            st.info(t("job.cancelled"), icon=":material/block:")
        if snap.state in jobs.FINAL_STATES:
            if st.button(t("job.dismiss"), key=f"dismiss-{snap.id}", type="tertiary"):
                st.session_state.setdefault("_dismissed_jobs", set()).add(snap.id)
                st.rerun(scope="fragment")


def _job_error(snap: jobs.JobSnapshot) -> str:
    class _Coded(Exception):
        pass

    if snap.error_code:
        error = _Coded(snap.error or "")
        error.code, error.params = snap.error_code, snap.error_params
        return error_text(error)
    return snap.error or ""


def _running(snap: jobs.JobSnapshot) -> None:
    from ui import charts

    progress = snap.progress
    phase = progress.phase
    if phase in ("select", "train", "evaluate") and progress.total_steps:
        if phase == "train":
            text = t("job.progress_train", epoch=progress.epoch, epochs=progress.epochs, step=progress.step,
                     steps=progress.total_steps, eta=duration(progress.eta))
        elif phase == "select":
            text = t("job.progress_select", step=progress.step, steps=progress.total_steps)
        else:
            text = t("job.progress_evaluate", step=progress.step, steps=progress.total_steps,
                     eta=duration(progress.eta))
        st.progress(progress.fraction, text=text)
    else:
        st.progress(0.0, text=t(f"job.phase.{phase}") if phase in _PHASES else phase)
    if phase == "train" or snap.history:
        cols = st.columns(3)
        cols[0].metric(t("job.loss"), "–" if not math.isfinite(progress.loss) else f"{progress.loss:.4f}")
        cols[1].metric(t("job.train_accuracy"), "–" if not math.isfinite(progress.train_accuracy)
                       else f"{100 * progress.train_accuracy:.0f}%")
        cols[2].metric(t("job.elapsed"), duration(time.time() - snap.started if snap.started else None))
    if snap.history and snap.request is not None and hasattr(snap.request, "settings"):
        config = snap.request.config()
        st.plotly_chart(charts.loss_curves(list(snap.history), config.beta_v, config.beta_t), key=f"loss-{snap.id}",
                        config={"displayModeBar": False})


_PHASES = ("queued", "loading", "preparing", "select", "prototypes", "train", "evaluate", "saving", "mapping",
           "cancelled")
