"""The Tune page's time estimate before Start (dapt_core.engine.estimate): from step times this machine
measured before, at once; else after a click, since measuring takes a few real training steps."""

from __future__ import annotations

import streamlit as st

from dapt_core.engine.budget import plan_budget
from dapt_core.engine.estimate import estimate_run
from dapt_core.engine.methods import TuningConfig
from dapt_core.errors import DaptError
from dapt_core.studio import job_queue
from ui import state
from ui.i18n import t
from ui.widgets import duration, show_error


def time_estimate_section(backbone, split, settings: dict, shots: int, lr_mode: str, good_class: str | None,
                          budget_minutes: float | None = None) -> None:
    try:
        config = TuningConfig(**{key: value for key, value in settings.items() if value is not None})
    except DaptError:
        return  # Start says what is wrong with the settings
    good = split.classnames.index(good_class) if good_class in split.classnames else None
    choice = None if lr_mode == "fixed" else lr_mode
    # The workspace's cache folder, where the tuning job looks for these timings too (its run card then shows
    # the estimate against the actual time).
    options = {"shots": shots, "lr_choice": choice, "good": good, "cache_dir": state.workspace().cache_dir}
    estimate = estimate_run(backbone, split, config, measure=False, **options)
    if estimate is None:
        busy = any(job.state == job_queue.RUNNING for job in state.queue().jobs(active_only=True))
        if st.button(t("est.measure"), key="estimate-time", icon=":material/timer:", disabled=busy,
                     help=t("est.busy") if busy else t("est.measure_help")):
            with st.spinner(t("est.measuring")):
                estimate = estimate_run(backbone, split, config, measure=True, **options)
    if estimate is None:
        return
    parts = estimate.seconds
    st.info(t("est.result", total=duration(estimate.total), train=duration(parts.get("train", 0)),
              evaluate=duration(parts.get("evaluate", 0)),
              other=duration(estimate.total - parts.get("train", 0) - parts.get("evaluate", 0)),
              steps=estimate.counts["steps"], step=f"{estimate.step_seconds:.2f}"), icon=":material/timer:")
    if budget_minutes is None or not config.trains:
        return
    try:
        plan = plan_budget(estimate, budget_minutes, warmup_epochs=config.warmup_epochs)
    except DaptError as error:
        show_error(error)  # too short: it says how many minutes would do
        return
    if plan.shortened:
        st.info(t("est.budget_plan", budget=duration(60 * budget_minutes), epochs=plan.epochs, full=plan.full_epochs,
                  planned=duration(plan.planned_seconds)), icon=":material/avg_pace:")
    else:
        st.caption(t("est.budget_fits", budget=duration(60 * budget_minutes)))
