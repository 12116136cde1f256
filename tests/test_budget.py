"""A time budget (dapt_core.engine.budget): the schedule that fits, and a run that ends within it."""

from __future__ import annotations

import time

import pytest
from conftest import write_colour_task

from dapt_core.data.folders import load_split
from dapt_core.engine.backbone import load_backbone
from dapt_core.engine.budget import plan_budget
from dapt_core.engine.estimate import Estimate, estimate_run
from dapt_core.engine.methods import TuningConfig, learning_rate
from dapt_core.engine.training import OUT_OF_TIME, tune
from dapt_core.engine.tuning_run import tune_and_evaluate
from dapt_core.errors import ConfigError


def _estimate(train: float, once: float, epochs: int) -> Estimate:
    return Estimate({"decode": once / 2, "train": train, "evaluate": once / 2}, {"epochs": epochs}, 0.1, 0.01, True)


def test_a_budget_keeps_the_epochs_that_fit_and_the_whole_run_where_it_fits():
    # 200 epochs of 3 s each plus 60 s paid once: 11 minutes in all.
    estimate = _estimate(train=600.0, once=60.0, epochs=200)
    whole = plan_budget(estimate, 15)
    assert not whole.shortened and whole.epochs == 200
    half = plan_budget(estimate, 5.5)  # 330 s: 0.98 * 330 - 60 = 263.4 s of epochs -> 87 epochs
    assert half.shortened and half.epochs == 87
    assert half.planned_seconds <= 5.5 * 60
    assert "87 of the recipe's 200 epochs" in half.describe()


def test_a_budget_too_short_for_any_useful_run_says_how_much_is_needed():
    with pytest.raises(ConfigError, match=r"too short.*at least 2 minutes"):
        plan_budget(_estimate(train=600.0, once=90.0, epochs=200), 1)
    with pytest.raises(ConfigError, match="positive"):
        plan_budget(_estimate(train=600.0, once=60.0, epochs=200), 0)


def test_the_schedule_is_laid_over_the_shortened_run():
    # The cosine reaches (nearly) zero at the last epoch of the shortened run, not the recipe's.
    assert learning_rate(39, 0.002, 40) < 0.01 * 0.002
    assert learning_rate(39, 0.002, 200) > 0.9 * 0.002


def test_a_deadline_stops_training_after_the_epoch_that_would_run_past_it(tmp_path):
    task = write_colour_task(tmp_path / "colours", per_class=12, size=64)
    backbone = load_backbone("demo", "cpu")
    split = load_split(task, shots=8, seed=1)
    result = tune(backbone, split.classnames, split.train, TuningConfig(method="coop", epochs=50, lr=0.01),
                  deadline=time.perf_counter() + 1.0)
    assert result.stopped == OUT_OF_TIME
    assert 1 <= len(result.history) < 50


def test_a_run_with_a_budget_ends_within_it_and_records_the_plan(tmp_path):
    task = write_colour_task(tmp_path / "colours", per_class=24, size=96)
    backbone = load_backbone("demo", "cpu")
    split = load_split(task, shots=16, seed=1)
    config = TuningConfig(method="dapt", epochs=400, lr=0.01, seed=1)
    cache = tmp_path / "cache"
    estimate = estimate_run(backbone, split, config, shots=16, cache_dir=cache)
    budget_minutes = min(0.5, 0.5 * estimate.total / 60)  # well under the whole run
    run = tune_and_evaluate(backbone, split, config, shots=16, budget_minutes=budget_minutes, estimate=estimate,
                            cache_dir=cache)
    assert 0.8 * 60 * budget_minutes <= run.seconds <= 1.1 * 60 * budget_minutes, (run.seconds, run.budget.to_dict())
    assert run.budget.shortened and run.result.tuning.epochs < 400  # the plan, corrected after its first fifth
    record = run.metrics()["budget"]
    assert record["minutes"] == budget_minutes and record["actual_seconds"] == run.seconds
    assert run.result.metrics()["epochs"] == record["epochs_after_replanning"] == run.result.tuning.epochs


def test_a_replan_after_the_first_tenth_lays_the_schedule_over_the_new_epoch_count(tmp_path):
    task = write_colour_task(tmp_path / "colours", per_class=12, size=64)
    backbone = load_backbone("demo", "cpu")
    split = load_split(task, shots=8, seed=1)
    asked = []

    def replan(done, seconds_per_epoch):
        asked.append((done, seconds_per_epoch))
        return 30  # the run turned out faster than planned: more epochs fit

    config = TuningConfig(method="coop", epochs=10, lr=0.01)
    result = tune(backbone, split.classnames, split.train, config, replan=replan)
    assert [done for done, _ in asked] == [config.warmup_epochs + 2] and asked[0][1] > 0
    assert result.epochs == 30 and len(result.history) == 30
    assert result.history[-1]["lr"] == pytest.approx(learning_rate(29, 0.01, 30))  # the cosine over 30, not 10
