"""Small pieces several pages share: error display, the open-project guard, the delete button that
asks first, the sidebar status, thumbnail grids, the run picker and the live job panel."""

from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager

import streamlit as st

from dapt_core.engine.progress import Phase
from dapt_core.errors import DaptError
from dapt_core.studio import job_queue
from dapt_core.studio.disk import disk_error
from dapt_core.studio.workspace import Project
from ui import charts, live_chart, nav, state
from ui.i18n import current_language, error_text, t
from ui.plain_text import as_text

GRID_PAGE = 48  # thumbnails shown at once per class
log = logging.getLogger(__name__)

# The job panel redraws every PROGRESS_SECONDS in every tab that shows it, while the same
# machine trains: a bar, three numbers and the loss chart as inline SVG (ui.live_chart; a Plotly
# chart cost each tab ~0.45 s of browser CPU per redraw), from at most CHART_POINTS points.
# On a 2-core machine the browser shares the cores with training. Two watching tabs and a queued
# job, second job's training time against `dapt tune` (benchmarks/app_vs_library.py --tabs 2
# --queued): 1.55x at a 1 s redraw with Plotly every 5 s; 1.30x at 2 s / 10 s; 1.21-1.28x at 2 s
# with the SVG chart; 1.25x at 3 s (and 1.21x with two tabs alone, against 1.26x at 2 s).
PROGRESS_SECONDS = 3.0
CHART_POINTS = 150


def show_error(error: BaseException) -> None:
    st.error(error_text(error, markdown=True), icon=":material/error:")


@contextmanager
def isolated(what: str):
    """Run one part of a page so that a failure in it shows there, as an error box, and the rest
    of the page is still drawn (Streamlit's own stop and rerun signals pass through: they are
    not Exceptions)."""
    try:
        yield
    except DaptError as error:
        show_error(error)
    except Exception as error:  # a bug or an unexpected file: say so here, keep the page
        told = disk_error(error)  # a full or read-only disk is no bug: said plainly, without paths
        if told is not None:
            show_error(told)
            return
        log.exception("%s failed", what)
        st.error(t("common.part_failed", what=as_text(what), error=as_text(f"{type(error).__name__}: {error}")),
                 icon=":material/error:")


def require_project() -> Project:
    """The open project; otherwise a pointer to the Projects page, and the page stops."""
    project = state.current_project()
    if project is None:
        st.info(t("common.no_project"), icon=":material/info:")
        nav.PROJECTS.link()
        st.stop()
    try:
        project.manifest()
    except DaptError as error:
        show_error(error)
        nav.PROJECTS.link()
        st.stop()
    return project


def delete_button(key: str, label: str, question: str, *, subject: str = "", where=None, disabled: bool = False,
                  help: str | None = None) -> bool:
    """A delete button that asks first. Pressed, it shows `question` below with "Yes, delete" and
    "No, keep it" (keys `{key}-yes` and `{key}-no`) until one of them is pressed. True in the run in
    which "Yes, delete" was pressed: the caller deletes, then reruns.

    `subject` names what the button deletes where the key does not (a project's id under the key
    "delete-project"), so that an open question does not carry over to the next project shown;
    `where` is the container to draw the button in (a row of buttons), by default the page."""
    asked = f"_delete-asked-{key}-{subject}"
    if (st if where is None else where).button(label, key=key, icon=":material/delete:", disabled=disabled,
                                                help=help):
        st.session_state[asked] = True
    if not st.session_state.get(asked):
        return False
    st.warning(question, icon=":material/warning:")
    with st.container(horizontal=True):
        confirmed = st.button(t("common.yes_delete"), key=f"{key}-yes", type="primary")
        kept = st.button(t("common.keep"), key=f"{key}-no")
    if confirmed or kept:
        st.session_state.pop(asked, None)
    if kept:
        st.rerun()
    return confirmed


def page_header(title_key: str, project: Project | None) -> None:
    st.title(t(title_key))
    if project is not None:
        st.caption(t("common.project_caption", name=as_text(project.name)))


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


def sidebar_queue(sidebar) -> None:
    """The queue's counts, drawn after the page (see app.py), so that a job the page has just
    queued is counted in the same run. A fragment that polled here would leave stale copies of
    the page's widgets behind while a page reruns (a file picked then goes nowhere); the pages'
    job panels rerun the whole page when a job ends, which redraws these counts."""
    snaps = [job.snapshot() for job in state.queue().jobs(active_only=True)]  # one state per job
    running = [s for s in snaps if s.state == job_queue.RUNNING]
    waiting = [s for s in snaps if s.state == job_queue.QUEUED]
    if running or waiting:
        mine = sum(state.is_mine(s.id) for s in snaps)
        sidebar.caption(t("sidebar.queue", running=len(running), waiting=len(waiting), mine=mine))


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
    # Captions are Markdown: file names go in as text.
    st.image([str(project.thumbnail_path(r.sha256)) for r in chunk],
             caption=[as_text(_short(c)) for c in chunk_captions], width=96)


