"""The time estimate before Start (dapt_core.engine.estimate): a few real steps, counted, close to the run."""

from __future__ import annotations

import time

import pytest
from conftest import write_colour_task

from dapt_core.data.folders import load_split
from dapt_core.engine.backbone import load_backbone
from dapt_core.engine.estimate import TIMINGS_FILE, estimate_run
from dapt_core.engine.experiment import run_experiment
from dapt_core.engine.methods import TuningConfig


def _quiet_process() -> None:
    """An app test earlier in the same process may have left the map warm-up or a job running: both compete
    for the two cores and would skew the timings compared below."""
    from dapt_core.studio import job_queue, projection

    warmup = projection.warmup_status()
    if warmup.state == "running":
        warmup.wait(180)
    for job in job_queue.get_queue().jobs(active_only=True):
        job.wait(300)


def test_the_estimate_of_a_short_run_is_within_30_percent_and_kept_for_next_time(tmp_path):
    _quiet_process()
    task = write_colour_task(tmp_path / "colours", per_class=24, size=96)
    backbone = load_backbone("demo", "cpu")
    split = load_split(task, shots=16, seed=1)
    config = TuningConfig(method="dapt", epochs=30, lr=0.01, seed=1)
    cache = tmp_path / "cache"
    estimate = estimate_run(backbone, split, config, shots=16, cache_dir=cache)
    assert estimate.measured_now and (cache / TIMINGS_FILE).is_file()
    assert estimate.counts["steps"] == 30  # 48 photos, batches of 32, the partial one dropped
    started = time.perf_counter()
    result = run_experiment(backbone, split, config, shots=16, cache_dir=cache, safeguard=False)
    actual = time.perf_counter() - started
    assert 0.7 * actual <= estimate.total <= 1.3 * actual, (estimate.to_dict(), actual)
    assert 0.7 * result.tuning.train_seconds <= estimate.training <= 1.3 * result.tuning.train_seconds
    again = estimate_run(backbone, split, config, shots=16, cache_dir=cache, measure=False)
    assert again is not None and not again.measured_now and again.step_seconds == estimate.step_seconds
    # The run kept the test photos' frozen features: the next evaluation encodes only the tuned side.
    assert estimate.counts["frozen_features_cached"] == 0
    assert again.counts["frozen_features_cached"] == len(split.test)
    assert again.seconds["evaluate"] == pytest.approx(estimate.seconds["evaluate"] / 2)


def test_without_measured_times_the_page_gets_nothing_rather_than_a_guess(tmp_path):
    task = write_colour_task(tmp_path / "colours", per_class=6, size=48)
    split = load_split(task, shots=4, seed=1)
    assert estimate_run(load_backbone("demo", "cpu"), split, TuningConfig(epochs=2), shots=4,
                        cache_dir=tmp_path / "empty", measure=False) is None


def test_a_rerun_of_the_estimate_reads_no_test_photo_again_until_one_changes(tmp_path, monkeypatch):
    from dapt_core.data import images
    from dapt_core.engine import estimate

    photo = tmp_path / "a.png"
    photo.write_bytes(b"first contents")
    read = []
    real = images.sha256_of
    monkeypatch.setattr(images, "sha256_of", lambda source: read.append(source) or real(source))
    first = estimate._sha256_of_file(photo)
    assert estimate._sha256_of_file(photo) == first and len(read) == 1
    photo.write_bytes(b"other contents, longer")
    assert estimate._sha256_of_file(photo) != first and len(read) == 2
