"""Watching a job must stay cheap for the server that trains it: no full garbage collection per
progress poll, a thinned loss chart built once per job for every tab, and the progress shown in
the very run that pressed Start. (How fast, is measured by benchmarks/app_vs_library.py.)"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from conftest import write_colour_task  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from dapt_core.engine.progress import Progress  # noqa: E402
from dapt_core.studio import jobs  # noqa: E402
from dapt_core.studio.workspace import Workspace  # noqa: E402
from ui import charts, widgets  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_streamlit_does_not_collect_garbage_after_every_rerun(monkeypatch):
    """Streamlit's default runs gc.collect(2) after each script run (each progress poll of each
    tab); in this process that held the GIL for seconds and starved training."""
    from streamlit import config

    monkeypatch.chdir(ROOT)  # the project's .streamlit/config.toml, as `streamlit run app.py` reads it
    config.get_config_options(force_reparse=True)
    try:
        assert config.get_option("runner.postScriptGC") is False
    finally:
        monkeypatch.undo()
        config.get_config_options(force_reparse=True)


def _history(n: int) -> list[dict]:
    return [{"step": i + 1, "epoch": 1 + i // 10, "loss": float(i % 7), "ce": 1.0, "intra": float(i),
             "inter": math.nan, "train_accuracy": 0.5} for i in range(n)]


def test_a_long_history_is_drawn_from_few_averaged_points():
    history = _history(2000)
    thinned = charts.thin_history(history, 150)
    assert len(thinned) <= 150
    assert thinned[-1]["step"] == 2000  # the curve reaches the latest step
    group = 2000 // len(thinned) + (2000 % len(thinned) > 0)
    assert thinned[0]["intra"] == pytest.approx(sum(range(group)) / group)  # a group's mean, not a sample
    assert thinned[0]["inter"] is None  # a term without values stays empty
    assert charts.thin_history(history[:40], 150) == history[:40]  # short curves are drawn as they are


def _running_job(steps: int) -> jobs.Job:
    request = jobs.TuneRequest("/nowhere", "p", "demo", {"method": "dapt", "beta_v": 10.0, "beta_t": 0.01})
    job = jobs.Job(lambda context: None, label="tune:dapt", device="cpu", project_id="p", request=request)
    for step in range(1, steps + 1):
        job._record(Progress("train", 1, 1, step, 5000, loss=1.0, ce=1.0, intra=0.1, inter=0.1))
    return job


def test_the_live_chart_is_built_once_for_every_tab_and_refreshed_after_a_while(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(widgets.time, "monotonic", lambda: clock[0])
    live = widgets._LiveCharts()
    job = _running_job(1500)
    first = live.figure(job.snapshot(), "en")
    assert all(len(trace.x) <= widgets.CHART_POINTS for trace in first.data)
    assert live.figure(job.snapshot(), "en") is first  # a second tab gets the same figure
    job._record(Progress("train", 1, 1, 1501, 5000, loss=1.0, ce=1.0))
    clock[0] += widgets.CHART_SECONDS / 2
    assert live.figure(job.snapshot(), "en") is first  # training moved on, but not long ago
    assert live.figure(job.snapshot(), "ja") is not first  # each language has its own wording
    clock[0] += widgets.CHART_SECONDS
    refreshed = live.figure(job.snapshot(), "en")
    assert refreshed is not first and refreshed.data[0].x[-1] == 1501


def test_progress_shows_in_the_run_that_pressed_start_and_the_loss_curve_follows(tmp_path, monkeypatch):
    """No waiting for the next poll: the page that queued the job draws its progress card."""
    monkeypatch.setenv("DAPT_WORKSPACE", str(tmp_path / "workspace"))
    task = write_colour_task(tmp_path / "colours", per_class=4)
    project = Workspace(tmp_path / "workspace").create_project("Colours")
    for folder in sorted(task.iterdir()):
        project.add_class(folder.name)
        project.add_image_paths(folder.name, sorted(folder.glob("*.png")))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/2_tune.py")
    at.run()
    at.number_input(key="tune-shots").set_value(2)
    at.number_input(key="tune-epochs").set_value(2000)  # still running when the page is drawn
    at.number_input(key="tune-batch-size").set_value(2)
    at.run()
    assert not at.get("progress")
    at.button(key="start-tuning").click()
    at.run()
    try:
        assert not at.exception, [e.value for e in at.exception]
        [job] = jobs.get_queue().jobs(project.id, active_only=True)
        assert at.get("progress"), "no progress bar in the run that started the job"
        assert not at.get("plotly_chart")  # nothing trained yet, nothing to draw
        deadline = time.time() + 120
        while not job.snapshot().history and time.time() < deadline:
            time.sleep(0.2)
        at.run()
        assert job.snapshot().state == jobs.RUNNING
        [chart] = at.get("plotly_chart")  # the live loss curve, in its own slower fragment
        assert chart.proto.id and "Total loss" in chart.proto.spec
    finally:
        for job in jobs.get_queue().jobs(project.id, active_only=True):
            jobs.get_queue().cancel(job.id)
            job.wait(30)
