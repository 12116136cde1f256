import pytest

from dapt_core.cli import main
from dapt_core.data.folders import load_split
from dapt_core.engine.methods import TuningConfig
from dapt_core.engine.selection import fold_indices, select_learning_rate
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
    selection = select_learning_rate(tiny_backbone, split.classnames, split.train, config,
                                     grid=(0.002, 500.0), on_progress=updates.append)
    by_lr = {s["lr"]: s for s in selection.scores}
    assert selection.lr == 0.002
    assert by_lr[0.002]["accuracy"] > by_lr[500.0]["accuracy"]
    assert updates[-1].step == updates[-1].total_steps and updates[-1].phase == "select"


def test_too_few_images_per_class_for_the_folds(tiny_backbone, colour_task):
    split = load_split(colour_task, shots=1, seed=1)
    with pytest.raises(ConfigError, match="--lr"):
        select_learning_rate(tiny_backbone, split.classnames, split.train, TuningConfig(method="coop"))


def test_cli_lr_auto_records_the_choice(tiny_spec, colour_task, tmp_path):
    import json
    out, metrics = tmp_path / "p.safetensors", tmp_path / "m.json"
    assert main(["tune", str(colour_task), "--backbone", tiny_spec, "--method", "coop", "--shots", "4",
                 "--epochs", "2", "--lr", "auto", "--lr-grid", "0.002", "0.2", "--out", str(out),
                 "--json", str(metrics)]) == 0
    data = json.loads(metrics.read_text())
    assert [s["lr"] for s in data["lr_selection"]["scores"]] == [0.002, 0.2]
    assert data["config"]["lr"] in (0.002, 0.2)
