"""Tiles and heatmaps: a photo looked at in tiles at its own resolution, the photo's rule, and maps that
point at the defect (engine/tiling.py, engine/tiled.py, deploy/heatmaps.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import write_spot_task
from PIL import Image

from dapt_core.engine.tiling import Tiling, pool_log_probs
from dapt_core.errors import ConfigError

TOLERANCE = 15  # px, the pointing game's (Zhang et al. 2016)


# ------------------------------------------------------------------------------ geometry and the rule
def test_a_line_scan_strip_gets_a_row_of_square_tiles_along_its_whole_length():
    boxes = Tiling.parse("auto").boxes(5000, 200, input_size=128)
    assert all(bottom - top == 200 and right - left == 200 for left, top, right, bottom in boxes)
    assert {top for _, top, _, _ in boxes} == {0}
    assert boxes[0][0] == 0 and boxes[-1][2] == 5000  # edge to edge
    shared = [previous[2] - box[0] for previous, box in zip(boxes, boxes[1:])]
    assert min(shared) >= 0.25 * 200  # neighbours share at least the overlap
    assert len(boxes) == 33


def test_tile_settings_are_read_as_written_and_a_wrong_one_says_what_to_write():
    assert Tiling.parse("auto").boxes(128, 128, 128) == []  # a photo the model sees whole gets no tiles
    assert len(Tiling.parse("2x3").boxes(900, 600, 128)) == 6
    assert {box[2] - box[0] for box in Tiling.parse("256").boxes(1024, 768, 128)} == {256}
    assert Tiling.from_dict(Tiling.parse("3x4", 0.5).to_dict()) == Tiling.parse("3x4", 0.5)
    with pytest.raises(ConfigError, match="auto, a grid such as 3x4"):
        Tiling.parse("big")


def test_the_photo_fails_if_any_tile_shows_a_defect_and_passes_only_if_every_tile_looks_good():
    good, scratch = 0, 1
    log_probs = np.log(np.array([[0.9, 0.1], [0.95, 0.05], [0.2, 0.8]]))  # whole, clean tile, defective tile
    pooled = pool_log_probs(log_probs, good)
    assert pooled.argmax() == scratch
    assert pooled[good] == pytest.approx(np.log(0.2)) and pooled[scratch] == pytest.approx(np.log(0.8))
    clean = np.log(np.array([[0.9, 0.1], [0.95, 0.05], [0.85, 0.15]]))
    assert pool_log_probs(clean, good).argmax() == good
    torch_pooled = pool_log_probs(torch.tensor(log_probs), good)  # the training side, same rule
    assert np.allclose(torch_pooled.numpy(), pooled)


# ------------------------------------------------------------------------------ a task made for it
@pytest.fixture(scope="module")
def spot_runs(tmp_path_factory):
    from dapt_core.data.folders import load_split
    from dapt_core.engine.backbone import load_backbone
    from dapt_core.engine.experiment import run_experiment
    from dapt_core.engine.methods import TuningConfig

    root = tmp_path_factory.mktemp("spots")
    boxes = write_spot_task(root / "task")
    backbone = load_backbone("demo", "cpu")
    runs = {}
    for tiles in ("off", "auto"):
        split = load_split(root / "task", shots=8, seed=1)
        config = TuningConfig(method="dapt", epochs=10, lr=0.01, seed=1, tiles=tiles)
        result = run_experiment(backbone, split, config, shots=8, good_class="no defect", cache_dir=root / "cache")
        runs[tiles] = (result, result.save_prompt_file(root / f"{tiles}.safetensors"))
    return root, boxes, backbone, runs


def test_tiles_find_a_small_defect_that_the_shrunk_photo_loses(spot_runs):
    _, _, _, runs = spot_runs
    whole, tiled = runs["off"][0], runs["auto"][0]
    assert whole.after.accuracy <= 0.7  # 3-4 px after shrinking: near chance
    assert tiled.after.accuracy >= 0.9
    header_config = json.loads(json.dumps(tiled.header()["config"]))
    assert header_config["tiles"] == "auto"  # recorded in the prompt file


def test_the_defect_map_peaks_on_the_planted_defect(spot_runs, tmp_path):
    from dapt_core import cli
    from dapt_core.engine.inference import Classifier

    root, boxes, backbone, runs = spot_runs
    classifier = Classifier.load(runs["auto"][1], backbone=backbone)
    tests = sorted(key for key in boxes if key.startswith("test/"))
    hits = 0
    for key in tests:
        heat = classifier.predict(root / "task" / key, heatmaps=True)[0].heatmap
        x0, y0, x1, y1 = boxes[key]
        x, y = heat.peak
        hits += x0 - TOLERANCE <= x < x1 + TOLERANCE and y0 - TOLERANCE <= y < y1 + TOLERANCE
    assert hits / len(tests) >= 0.8
    good = classifier.predict(root / "task" / "test" / "no defect" / "000.png", heatmaps=True)[0]
    assert good.heatmap.level < 0.5  # nothing to point at: drawn faint, without a box

    out = tmp_path / "maps"
    assert cli.main(["predict", str(runs["auto"][1]), str(root / "task" / "test" / "spot"),
                     "--heatmaps", str(out)]) == 0
    written = sorted(out.glob("*.png"))
    assert len(written) == 10 and Image.open(written[0]).size == (512, 512)


def test_heatmaps_from_a_file_tuned_without_tiles_say_how_to_get_them(spot_runs, tmp_path, capsys):
    from dapt_core import cli

    root, _, _, runs = spot_runs
    assert cli.main(["predict", str(runs["off"][1]), str(root / "task" / "test" / "spot"),
                     "--heatmaps", str(tmp_path / "maps")]) != 0
    assert "--tiles auto" in capsys.readouterr().err


def test_the_onnx_export_of_a_tiled_file_gives_the_same_classes_and_maps(spot_runs, tmp_path):
    pytest.importorskip("onnxruntime")
    from dapt_core.deploy.onnx_export import export_onnx
    from dapt_core.deploy.onnx_runner import OnnxClassifier
    from dapt_core.engine.inference import Classifier

    root, boxes, backbone, runs = spot_runs
    classifier = Classifier.load(runs["auto"][1], backbone=backbone)
    onnx_path, sidecar = export_onnx(classifier, tmp_path / "line" / "model.onnx")
    assert json.loads(sidecar.read_text())["tiling"]["tiles"] == "auto"
    photos = [root / "task" / key for key in sorted(boxes)[-4:]] + \
        sorted((root / "task" / "test" / "no defect").glob("*.png"))[:3]
    torch_answers = classifier.predict(photos, heatmaps=True)
    onnx_answers = OnnxClassifier(onnx_path).predict(photos, heatmaps=True)
    assert [a.label for a in onnx_answers] == [a.label for a in torch_answers]
    for ours, theirs in zip(torch_answers, onnx_answers):
        assert theirs.score == pytest.approx(ours.score, abs=0.02)
        assert np.hypot(*np.subtract(theirs.heatmap.peak, ours.heatmap.peak)) <= 16


def test_tiles_on_photos_the_model_sees_whole_change_nothing(tiny_backbone, colour_task):
    from dapt_core.data.folders import load_split
    from dapt_core.engine.experiment import run_experiment
    from dapt_core.engine.methods import TuningConfig

    split = load_split(colour_task, shots=4, seed=1)
    results = [run_experiment(tiny_backbone, split, TuningConfig(method="dapt", epochs=2, lr=0.01, seed=1, tiles=tiles),
                              shots=4, safeguard=False) for tiles in ("off", "auto")]
    off, auto = (result.after for result in results)
    assert torch.equal(off.logits, auto.logits) and torch.equal(off.features, auto.features)
    assert results[1].config.tiles == "auto"  # recorded, and applied to larger photos later


def test_the_quick_learning_rate_choice_scores_held_out_shots_in_tiles(tmp_path, monkeypatch):
    from dapt_core.data.folders import load_split
    from dapt_core.engine import selection
    from dapt_core.engine.backbone import load_backbone
    from dapt_core.engine.methods import TuningConfig

    write_spot_task(tmp_path / "task", per_class=(8, 2))
    split = load_split(tmp_path / "task", shots=8, seed=1)
    scored = []
    real = selection.encode_tiled

    def counting(model, items, *args, **kwargs):
        scored.append(len(items))
        return real(model, items, *args, **kwargs)

    monkeypatch.setattr(selection, "encode_tiled", counting)
    chosen = selection.choose_learning_rate("quick", load_backbone("demo", "cpu"), split.classnames, split.train,
                                            TuningConfig(method="coop", epochs=5, seed=1, tiles="auto"), shots=8,
                                            good=0)
    assert scored == [4, 4, 4]  # each candidate's held-out quarter, looked at in tiles as the run will be
    assert chosen.lr in [score["lr"] for score in chosen.scores]
