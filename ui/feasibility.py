"""The Tune page's check before Start: can the chosen backbone tell the project's classes apart at all?

The check (dapt_core.engine.feasibility) runs as a background job in the device queue, so the page never
waits on it, and starts by itself for the backbone, shots and seed on the page. Its result is kept in the
workspace (FeasibilityRequest.cached), so a refresh or a server restart shows it at once. A check still
waiting in the queue for settings the user has since changed is cancelled.
"""

from __future__ import annotations

import streamlit as st

from dapt_core.errors import DaptError
from dapt_core.studio import job_queue, jobs
from dapt_core.studio.access import Action
from dapt_core.studio.workspace import Project
from ui import short_job, state
from ui.i18n import error_text, t
from ui.plain_text import as_text
from ui.widgets import isolated

BOXES = {"clear": (st.success, ":material/check_circle:"), "partial": (st.info, ":material/info:"),
         "near_chance": (st.warning, ":material/warning:")}
_MINE = "_feasibility_job"  # the id of the check this session last asked for


def feasibility_section(project: Project, spec: str, device_key: str, shots: int, seed: int, split,
                        backbone_ready: bool) -> None:
    """The section, drawn where it is called (above Start); a failure in it leaves the rest of the page."""
    st.subheader(t("feas.title"))
    with isolated(t("feas.title")):
        _section(project, spec, device_key, shots, seed, split, backbone_ready)


def _section(project: Project, spec: str, device_key: str, shots: int, seed: int, split, backbone_ready: bool):
    if split is None or not spec or not backbone_ready:
        st.caption(t("feas.need_setup"))
        return
    per_class = [0] * len(split.classnames)
    for item in split.train:
        per_class[item.label] += 1
    if min(per_class) < 2:
        st.caption(t("feas.too_few"))
        return
    request = jobs.FeasibilityRequest(str(state.workspace().root), project.id, spec, shots=shots, seed=seed,
                                      device=device_key)
    try:
        request.prepare(split)
    except DaptError as error:
        st.error(t("feas.failed", error=error_text(error, markdown=True)), icon=":material/error:")
        return
    result = request.cached()
    if result is not None:
        show_result(result)
        return
    job = _job_for(request)
    if job is None:
        if not project.may(Action.TUNE):  # a viewer starts no jobs, this one included
            st.caption(t("feas.not_allowed"))
            return
        job = _start(project, request)
    _follow(job, request)


def _job_for(request: jobs.FeasibilityRequest) -> job_queue.Job | None:
    """The latest check of the same photos, backbone and good class, from any session (a cancelled one
    does not count: it was cancelled because its session moved on, not because it cannot run)."""
    found = [job for job in state.queue().jobs(request.project_id)
             if job.kind == job_queue.JobKind.CHECK and getattr(job.request, "key", None) == request.key
             and job.state != job_queue.CANCELLED]
    return found[-1] if found else None


def _start(project, request: jobs.FeasibilityRequest) -> job_queue.Job:
    previous = state.queue().get(st.session_state.get(_MINE) or "")
    if previous is not None and previous.state == job_queue.QUEUED:  # for settings no longer on the page
        state.queue().cancel(previous.id)
    job = project.start_job(state.queue(), request)  # the user's, like their runs
    state.claim_job(job.id)
    st.session_state[_MINE] = job.id
    return job


def _follow(job: job_queue.Job, request: jobs.FeasibilityRequest) -> None:
    """Progress while the check runs (only this part of the page reruns), then the result."""

    def ended(snap: job_queue.JobSnapshot) -> None:
        if snap.state == job_queue.DONE:
            show_result(request.cached() or snap.result)
            return
        if snap.state == job_queue.FAILED:
            st.error(t("feas.failed", error=as_text(snap.error or "")), icon=":material/error:")
        else:
            st.caption(t("feas.cancelled"))
        if st.button(t("feas.run_again"), key="feasibility-again", icon=":material/refresh:"):
            _start(request)
            st.rerun()

    short_job.follow(job, "feas", ended)


def _names_as_text(params: dict) -> dict:
    """A result's words for Markdown: its text values (class names) as typed (ui.plain_text)."""
    return {key: as_text(value) if isinstance(value, str) else value for key, value in params.items()}


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def show_result(result: dict) -> None:
    """The check's result in words: accuracy against chance, the pairs mixed up, good vs defective, advice."""
    low, high = result["interval"]
    box, icon = BOXES[result["level"]]
    box(t("feas.summary", n=result["photos"], accuracy=_pct(result["accuracy"]), chance=_pct(result["chance"]),
          low=_pct(low), high=_pct(high), level=t(f"feas.level.{result['level']}")), icon=icon)
    if result["chance_rule"] == "uniform":
        st.caption(t("feas.chance_uniform", classes=len(result["classnames"])))
    else:
        st.caption(t("feas.chance_majority", name=as_text(result["chance_class"])))
    if result["confused_pairs"]:
        st.markdown(t("feas.pairs") + "\n" + "\n".join(f"- {t('feas.pair', **_names_as_text(pair))}"
                                                         for pair in result["confused_pairs"]))
    pass_fail = result.get("good_vs_defective")
    if pass_fail is not None:
        escapes, overkill = pass_fail["defective_called_good"], pass_fail["good_called_defective"]
        pf_low, pf_high = pass_fail["interval"]
        text = t("feas.pass_fail", good=as_text(pass_fail["good_class"]), accuracy=_pct(pass_fail["accuracy"]),
                 low=_pct(pf_low), high=_pct(pf_high), level=t(f"feas.level.{pass_fail['level']}"),
                 escapes=escapes["count"], defective=escapes["of"], overkill=overkill["count"], goods=overkill["of"])
        if pass_fail["level"] == "near_chance":
            st.warning(text, icon=":material/warning:")
        else:
            st.markdown(text)
    if result.get("zero_shot_accuracy") is not None:
        st.caption(t("feas.zero_shot", accuracy=_pct(result["zero_shot_accuracy"])))
    if result.get("advice"):
        st.markdown(t("feas.try") + "\n" + "\n".join(f"- {t('feas.advice.' + a['code'], **_names_as_text(a['params']))}"
                                                      for a in result["advice"]))
    with st.expander(t("feas.details"), icon=":material/help:"):
        st.caption(t("feas.method", seconds=f"{result.get('seconds', 0):.1f}"))
        st.dataframe([{t("common.class"): name, t("feas.col_photos"): result["photos_per_class"][name],
                       t("feas.col_accuracy"): _pct(accuracy)} for name, accuracy in result["per_class"].items()],
                     hide_index=True, width="stretch")
