"""The progress panel of a short background job: the check before Start, a ranking of unlabelled photos, a drift
check. Only this part of the page polls while the job waits or runs (a whole-page rerun every second would
reset what the user is doing elsewhere on it); when the job ends the whole page reruns once, to show the
result the job kept.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from dapt_core.engine.progress import Phase
from dapt_core.studio import job_queue
from ui.i18n import t
from ui.plain_text import as_text

POLL_SECONDS = 1.0


def follow(job: job_queue.Job, keys: str, ended: Callable[[job_queue.JobSnapshot], None] | None = None) -> None:
    """Show `job`'s place in the queue or its progress, in the strings `<keys>.queued` (place), `.running`
    (step, steps), `.loading` and `.failed` (error). `ended` draws a finished job (done, failed or cancelled)
    inside the panel; without it a failed job shows its error and a finished one nothing."""
    active = job.state in job_queue.ACTIVE_STATES

    @st.fragment(run_every=POLL_SECONDS if active else None)
    def panel():
        snap = job.snapshot()
        if snap.state == job_queue.QUEUED:
            st.info(t(f"{keys}.queued", place=snap.place), icon=":material/hourglass_top:")
        elif snap.state == job_queue.RUNNING:
            progress = snap.progress
            if progress.phase == Phase.CHECK and progress.total_steps:
                st.progress(progress.fraction, text=t(f"{keys}.running", step=progress.step,
                                                      steps=progress.total_steps))
            else:
                st.progress(0.0, text=t(f"{keys}.loading"))
        else:
            if active:
                st.rerun()  # the whole page: it reads what the job kept and stops polling
            if ended is not None:
                ended(snap)
            elif snap.state == job_queue.FAILED:
                st.error(t(f"{keys}.failed", error=as_text(snap.error or "")), icon=":material/error:")

    panel()
