"""Run health (engine/run_health.py) and the collapse safeguard (engine/safeguard.py): a run that
learned nothing is reported as such, in the metrics, the prompt file and `dapt tune`'s output."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from dapt_core.engine import run_health
from dapt_core.engine.run_health import assess, describe
from dapt_core.engine.safeguard import CollapseWatch
from dapt_core.engine.safeguard import describe as describe_safeguard

LN3 = math.log(3)


def _history(epochs: int, train_accuracy, ce, spread) -> list[dict]:
    """Per-epoch rows as training.tune writes them; each argument a value or a function of the epoch."""
    def value(v, e):
        return v(e) if callable(v) else v

    return [{"epoch": e, "lr": 0.01, "train_accuracy": value(train_accuracy, e), "ce": value(ce, e),
             "intra": 0.0, "inter": 0.0, "loss": value(ce, e), "text_spread": value(spread, e)}
            for e in range(1, epochs + 1)]


def test_a_collapse_is_caught_and_reported():
    # What the textile users saw: spread 0.33 -> 1e-5, training at chance with the loss of a uniform
    # guess, 600 held-out photos at 0.333.
    history = _history(200, 0.34, LN3 + 0.004, lambda e: 0.28 if e == 1 else 1e-5)
    health = assess(history, n_classes=3, accuracy=0.333, zero_shot_accuracy=0.327, n_test=600,
                    text_spread_zero_shot=0.327, text_spread_tuned=1e-5)
    assert health["status"] == "collapsed"
    codes = [f["code"] for f in health["findings"]]
    assert {"text_embeddings_collapsed", "train_accuracy_at_chance", "loss_of_uniform_guess",
            "accuracy_at_chance"} <= set(codes)
    collapsed = health["findings"][codes.index("text_embeddings_collapsed")]["values"]
    assert collapsed["before"] == pytest.approx(0.327) and collapsed["after"] == pytest.approx(1e-5)
    assert health["advice"][0] == "keep_zero_shot" and "show_the_difference" in health["advice"]
    json.dumps(health)  # JSON-ready as it is
    text = "\n".join(describe(health))
    assert text.startswith("run health: collapsed")
    assert "fell onto one point" in text and "--method zeroshot" in text
    # every code the function can emit has an English sentence for the command line
    assert set(codes) <= set(run_health.MESSAGES) and set(health["advice"]) <= set(run_health.ADVICE_MESSAGES)


def test_training_at_chance_with_a_flat_loss_is_a_collapse_even_with_some_spread_left():
    history = _history(100, 0.33, LN3, 0.05)
    health = assess(history, n_classes=3, accuracy=0.34, zero_shot_accuracy=0.33, n_test=600,
                    text_spread_zero_shot=0.33, text_spread_tuned=0.05)
    assert health["status"] == "collapsed"
    assert "text_embeddings_collapsed" not in [f["code"] for f in health["findings"]]


def test_a_run_that_learned_is_ok_and_gives_no_advice():
    history = _history(200, lambda e: min(0.95, 0.3 + e / 100), lambda e: max(0.2, 1.6 - e / 50), 0.3)
    health = assess(history, n_classes=5, accuracy=0.48, zero_shot_accuracy=0.40, n_test=1000,
                    text_spread_zero_shot=0.25, text_spread_tuned=0.31)
    assert health == {"status": "ok", "findings": [], "advice": []}
    assert describe(health) == ["run health: ok: the tuned model is better than zero-shot and than chance."]


def test_no_gain_and_below_zero_shot_are_told_apart_by_the_noise_of_the_test_set():
    history = _history(50, 0.9, 0.3, 0.3)
    level = assess(history, n_classes=5, accuracy=0.41, zero_shot_accuracy=0.40, n_test=1000,
                   text_spread_zero_shot=0.25, text_spread_tuned=0.3)
    assert level["status"] == "no_gain" and level["findings"][0]["code"] == "no_gain_over_zero_shot"
    below = assess(history, n_classes=5, accuracy=0.30, zero_shot_accuracy=0.40, n_test=1000,
                   text_spread_zero_shot=0.25, text_spread_tuned=0.3)
    assert below["status"] == "no_gain" and "below_zero_shot" in [f["code"] for f in below["findings"]]
    assert "keep_zero_shot" in below["advice"]
    # the same 10-point gap on 20 photos is noise, not a loss
    few = assess(history, n_classes=5, accuracy=0.30, zero_shot_accuracy=0.40, n_test=20,
                 text_spread_zero_shot=0.25, text_spread_tuned=0.3)
    assert "below_zero_shot" not in [f["code"] for f in few["findings"]]


def test_an_overfitted_run_at_chance_on_held_out_photos_is_at_chance_not_collapsed():
    history = _history(200, 1.0, 0.01, 0.4)
    health = assess(history, n_classes=3, accuracy=0.35, zero_shot_accuracy=0.30, n_test=600,
                    text_spread_zero_shot=0.3, text_spread_tuned=0.4)
    assert health["status"] == "at_chance"
    assert "keep_zero_shot" in health["advice"]


def test_zero_shot_has_no_training_to_judge():
    health = assess([], n_classes=3, accuracy=0.6, zero_shot_accuracy=0.6, n_test=300,
                    text_spread_zero_shot=0.3, text_spread_tuned=0.3, trains=False)
    assert health["status"] == "ok"
    at_chance = assess([], n_classes=3, accuracy=0.33, zero_shot_accuracy=0.33, n_test=300, trains=False)
    assert at_chance["status"] == "at_chance" and "keep_zero_shot" not in at_chance["advice"]


def test_the_watch_stops_a_collapse_only_in_the_watched_epochs():
    watch = CollapseWatch(threshold=0.003, watch_epochs=5, warmup_epochs=1)
    rows = _history(8, 0.3, 1.1, lambda e: {1: 0.28, 2: 0.01, 3: 0.004}.get(e, 1e-5))
    assert [watch(rows[:e]) for e in (1, 2, 3)] == [None, None, None]
    assert CollapseWatch(threshold=0.5, watch_epochs=5, warmup_epochs=1)(rows[:1]) is None  # warm-up: not judged
    assert watch(rows[:4]) == "text_embeddings_collapsed" and (watch.epoch, watch.spread) == (4, 1e-5)
    late = CollapseWatch(threshold=0.003, watch_epochs=5)
    assert late(rows[:7]) is None  # after the watched epochs a run is left to finish


def test_the_safeguard_says_what_it_did():
    record = {"action": "zero_shot", "reason": "text_embeddings_collapsed", "requested_method": "dapt",
              "method": "zeroshot", "requested_lr": 0.0085, "lr": None, "reference_spread": 0.327,
              "threshold": 0.00654,
              "runs": [{"method": "dapt", "lr": 0.0085, "epochs_run": 3, "text_spread": 7e-6,
                        "outcome": "collapsed_early"},
                       {"method": "coop", "lr": 0.0085, "epochs_run": 200, "text_spread": 1e-5, "outcome": "collapsed"},
                       {"method": "zeroshot", "lr": None, "epochs_run": 0, "text_spread": None, "outcome": "kept"}]}
    assert describe_safeguard(record) == [
        "safeguard: dapt at lr 0.0085 collapsed: the class text spread fell to 7e-06 by epoch 3 (zero-shot 0.327); "
        "trying CoOp (text prompt only)",
        "safeguard: coop at lr 0.0085 ended collapsed (class text spread 1e-05, zero-shot 0.327); keeping the "
        "zero-shot classifier",
        "safeguard: kept zeroshot"]
    assert describe_safeguard({**record, "action": "none"}) == [] and describe_safeguard(None) == []


def _noise_task(root, per_class: int, seed: int) -> None:
    """Three classes drawn from one distribution: nothing to learn."""
    rng = np.random.default_rng(seed)
    for name in ("alpha", "beta", "gamma"):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(90, 166, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:03d}.png")


def test_a_real_run_on_an_inseparable_task_is_not_reported_as_fine(tiny_spec, tmp_path, capsys):
    """A short `dapt tune` on noise: the metrics, the prompt file and the printout carry the verdict."""
    from dapt_core.cli import main
    from dapt_core.engine import prompt_file

    _noise_task(tmp_path / "noise" / "train", 4, seed=1)
    _noise_task(tmp_path / "noise" / "test", 40, seed=2)
    out, metrics_path = tmp_path / "p.safetensors", tmp_path / "m.json"
    assert main(["tune", str(tmp_path / "noise"), "--backbone", tiny_spec, "--shots", "4", "--epochs", "3",
                 "--method", "coop", "--out", str(out), "--json", str(metrics_path)]) == 0
    metrics = json.loads(metrics_path.read_text())
    health = metrics["health"]
    assert health["status"] in ("at_chance", "collapsed")
    assert "accuracy_at_chance" in [f["code"] for f in health["findings"]] or health["status"] == "collapsed"
    assert "show_the_difference" in health["advice"]
    assert metrics["safeguard"]["action"] in ("none", "zero_shot")  # the safeguard looked at this run
    assert all("text_spread" in row for row in metrics["history"])
    header = prompt_file.load(out).header
    assert header["metrics"]["health"] == health
    assert header["safeguard"] == metrics["safeguard"]
    printed = capsys.readouterr().out
    assert f"run health: {health['status']}" in printed and "advice:" in printed


def test_the_hard_textile_tasks_render_three_classes_at_250_pixels_as_pure_functions(tmp_path):
    from dapt_core.cli import main
    from dapt_core.demo.demo_task import TASKS, TEXTILE_CLASSES, demo_png, render_demo_image

    for task in ("textile", "textile-faint"):
        assert TASKS[task].classes == TEXTILE_CLASSES == ("no defect", "local defect", "global defect")
        for name in TEXTILE_CLASSES:
            image = render_demo_image(0, "train", name, 3, task)
            assert image.shape == (250, 250, 3) and image.dtype == np.uint8
            assert (image == render_demo_image(0, "train", name, 3, task)).all()  # same arguments, same pixels
            assert (image != render_demo_image(0, "train", name, 4, task)).any()
        assert demo_png(0, "test", "local defect", 0, task) == demo_png(0, "test", "local defect", 0, task)
    with pytest.raises(ValueError, match="no class 'scratch'"):
        render_demo_image(0, "train", "scratch", 0, "textile")
    # `dapt demo-data DIR --task textile` offers it (writing all 648 pictures takes ~8 s; not here)
    with pytest.raises(SystemExit):
        main(["demo-data", str(tmp_path), "--task", "no-such-task"])


def test_the_safeguard_falls_back_from_a_collapsing_run_and_leaves_a_healthy_one_alone(
        tiny_backbone, colour_task, monkeypatch):
    import torch

    from dapt_core.data.folders import load_split
    from dapt_core.engine import safeguard
    from dapt_core.engine.methods import TuningConfig
    from dapt_core.engine.training import tune
    from dapt_core.engine.zeroshot import zero_shot_text_features

    split = load_split(str(colour_task), shots=4, seed=1)
    config = TuningConfig(method="dapt", epochs=4, lr=0.01, seed=1)
    zero_shot = zero_shot_text_features(tiny_backbone, split.classnames, config.templates, None)

    # A line no spread stays above: DAPT is stopped after its first epoch at the full rate (the warm-up
    # epoch is not judged), CoOp at the same rate runs to the end and ends "collapsed" too, and the
    # zero-shot classifier is kept.
    monkeypatch.setattr(safeguard, "COLLAPSE_SHARE", 1e9)
    steps = []
    result, record = safeguard.tune_with_safeguard(tiny_backbone, split.classnames, split.train, config,
                                                   zero_shot_text=zero_shot, shots=4,
                                                   on_progress=lambda p: steps.append(p.step))
    assert (record["action"], record["reason"]) == ("zero_shot", "text_embeddings_collapsed")
    assert [(r["method"], r["lr"], r["epochs_run"], r["outcome"]) for r in record["runs"]] == [
        ("dapt", 0.01, 2, "collapsed_early"), ("coop", 0.01, 4, "collapsed"), ("zeroshot", None, 0, "kept")]
    assert (record["requested_method"], record["method"], record["lr"]) == ("dapt", "zeroshot", None)
    assert result.config.method == "zeroshot" and not result.history
    assert steps == sorted(steps)  # progress never goes back when a run is replaced
    json.dumps(record)

    # A line no spread falls below: the run is the unwatched run, step for step.
    monkeypatch.setattr(safeguard, "COLLAPSE_SHARE", 0.0)
    kept, record = safeguard.tune_with_safeguard(tiny_backbone, split.classnames, split.train, config,
                                                 zero_shot_text=zero_shot, shots=4)
    plain = tune(tiny_backbone, split.classnames, split.train, config, shots=4)
    assert record["action"] == "none" and record["method"] == "dapt" and record["lr"] == 0.01
    assert [r["outcome"] for r in record["runs"]] == ["kept"]
    for name, tensor in plain.prompted.prompt_tensors().items():
        assert torch.equal(kept.prompted.prompt_tensors()[name], tensor)


def test_a_zero_shot_fallback_is_what_the_prompt_file_holds_and_says(tiny_backbone, colour_task, tmp_path,
                                                                       monkeypatch):
    from dapt_core.data.folders import load_split
    from dapt_core.engine import prompt_file, safeguard
    from dapt_core.engine.experiment import run_experiment
    from dapt_core.engine.inference import Classifier
    from dapt_core.engine.methods import TuningConfig

    monkeypatch.setattr(safeguard, "COLLAPSE_SHARE", 1e9)  # every run counts as collapsed
    split = load_split(str(colour_task), shots=4, seed=1)
    result = run_experiment(tiny_backbone, split, TuningConfig(method="dapt", epochs=3, lr=0.01, seed=1), shots=4)
    metrics = result.metrics()
    assert metrics["method"] == "zeroshot" and metrics["safeguard"]["requested_method"] == "dapt"
    assert metrics["accuracy"] == metrics["zero_shot_accuracy"]  # what is kept is the zero-shot classifier
    path = result.save_prompt_file(tmp_path / "p.safetensors")
    header = prompt_file.load(path).header
    assert header["method"] == "zeroshot" and header["safeguard"]["action"] == "zero_shot"
    assert header["metrics"]["health"] == metrics["health"]
    assert Classifier.load(path, device="cpu").classnames == split.classnames
    # off (as `dapt bench` runs, with the recipe preset): the run is kept whatever its spread
    plain = run_experiment(tiny_backbone, split, TuningConfig(method="dapt", epochs=3, lr=0.01, seed=1,
                                                              preset="recipe"), shots=4)
    assert plain.metrics()["method"] == "dapt" and plain.metrics()["safeguard"] is None
