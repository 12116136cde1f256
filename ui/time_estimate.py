"""The Tune page's time estimate before Start (dapt_core.engine.estimate): from step times this machine
measured before, at once; else after a click, since measuring takes a few real training steps."""

from __future__ import annotations

import streamlit as st

from dapt_core.engine.estimate import estimate_run
from dapt_core.engine.methods import TuningConfig
from dapt_core.errors import DaptError
from ui import state
from ui.i18n import t
from ui.widgets import duration


def time_estimate_section(backbone, split, settings: dict, shots: int, lr_mode: str, good_class: str | None) -> None:
    try:
        config = TuningConfig(**{key: value for key, value in settings.items() if value is not None})
    except DaptError:
        return  # Start says what is wrong with the settings
    good = split.classnames.index(good_class) if good_class in split.classnames else None
    choice = None if lr_mode == "fixed" else lr_mode
    options = {"shots": shots, "lr_choice": choice, "good": good}
    estimate = estimate_run(backbone, split, config, measure=False, **options)
    if estimate is None:
        busy = any(job.state == "running" for job in state.queue().jobs(active_only=True))
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