def _short(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_picker(project: Project, key: str):
    """Select box of the project's runs (newest first); returns the chosen SavedRun or None."""
    runs = [info for info in project.runs() if info.error is None]
    damaged = [info for info in project.runs() if info.error is not None]
    for info in damaged:
        st.warning(error_text(info.error, markdown=True))
    if not runs:
        st.info(t("common.no_runs"), icon=":material/info:")
        nav.TUNE.link()
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


def run_label(info, lang: str | None = None, *, markdown: bool = False) -> str:
    """A run in one line (for a select box; `markdown`: for Streamlit's Markdown, the backbone, which is typed
    in, as text)."""
    from ui.narrative import pct

    when = info.created.replace("T", " ")[:16]
    params = {"when": when, "method": t(f"method.{info.method}.name", lang=lang),
              "backbone": as_text(info.backbone) if markdown else info.backbone,
              "shots": info.shots, "before": pct(info.zero_shot_accuracy), "after": pct(info.accuracy)}
    if getattr(info, "escapes", None) is not None:  # pass/fail first, where the task has a good class
        return t("common.run_label_pass_fail", lang=lang, escapes=pct(info.escapes), overkill=pct(info.overkill),
                 **params)
    return t("common.run_label", lang=lang, **params)


def duration(seconds) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


# ------------------------------------------------------------------------------ job panel


def job_panel(project: Project, kind: str, on_done=None) -> None:
    """Live cards for this project's jobs of `kind` ('tune' or 'evaluate'). Polls every PROGRESS_SECONDS
    (a fragment: only this part of the page reruns) while any job is queued or running."""
    queue = state.queue()

    def relevant() -> list[job_queue.Job]:
        """Every queued or running job, and one card for the latest finished one: each saved run is
        listed under the panel, so older "Run saved" cards would only repeat themselves."""
        dismissed = st.session_state.setdefault("_dismissed_jobs", set())
        active, finished = [], []
        for job in queue.jobs(project.id):
            if job.kind != kind:
                continue
            if job.state in job_queue.ACTIVE_STATES:
                active.append(job)
            elif state.is_mine(job.id) or _recent(job):
                finished.append(job)
        # Hiding the latest card hides them all: the one before it does not come back in its place.
        latest = max(finished, key=lambda job: job.snapshot().finished or 0, default=None)
        shown = [latest] if latest is not None and latest.id not in dismissed else []
        return shown + [job for job in active if job.id not in dismissed][-4:]

    active = any(job.state in job_queue.ACTIVE_STATES for job in relevant())

    @st.fragment(run_every=PROGRESS_SECONDS if active else None)
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


def _recent(job: job_queue.Job, minutes: float = 30) -> bool:
    snap = job.snapshot()
    return snap.finished is not None and time.time() - snap.finished < minutes * 60


def _job_card(snap: job_queue.JobSnapshot, on_done) -> None:
    with st.container(border=True):
        tuning = snap.kind == job_queue.JobKind.TUNE
        title = t("job.title_tune") if tuning else t("job.title_evaluate")
        request = snap.request
        if tuning and request is not None:
            title = t("job.title_tune_detail", method=t(f"method.{request.settings.get('method', 'dapt')}.name"),
                      backbone=as_text(request.backbone), shots=request.shots)
        mine = state.is_mine(snap.id)
        owner = (t("job.yours") if mine else t("job.others_named", owner=as_text(snap.owner)) if snap.owner
                 else t("job.others"))
        st.markdown(f"**{title}** · {owner}")
        if snap.state == job_queue.QUEUED:
            st.info(t("job.queued", place=snap.place, device=snap.device), icon=":material/hourglass_top:")
            _cancel_button(snap, mine, ":material/close:")
        elif snap.state == job_queue.RUNNING:
            _running(snap)
            _cancel_button(snap, mine, ":material/stop:", disabled=snap.progress.phase in (Phase.SAVING, Phase.MAPPING))
        elif snap.state == job_queue.DONE:
            if on_done is not None:
                on_done(snap)
        elif snap.state == job_queue.FAILED:
            st.error(t("job.failed", error=_job_error(snap)), icon=":material/error:")
        elif snap.state == job_queue.CANCELLED:
            st.info(t("job.cancelled"), icon=":material/block:")
        if snap.state in job_queue.FINAL_STATES:
            if st.button(t("job.dismiss"), key=f"dismiss-{snap.id}", icon=":material/close:"):
                st.session_state.setdefault("_dismissed_jobs", set()).add(snap.id)
                _rerun_panel()


def _cancel_button(snap: job_queue.JobSnapshot, mine: bool, icon: str, *, disabled: bool = False) -> None:
    """Cancel: at once for this session's own job; someone else's job asks first. Signed in, only the job's
    owner and the project's owners may cancel it (checked again by the library when pressed)."""
    if not state.workspace().may_cancel(snap):
        st.button(t("job.cancel"), key=f"cancel-{snap.id}", icon=icon, disabled=True,
                  help=t("job.cancel_not_yours", owner=as_text(snap.owner or "–")))
        return
    confirm = f"confirm-cancel-{snap.id}"
    if st.session_state.get(confirm):
        st.warning(t("job.cancel_others_confirm"), icon=":material/warning:")
        with st.container(horizontal=True):
            if st.button(t("job.cancel_others_yes"), key=f"cancel-yes-{snap.id}", type="primary"):
                st.session_state.pop(confirm, None)
                _cancel(snap.id)
                _rerun_panel()
            if st.button(t("job.cancel_others_no"), key=f"cancel-no-{snap.id}"):
                st.session_state.pop(confirm, None)
                _rerun_panel()
        return
    if st.button(t("job.cancel"), key=f"cancel-{snap.id}", icon=icon, disabled=disabled):
        if mine:
            _cancel(snap.id)
        else:
            st.session_state[confirm] = True
        _rerun_panel()


def _cancel(job_id: str) -> None:
    try:
        state.workspace().cancel_job(state.queue(), job_id)
    except DaptError as error:  # the user's role changed since the card was drawn
        state.flash(error_text(error, markdown=True), "error")


def _rerun_panel() -> None:
    """Rerun the job panel after a click on one of its buttons: only the panel when the click came
    in a fragment rerun (the browser's usual case), else the page (a full run cannot rerun just
    a fragment)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    st.rerun(scope="fragment" if context is not None and context.fragment_ids_this_run else "app")


def _job_error(snap: job_queue.JobSnapshot) -> str:
    class _Coded(Exception):
        pass

    if snap.error_code:
        error = _Coded(snap.error or "")
        error.code, error.params = snap.error_code, snap.error_params
        return error_text(error, markdown=True)
    return as_text(snap.error or "")


def _running(snap: job_queue.JobSnapshot) -> None:
    progress = snap.progress
    phase = progress.phase
    if phase in (Phase.SELECT, Phase.TRAIN, Phase.EVALUATE) and progress.total_steps:
        if phase == Phase.TRAIN:
            text = t("job.progress_train", epoch=progress.epoch, epochs=progress.epochs, step=progress.step,
                     steps=progress.total_steps, eta=duration(progress.eta))
        elif phase == Phase.SELECT:
            text = t("job.progress_select", step=progress.step, steps=progress.total_steps)
        else:
            text = t("job.progress_evaluate", step=progress.step, steps=progress.total_steps,
                     eta=duration(progress.eta))
        st.progress(progress.fraction, text=text)
    else:
        st.progress(0.0, text=t(f"job.phase.{phase}") if phase in CARD_PHASES else phase)
    # The same card in every phase (the numbers show "–" until training gives them), so the card
    # does not shrink to its bar and grow again as the phases pass.
    cols = st.columns(3)
    cols[0].metric(t("job.loss"), "–" if not math.isfinite(progress.loss) else f"{progress.loss:.4f}")
    cols[1].metric(t("job.train_accuracy"), "–" if not math.isfinite(progress.train_accuracy)
                   else f"{100 * progress.train_accuracy:.0f}%")
    cols[2].metric(t("job.elapsed"), duration(time.time() - snap.started if snap.started else None))
    if snap.history and hasattr(snap.request, "settings"):
        config = snap.request.config()
        chart = live_chart.loss_chart_html(charts.thin_history(snap.history, CHART_POINTS), config.beta_v,
                                           config.beta_t, lang=current_language())
        if chart:
            st.html(chart)


# The phases a job card names (the check before Start shows its own progress, ui/feasibility.py).
CARD_PHASES = tuple(phase for phase in Phase.ALL if phase != Phase.CHECK)
