"""The Projects page's "What to label next": a shift's worth of unlabelled photos, ranked by what labelling each
would teach, labelled one click at a time.

The photos are kept in the project folder (dapt_core.studio.unlabelled_pool), so a refresh or a restart keeps
them and their ranking. The ranking (the same as `dapt next`: the newest run's tuned prompts when the project
has one, else typical photos of groups no label covers) runs as a job in the device queue, since reading a
few hundred photos through a real backbone takes more than a moment, and only this section polls while it
runs. Each pick shows its preview, its rank, the reason in words and a button per class: the photo goes into
the project through the ordinary intake (duplicates and limits apply) and leaves the pool. Nothing changes
without a click.
"""

from __future__ import annotations

import streamlit as st

from dapt_core.data.images import IMAGE_SUFFIXES
from dapt_core.engine.progress import Phase
from dapt_core.studio import job_queue
from dapt_core.studio.access import Action
from dapt_core.studio.backbone_cache import BACKBONES
from dapt_core.studio.guarded import UserPool, UserProject
from dapt_core.studio.unlabelled_pool import DEFAULT_BACKBONE, DEFAULT_COUNT, JOB_KIND, upload_files
from ui import short_job, state, uploads
from ui.i18n import skipped_reason, t
from ui.plain_text import as_text
from ui.widgets import delete_button, isolated

COLUMNS = 3  # picks per row of the grid
UNEVEN_GAP = 3  # classes count as uneven from half the most and this many photos apart (not 1 against 2)
HESITATION_MARGIN = 0.5  # as dapt_core.engine.labelling_order: below it the model hesitates between two


def label_next_section(project: UserProject) -> None:
    """The expander, drawn where it is called; a failure in it leaves the rest of the page."""
    pool = project.unlabelled_pool()
    with st.expander(t("next.title"), icon=":material/playlist_add_check:", expanded=bool(pool.waiting())):
        with isolated(t("next.title")):
            _section(project, pool)


def _section(project: UserProject, pool: UserPool) -> None:
    st.caption(t("next.help"))
    editable = project.may(Action.EDIT)
    upload_key = f"next-upload-{project.id}-{state.counter('next-uploads')}"
    files = st.file_uploader(t("next.upload"), accept_multiple_files=True, key=upload_key, disabled=not editable,
                             type=sorted({s.lstrip(".") for s in IMAGE_SUFFIXES} | {"zip"}))
    if files:
        with st.spinner(t("data.checking", n=len(files))):
            report = upload_files(pool, [(f.name, f.getvalue()) for f in files])
        uploads.release(files)
        state.flash(t("next.added", n=len(report.added)))
        for skipped in report.skipped:
            state.flash(t("next.upload_skipped", name=as_text(skipped.name), reason=skipped_reason(skipped)),
                        "warning")
        state.bump("next-uploads")
        st.rerun()

    waiting = pool.waiting()
    skipped = len(pool.photos()) - len(waiting)
    if not pool.photos():
        st.caption(t("next.empty"))
        return
    st.markdown(t("next.waiting", n=len(waiting)) + (" " + t("next.skipped_count", n=skipped) if skipped else ""))
    run = pool.newest_run()
    row = st.columns([2, 1, 1], vertical_alignment="bottom")
    if run is None:
        spec = row[0].text_input(t("next.backbone"), value=DEFAULT_BACKBONE, key=f"next-backbone-{project.id}",
                                 help=t("next.backbone_help")).strip()
    else:
        spec = None
        row[0].caption(t("next.with_run", run=run.id))
    count = row[1].number_input(t("next.count"), min_value=1, max_value=200, value=DEFAULT_COUNT, step=1,
                                key=f"next-count-{project.id}")
    job = _latest_job(project)
    busy = job is not None and job.state in job_queue.ACTIVE_STATES
    if row[2].button(t("next.rank"), key=f"next-rank-{project.id}", icon=":material/sort:", type="primary",
                     disabled=busy or not editable or not waiting or (run is None and not spec)):
        job = _start(project, pool, spec, int(count))
        st.rerun()
    if job is not None and job.state != job_queue.DONE:
        _follow(job)
    ranking = pool.ranking()
    if ranking is not None and not busy:
        _grid(project, pool, ranking, run, editable)
    if delete_button(f"next-clear-{project.id}", t("next.clear"), t("next.clear_confirm", n=len(pool.photos())),
                     subject=project.id, disabled=busy or not editable):
        pool.clear()
        state.flash(t("next.cleared"))
        st.rerun()


# ---------------------------------------------------------------------------------- the ranking job
def _latest_job(project: UserProject) -> job_queue.Job | None:
    found = [job for job in state.queue().jobs(project.id) if job.kind == JOB_KIND]
    return found[-1] if found else None


