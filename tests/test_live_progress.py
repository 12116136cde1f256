"""Watching a job must stay cheap for the server that trains it: no full garbage collection per
progress poll, a thinned loss chart built once per job for every tab, and the progress shown in
the very run that pressed Start. (How fast, is measured by benchmarks/app_vs_library.py.)"""

from __future__ import annotations

import base64
import math
import os
import re
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from conftest import write_colour_task  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from dapt_core.studio import job_queue  # noqa: E402
from dapt_core.studio.workspace import Workspace  # noqa: E402
from ui import charts, live_chart, nav, widgets  # noqa: E402

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


def test_the_live_chart_draws_each_term_up_to_the_latest_step_and_breaks_where_a_value_is_missing():
    history = charts.thin_history(_history(1500), widgets.CHART_POINTS)
    history[10]["ce"] = None  # a step whose loss was not finite
    svg = live_chart.loss_chart_svg(charts.loss_series(history, 10.0, 0.01, lang="en"))
    paths = re.findall(r'<path d="([^"]+)" fill="none" stroke="(#[0-9a-f]{6})"', svg)
    assert len(paths) == 3  # total, cross-entropy, intra; inter-dispersion has no values in this history
    intra, ce, total = (d for d, _ in paths)  # the total drawn last, on top
    assert total.count("M") == 1 and ce.count("M") == 2  # the missing value breaks that curve only
    xs = [float(point.split(",")[0]) for point in re.split("[ML]", total) if point]
    assert len(xs) == len(history) and xs[-1] == live_chart.WIDTH - live_chart.RIGHT  # ends at the latest step
    assert len({colour for _, colour in paths}) == 3
    assert ">Step<" in svg
    chart = live_chart.loss_chart_html(history, 10.0, 0.01, lang="en")
    for label in ("Total loss", "Cross-entropy", "β 10 × intra-dispersion"):
        assert label in chart  # the legend
    assert "inter-dispersion" not in chart  # no values, no line: the legend names only what is drawn
    picture = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', chart).group(1)
    shown, hidden = live_chart.visible_series(charts.loss_series(history, 10.0, 0.01, lang="en"))
    assert [line.name for line in hidden] == ["Cross-entropy"]  # 1.0 beside a total of about 3, on a 0-15000 scale
    assert base64.b64decode(picture).decode() == live_chart.loss_chart_svg(shown)
    assert "損失の合計" in live_chart.loss_chart_html(history, 10.0, 0.01, lang="ja")
    assert live_chart.loss_chart_html(history[:1], 10.0, 0.01) == ""  # one point is not a curve yet


def test_the_live_legend_names_only_the_lines_that_can_be_seen():
    """With the recipe's betas the weighted dispersion terms are ~1% of the loss: the total covers
    the cross-entropy, and the two terms lie on each other near zero. Two lines are drawn, and
    the legend lists those two and says which ones lie under them."""
    history = [{"step": i + 1, "loss": 2.0 - i / 100, "ce": 1.99 - i / 100, "intra": 0.001, "inter": 0.5}
               for i in range(100)]
    chart = live_chart.loss_chart_html(history, 10.0, 0.01, lang="en")
    picture = base64.b64decode(re.search(r'base64,([^"]+)"', chart).group(1)).decode()
    assert len(re.findall(r"<path ", picture)) == 2
    legend = chart[:chart.index("<img")]
    assert legend.count("display:inline-block") == 2  # two colour keys: total loss and β 10 × intra
    assert "Total loss" in legend and "β 10 × intra-dispersion" in legend
    assert "too close to see: Cross-entropy, β 0.01 × inter-dispersion" in legend
    assert "表示中の線と重なり見えないもの" in live_chart.loss_chart_html(history, 10.0, 0.01, lang="ja")


def test_chart_ticks_are_round_numbers_that_cover_the_values():
    assert live_chart.nice_ticks(0.13, 2.87) == [0.0, 1.0, 2.0, 3.0]
    assert live_chart.nice_ticks(1, 1500) == [0, 500, 1000, 1500]
    ticks = live_chart.nice_ticks(-0.031, -0.0102)
    assert ticks[0] <= -0.031 and ticks[-1] >= -0.0102 and len(ticks) <= 6


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
    at.switch_page(nav.TUNE.path)
    at.run()
    at.number_input(key="tune-shots").set_value(2)
    at.number_input(key="tune-epochs").set_value(2000)  # still running when the page is drawn
    at.number_input(key="tune-batch-size").set_value(2)
    at.run()
    for check in job_queue.get_queue().jobs(project.id, active_only=True):  # the check before Start, seconds
        check.wait(60)
    at.run()
    assert not at.get("progress")
    at.button(key="start-tuning").click()
    at.run()
    try:
        assert not at.exception, [e.value for e in at.exception]
        [job] = job_queue.get_queue().jobs(project.id, active_only=True)
        assert at.get("progress"), "no progress bar in the run that started the job"
        assert not _loss_charts(at)  # nothing trained yet, nothing to draw
        deadline = time.time() + 120
        while len(job.snapshot().history) < 2 and time.time() < deadline:  # a curve needs two points
            time.sleep(0.2)
        at.run()
        assert job.snapshot().state == job_queue.RUNNING
        [chart] = _loss_charts(at)  # the live loss curve, in the progress card
        assert "Total loss" in chart
    finally:
        for job in job_queue.get_queue().jobs(project.id, active_only=True):
            job_queue.get_queue().cancel(job.id)
            job.wait(30)


def _loss_charts(at) -> list[str]:
    return [e.proto.body for e in at.get("html") if "image/svg+xml" in e.proto.body]
