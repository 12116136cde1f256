import pytest

from dapt_core.cli import main
from dapt_core.data.folders import load_split
from dapt_core.engine.methods import TuningConfig
from dapt_core.engine.selection import (
    choose_learning_rate,
    cross_validated_learning_rate,
    fold_indices,
    quick_learning_rate,
    scaled_learning_rate,
)
from dapt_core.errors import ConfigError


def test_folds_are_stratified_disjoint_and_seeded(colour_task):
    split = load_split(colour_task, shots=6, seed=1)
    parts = fold_indices(split.train, 2, seed=1)
    assert sorted(i for part in parts for i in part) == list(range(len(split.train)))
    for part in parts:
        assert sorted(split.train[i].label for i in part) == [0] * 3 + [1] * 3 + [2] * 3
    assert fold_indices(split.train, 2, seed=1) == parts
    assert fold_indices(split.train, 2, seed=2) != parts


def test_cross_validation_prefers_the_rate_that_learns(tiny_backbone, colour_task):
    split = load_split(colour_task, shots=6, seed=1)
    config = TuningConfig(method="coop", epochs=8, batch_size=4)
    updates = []
    selection = cross_validated_learning_rate(tiny_backbone, split.classnames, split.train, config,
                                     grid=(0.002, 500.0), on_progress=updates.append)
    by_lr = {s["lr"]: s for s in selection.scores}
    assert selection.lr == 0.002
    assert by_lr[0.002]["accuracy"] > by_lr[500.0]["accuracy"]
    assert updates[-1].step == updates[-1].total_steps and updates[-1].phase == "select"


def test_too_few_images_per_class_for_the_folds(tiny_backbone, colour_task):
    split = load_split(colour_task, shots=1, seed=1)
    with pytest.raises(ConfigError, match="--lr"):
        cross_validated_learning_rate(tiny_backbone, split.classnames, split.train, TuningConfig(method="coop"))


def test_cli_lr_auto_records_the_choice(tiny_spec, colour_task, tmp_path):
    import json
    out, metrics = tmp_path / "p.safetensors", tmp_path / "m.json"
    assert main(["tune", str(colour_task), "--backbone", tiny_spec, "--method", "coop", "--shots", "4",
                 "--epochs", "2", "--lr", "auto", "--lr-grid", "0.002", "0.2", "--out", str(out),
                 "--json", str(metrics)]) == 0
    data = json.loads(metrics.read_text())
    assert [s["lr"] for s in data["lr_selection"]["scores"]] == [0.002, 0.2]
    assert data["config"]["lr"] in (0.002, 0.2)


def test_quick_selection_picks_a_rate_that_learns_at_a_fraction_of_the_cost(tiny_backbone, colour_task):
    split = load_split(colour_task, shots=8, seed=1)
    config = TuningConfig(method="coop", epochs=40, batch_size=4)
    updates = []
    # Candidates 20, 100 and 500: the two larger ones wreck the prompts (a third of the held-out
    # images right, chance), 20 still separates the colours.
    selection = quick_learning_rate(tiny_backbone, split.classnames, split.train, config, base=20.0,
                                    on_progress=updates.append)
    by_lr = {round(s["lr"], 6): s for s in selection.scores}
    assert sorted(by_lr) == [20.0, 100.0, 500.0]
    assert selection.lr == pytest.approx(20.0)
    assert by_lr[20.0]["accuracy"] > by_lr[500.0]["accuracy"]
    # Three short runs (a fifth of the epochs) on three quarters of the shots: under half a full run's steps.
    full_run_steps = 40 * (len(split.train) // 4)
    assert updates[-1].step == updates[-1].total_steps < 0.5 * full_run_steps
    assert updates[-1].phase == "select"


def test_quick_selection_starts_from_the_recipe_rate_scaled_to_the_logit_scale(tiny_backbone, colour_task):
    split = load_split(colour_task, shots=8, seed=1)
    scale = float(tiny_backbone.model.logit_scale.exp())
    assert scaled_learning_rate(tiny_backbone) == pytest.approx(0.002 * 100 / scale)
    selection = choose_learning_rate("quick", tiny_backbone, split.classnames, split.train,
                                     TuningConfig(method="coop", epochs=5, batch_size=4))
    assert [s["lr"] for s in selection.scores] == pytest.approx([0.2 / scale, 5 * 0.2 / scale, 25 * 0.2 / scale])
    assert selection.how == "quick" and selection.seconds > 0
    # With a single image in a class nothing can be held out: the scaled rate is kept, nothing runs.
    one = load_split(colour_task, shots=1, seed=1)
    kept = quick_learning_rate(tiny_backbone, one.classnames, one.train, TuningConfig(method="coop"))
    assert kept.lr == pytest.approx(0.2 / scale) and kept.scores == []


def test_quick_selection_trains_past_the_warm_up_even_for_a_short_run(tiny_backbone, colour_task):
    # A fifth of 5 epochs is 1, the warm-up epoch at 1e-5 whatever the candidate: the runs go one epoch further.
    split = load_split(colour_task, shots=4, seed=1)
    updates = []
    config = TuningConfig(method="coop", epochs=5, batch_size=4)
    quick_learning_rate(tiny_backbone, split.classnames, split.train, config, on_progress=updates.append)
    assert {u.epochs for u in updates} == {2} and max(u.epoch for u in updates) == 2


def test_cli_tune_scales_the_rate_to_the_backbone_by_default_and_tries_rates_when_asked(tiny_spec, colour_task,
                                                                                        tiny_backbone, tmp_path):
    import json
    out, metrics = tmp_path / "p.safetensors", tmp_path / "m.json"
    assert main(["tune", str(colour_task), "--backbone", tiny_spec, "--method", "coop", "--shots", "4",
                 "--epochs", "5", "--out", str(out), "--json", str(metrics)]) == 0
    data = json.loads(metrics.read_text())
    assert data["lr_selection"]["how"] == "scaled" and data["lr_selection"]["scores"] == []
    expected = 0.002 * 100 / float(tiny_backbone.model.logit_scale.exp())
    assert data["config"]["lr"] == pytest.approx(expected)
    assert data["config"]["preset"] == "inspection"
    quick = tmp_path / "q.json"
    assert main(["tune", str(colour_task), "--backbone", tiny_spec, "--method", "coop", "--shots", "4",
                 "--epochs", "5", "--lr", "quick", "--out", str(out), "--json", str(quick)]) == 0
    data = json.loads(quick.read_text())
    assert data["lr_selection"]["how"] == "quick" and len(data["lr_selection"]["scores"]) == 3
    assert data["config"]["lr"] in [s["lr"] for s in data["lr_selection"]["scores"]]
    recipe = tmp_path / "r.json"
    assert main(["tune", str(colour_task), "--backbone", tiny_spec, "--method", "coop", "--shots", "4",
                 "--epochs", "2", "--preset", "recipe", "--out", str(tmp_path / "r.safetensors"),
                 "--json", str(recipe)]) == 0
    data = json.loads(recipe.read_text())
    assert "lr_selection" not in data and data["config"]["lr"] == 0.002 and data["config"]["preset"] == "recipe"