def _start(project: UserProject, pool: UserPool, spec: str | None, count: int) -> job_queue.Job:
    """Queue the ranking in its own lane of the device (seconds of work never wait behind a tuning run)."""
    device_key, _ = state.device()
    cache_dir = state.workspace().cache_dir

    def work(context: job_queue.JobContext) -> dict:
        context.phase(Phase.LOADING)
        on_batch = context.counted(Phase.CHECK)

        # spec None: the newest run's file names its own backbone; else the one typed on the page
        return pool.rank(lambda named: BACKBONES.get(named or spec or DEFAULT_BACKBONE, device_key), count=count,
                         cache_dir=cache_dir, cancel=context.cancel, on_batch=on_batch)

    # The user's job (checked and owned, so it stays theirs in another tab), in its own lane like the check
    # before Start: a ranking of seconds never waits behind a tuning run.
    job = project.start_job(state.queue(), work, kind=JOB_KIND, label="next", device=f"{device_key}:next")
    state.claim_job(job.id)
    return job


def _follow(job: job_queue.Job) -> None:
    """Progress while the ranking runs (only this part of the page reruns), then the whole page once."""
    short_job.follow(job, "next")


# ---------------------------------------------------------------------------------- the grid
def _grid(project: UserProject, pool: UserPool, ranking: dict, run, editable: bool) -> None:
    picks = ranking["picks"]
    how = t("next.mode." + ranking["mode"])
    st.markdown(t("next.ranked", n=len(picks), photos=ranking["photos"], how=how))
    if (run.id if run is not None else None) != ranking.get("run_id"):
        st.caption(t("next.stale"))
    if ranking["mode"] == "typical":
        st.caption(t("next.measured_typical"))
    _class_balance(project.counts())
    if not picks:
        st.success(t("next.all_done"), icon=":material/check_circle:")
        return
    classes = project.classes
    if not classes:
        st.caption(t("next.no_classes"))
    for start in range(0, len(picks), COLUMNS):
        for column, pick in zip(st.columns(COLUMNS), picks[start:start + COLUMNS]):
            with column.container(border=True):
                _pick(pool, pick, classes, editable)


def _class_balance(counts: dict[str, int]) -> None:
    """The labelled photos per class, and which class to label first when they are uneven: tuning takes the same
    number from every class, and even classes beat every ranking on the demo task (README, What to label next)."""
    if not counts:
        return
    st.caption(t("next.balance", counts=" · ".join(f"{as_text(name)} {n}" for name, n in counts.items())))
    fewest = min(counts, key=counts.get)
    most = max(counts.values())
    if most >= 2 * counts[fewest] and most - counts[fewest] >= UNEVEN_GAP:
        st.info(t("next.uneven", cls=as_text(fewest), n=counts[fewest], most=most), icon=":material/balance:")


def _pick(pool: UserPool, pick: dict, classes: list[str], editable: bool) -> None:
    sha = pick["sha256"]
    st.image(str(pool.thumbnail_path(sha)), width=140)
    st.text(f"#{pick['rank']} · {pick['name']}")
    st.caption(as_text(reason(pick)))
    row = st.container(horizontal=True)
    for index, class_name in enumerate(classes):
        if row.button(as_text(class_name), key=f"next-label-{sha}-{index}", icon=":material/label:",
                      disabled=not editable, help=t("next.label_help", name=as_text(class_name))):
            report = pool.label(sha, class_name)
            if report.added:
                state.flash(t("next.labelled", name=as_text(pick["name"]), cls=as_text(class_name)))
            for skipped in report.skipped:
                state.flash(t("next.not_labelled", name=as_text(skipped.name), reason=skipped_reason(skipped)),
                            "warning")
            st.rerun()
    if row.button(t("next.skip"), key=f"next-skip-{sha}", icon=":material/skip_next:", type="tertiary",
                  disabled=not editable):
        pool.skip(sha)
        st.rerun()


def reason(pick: dict) -> str:
    """Why this photo is worth labelling, in the session's language (from the pick's kind and numbers)."""
    details = pick.get("details") or {}
    kind = pick["kind"]
    if kind == "typical":
        return t("next.reason.typical", n=pick["group"]) if pick["group"] > 1 else t("next.reason.lone")
    if kind == "typical_more":
        known = int(details.get("labelled_in_group", 0)) + int(details.get("picked_in_group", 0))
        return t("next.reason.typical_more", n=pick["group"], known=known)
    first, probability = details.get("predicted", "?"), float(details.get("probability") or 0.0)
    if kind == "unknown":
        return t("next.reason.unknown", cls=first)
    margin = float(details.get("margin") or 0.0)
    both = dict(a=first, pa=_pct(probability), b=details.get("runner_up", "?"), pb=_pct(probability - margin))
    if margin < HESITATION_MARGIN:
        return t("next.reason.unsure", **both)
    return t("next.reason.least_sure", n=pick["group"], **both)


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"
