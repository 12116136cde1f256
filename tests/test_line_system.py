"""From prompt file to the inspection line, on the demo task with a short real tuning run:
unknown photos flagged, calibrated probabilities, prediction sets, folder inference and ONNX."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from dapt_core.cli import main
from dapt_core.data.folders import load_split
from dapt_core.demo import procedural
from dapt_core.demo.demo_task import CLASSES, SIZE, TRAIN_PER_CLASS, render_demo_image
from dapt_core.engine.backbone import load_backbone
from dapt_core.engine.experiment import run_experiment
from dapt_core.engine.inference import Classifier
from dapt_core.engine.methods import TuningConfig

HELD_OUT_PER_CLASS = 100
FRESH_PER_CLASS = 60
REJECT_RATE = 0.05
# The rates hold on average over calibration sets; one draw of 500 held-out and 300 fresh photos
# scatters around them by about 0.016 (binomial), so the checks allow three times that.
RATE_SLACK = 0.05


def _write(folder, pictures):
    folder.mkdir(parents=True, exist_ok=True)
    for index, picture in enumerate(pictures):
        Image.fromarray(picture).save(folder / f"{index:03d}.png")


def _strangers() -> dict[str, list[Image.Image]]:
    """Photos unlike the demo task: a red circle on white, plain noise, other materials."""
    circle = Image.new("RGB", (SIZE, SIZE), "white")
    ImageDraw.Draw(circle).ellipse([30, 30, 98, 98], fill=(220, 20, 20))
    rng = np.random.default_rng(7)
    # Noise at the size the demo model looks at (64 px); finer noise averages to grey texture when
    # downscaled and is flagged less often (see the README's numbers).
    noise = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(10)]
    materials = [Image.fromarray(procedural.to_uint8(procedural.render_inspection(rng, material, colour, "none", SIZE)))
                 for material, colour in [("wood", "brown"), ("fabric", "blue"), ("leather", "brown"),
                                          ("plastic", "white")] for _ in range(5)]
    return {"red circle": [circle], "noise": noise, "other material": materials}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """A short DAPT run on the demo task: 16 training and 100 held-out photos per class."""
    root = tmp_path_factory.mktemp("demo")
    for name in CLASSES:
        _write(root / "train" / name, [render_demo_image(0, "train", name, i) for i in range(TRAIN_PER_CLASS)])
        _write(root / "test" / name, [render_demo_image(0, "test", name, i) for i in range(HELD_OUT_PER_CLASS)])
    fresh = tmp_path_factory.mktemp("fresh")
    for name in CLASSES:  # another seed: photos of the same line the run never saw
        _write(fresh / name, [render_demo_image(1, "test", name, i) for i in range(FRESH_PER_CLASS)])
    split = load_split(root, shots=TRAIN_PER_CLASS, seed=1)
    result = run_experiment(load_backbone("demo", "cpu"), split, TuningConfig(method="dapt", epochs=20, seed=1),
                            shots=TRAIN_PER_CLASS)
    path = result.save_prompt_file(root / "demo.safetensors")
    return result, path, fresh


def _fresh_paths(fresh):
    return sorted(fresh.rglob("*.png"))


def test_strangers_are_flagged_and_line_photos_only_at_the_stated_rate(demo_run):
    result, path, fresh = demo_run
    classifier = Classifier.load(path, device="cpu")
    strangers = {name: classifier.predict(images) for name, images in _strangers().items()}
    circle = strangers["red circle"][0]
    assert circle.unknown is True
    assert circle.score > 0.5  # the classifier alone is confident about a class: the flag is what warns
    assert all(p.unknown for p in strangers["noise"])
    assert all(p.unknown for p in strangers["other material"])

    line = classifier.predict(_fresh_paths(fresh))
    assert len(line) == len(CLASSES) * FRESH_PER_CLASS
    assert np.mean([p.unknown for p in line]) <= REJECT_RATE + RATE_SLACK
    measured = result.calibration.measured
    assert measured["photos"] == len(CLASSES) * HELD_OUT_PER_CLASS
    assert measured["false_reject_rate"] <= REJECT_RATE + RATE_SLACK


def test_the_threshold_can_be_overridden(demo_run):
    _, path, fresh = demo_run
    classifier = Classifier.load(path, device="cpu")
    photos = _fresh_paths(fresh)[::4] + _strangers()["noise"]
    default = classifier.predict(photos)
    lenient = classifier.predict(photos, unknown_threshold=2.0)  # novelty is at most 2 (1 - cosine)
    strict = classifier.predict(photos, reject_rate=0.5)
    assert not any(p.unknown for p in lenient)
    assert sum(p.unknown for p in strict) > sum(p.unknown for p in default)
    assert [p.novelty for p in strict] == [p.novelty for p in default]


def test_calibrated_probabilities_keep_the_tuned_answer(demo_run):
    result, path, _ = demo_run
    classifier = Classifier.load(path, device="cpu")
    photos = result.after.paths[::10]
    predictions = classifier.predict(photos)
    tuned = result.after.logits[::10].argmax(1).tolist()
    assert [p.label for p in predictions] == [result.split.classnames[i] for i in tuned]
    temperature = result.calibration.temperature
    assert temperature > 0 and temperature != pytest.approx(1.0)
    raw = result.after.logits[::10].softmax(1).max(1).values.numpy()
    calibrated = np.array([p.score for p in predictions])
    assert not np.allclose(raw, calibrated, atol=1e-3)  # temperature scaling changed the confidence
    measured = result.calibration.measured["nll"]
    assert measured["calibrated"] <= measured["uncalibrated"] + 0.05  # out of sample, not worse than raw


@pytest.mark.parametrize("coverage", [0.9, 0.95])
def test_prediction_sets_hold_the_true_class_at_the_asked_rate(demo_run, coverage):
    result, path, fresh = demo_run
    classifier = Classifier.load(path, device="cpu")
    photos = _fresh_paths(fresh)
    predictions = classifier.predict(photos, coverage=coverage)
    truth = [photo.parent.name for photo in photos]
    covered = np.mean([name in p.prediction_set for name, p in zip(truth, predictions)])
    assert covered >= coverage - RATE_SLACK
    assert all(p.prediction_set == sorted(p.prediction_set, key=lambda c: -p.probabilities[c]) for p in predictions)
    measured = result.calibration.measured["coverage"][str(coverage)]
    assert measured["coverage"] >= coverage - RATE_SLACK
    assert 0 < measured["mean_set_size"] <= len(CLASSES)
    wider = classifier.predict(photos[::5], coverage=0.99)
    assert all(set(a.prediction_set) <= set(b.prediction_set) for a, b in zip(predictions[::5], wider))


def test_dapt_eval_counts_the_files_unknown_rate_and_sets_on_a_labelled_folder(demo_run, tmp_path, capsys):
    _, path, fresh = demo_run
    out = tmp_path / "eval.json"
    assert main(["eval", str(path), str(fresh), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    counted = json.loads(out.read_text())["calibration"]
    assert counted["photos"] == len(CLASSES) * FRESH_PER_CLASS
    assert f"of these {counted['photos']} photos flagged" in printed and "sets at 95%" in printed
    # the same numbers as counting the answers `predict` gives (up to a photo on a boundary: another batching)
    photos = _fresh_paths(fresh)
    truth = [photo.parent.name for photo in photos]
    predictions = Classifier.load(path, device="cpu").predict(photos, coverage=0.9)
    one_photo = 1.5 / len(photos)
    assert counted["false_reject_rate"] == pytest.approx(np.mean([p.unknown for p in predictions]), abs=one_photo)
    sets = counted["coverage"]["0.9"]
    assert sets["coverage"] == pytest.approx(
        np.mean([name in p.prediction_set for name, p in zip(truth, predictions)]), abs=one_photo)
    assert sets["mean_set_size"] == pytest.approx(np.mean([len(p.prediction_set) for p in predictions]), abs=0.02)


def test_predict_a_folder_to_csv(demo_run, tmp_path, capsys):
    _, path, fresh = demo_run
    shift = tmp_path / "shift"
    selected = _fresh_paths(fresh)[::20]
    for index, photo in enumerate(selected):
        target = shift / ("cam-a" if index % 2 else "cam-b/morning") / f"{index:03d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(photo.read_bytes())
    (shift / "cam-a" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    (shift / "notes.txt").write_text("not a photo, not an image suffix")
    out = tmp_path / "shift.csv"
    assert main(["predict", str(path), str(shift), "--csv", str(out), "--coverage", "0.9"]) == 0
    with out.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == len(selected)
    assert {row["path"].split("shift/")[1].split("/")[0] for row in rows} == {"cam-a", "cam-b"}
    for row in rows:
        assert row["class"] in CLASSES and 0 < float(row["probability"]) <= 1
        assert row["unknown"] in {"true", "false"}
        assert all(name in CLASSES for name in filter(None, row["set"].split("|")))
    err = capsys.readouterr().err
    assert "broken.jpg" in err and f"{len(selected)} photo(s) classified" in err and "photos/s" in err
    assert "notes.txt" not in err

    assert main(["predict", str(path), str(tmp_path / "no-such-folder")]) == 2  # usage error
    assert main(["predict", str(path), str(shift), "--coverage", "95"]) == 2


def test_a_prompt_file_without_calibration_still_predicts(demo_run, tmp_path):
    from dapt_core.engine import prompt_file

    _, path, fresh = demo_run
    old = prompt_file.load(path)
    header = {k: v for k, v in old.header.items() if k not in ("calibration", "format_minor", "tensors")}
    tensors = {k: v for k, v in old.tensors.items() if k != prompt_file.NOVELTY_CLASS_MEANS}
    old_path = prompt_file.save(tmp_path / "old.safetensors", header, tensors)
    classifier = Classifier.load(old_path, device="cpu")
    prediction = classifier.predict(_fresh_paths(fresh)[0], coverage=0.9)[0]
    assert prediction.unknown is None and prediction.prediction_set is None
    assert prediction.label in CLASSES


# ------------------------------------------------------------------------------------------ ONNX
@pytest.fixture(scope="module")
def exported(demo_run, tmp_path_factory):
    from dapt_core.deploy.onnx_export import export_onnx

    _, path, _ = demo_run
    return export_onnx(Classifier.load(path, device="cpu"), tmp_path_factory.mktemp("onnx") / "demo.onnx")


def test_onnx_graph_gives_the_torch_logits(demo_run, exported):
    from dapt_core.deploy.onnx_runner import OnnxClassifier, pixels
    from dapt_core.engine.transforms import test_view

    _, path, fresh = demo_run
    onnx_path, sidecar = exported
    classifier, runner = Classifier.load(path, device="cpu"), OnnxClassifier(onnx_path)
    photos = [Image.open(p).convert("RGB") for p in _fresh_paths(fresh)[::8]]
    photos += [image for images in _strangers().values() for image in images[:2]]
    prep = classifier.preprocessing
    normalised = (pixels(photos[0], prep.size) - np.array(prep.mean)[:, None, None]) / np.array(prep.std)[:, None, None]
    assert np.abs(normalised - test_view(photos[0], prep).numpy()).max() < 1e-5  # same pixels as torch sees

    logits, novelty = classifier.outputs(photos)
    out = runner.outputs(runner.batch(photos))
    assert np.abs(out["logits"] - logits.numpy()).max() < 1e-4
    assert np.abs(out["novelty"] - novelty.numpy()).max() < 1e-4
    temperature = classifier.calibration.temperature
    expected = (logits / temperature).softmax(1).numpy()
    assert np.abs(out["probabilities"] - expected).max() < 1e-4
    assert out["features"].shape == (len(photos), classifier.model.backbone.embed_dim)

    meta = json.loads(sidecar.read_text())
    assert meta["classnames"] == classifier.classnames
    assert meta["preprocessing"]["size"] == prep.size
    assert meta["unknown_threshold"] == pytest.approx(classifier.calibration.unknown_threshold())


def test_dapt_predict_runs_the_onnx_file_without_torch(demo_run, exported, tmp_path, capsys):
    import subprocess
    import sys

    _, path, fresh = demo_run
    onnx_path, _ = exported
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, photo in enumerate(_fresh_paths(fresh)[::10]):
        (folder / f"{index:02d}.png").write_bytes(photo.read_bytes())
    _strangers()["red circle"][0].save(folder / "circle.png")
    answers = {}
    for source in (path, onnx_path):
        assert main(["predict", str(source), str(folder), "--coverage", "0.9", "--json"]) == 0
        answers[source] = json.loads(capsys.readouterr().out)["predictions"]
    torch_rows, onnx_rows = answers[path], answers[onnx_path]
    assert [(r["label"], r["unknown"], r["set"]) for r in torch_rows] == \
        [(r["label"], r["unknown"], r["set"]) for r in onnx_rows]
    assert next(r for r in onnx_rows if r["path"].endswith("circle.png"))["unknown"] is True

    code = ("import sys\n"
            "from dapt_core.deploy.onnx_runner import OnnxClassifier\n"
            f"runner = OnnxClassifier({str(onnx_path)!r})\n"
            f"print(runner.predict({str(folder / 'circle.png')!r})[0].unknown)\n"
            "assert 'torch' not in sys.modules, 'the ONNX runner imported torch'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_dapt_drift_on_the_onnx_file_matches_the_prompt_file_and_needs_no_torch(demo_run, exported, tmp_path,
                                                                                capsys):
    import subprocess
    import sys

    from dapt_core.deploy.onnx_runner import OnnxClassifier
    from dapt_core.engine import prompt_file

    _, path, fresh = demo_run
    onnx_path, _ = exported
    reference = prompt_file.load(path).tensors[prompt_file.DRIFT_REFERENCE]
    assert np.array_equal(OnnxClassifier(onnx_path).drift_reference, reference.float().numpy())  # carried whole

    folder = tmp_path / "line"  # a shift of the same line, then a window of other materials and noise
    folder.mkdir()
    for index, photo in enumerate(_fresh_paths(fresh)[::5]):
        (folder / f"a{index:03d}.png").write_bytes(photo.read_bytes())
    strangers = _strangers()
    for index, image in enumerate(strangers["other material"] + strangers["noise"][:5]):
        image.save(folder / f"b{index:03d}.png")
    reports = {}
    for source in (path, onnx_path):
        assert main(["drift", str(source), str(folder), "--window", "25", "--json"]) == 0
        reports[source] = json.loads(capsys.readouterr().out)
    torch_report, onnx_report = reports[path], reports[onnx_path]
    assert onnx_report["tests"] == ["unknown share", "features"]
    assert [w["unknown"] for w in onnx_report["windows"]] == [w["unknown"] for w in torch_report["windows"]]
    assert [w["flagged"] for w in onnx_report["windows"]] == [w["flagged"] for w in torch_report["windows"]]
    assert [w["p_features"] for w in onnx_report["windows"]] == \
        pytest.approx([w["p_features"] for w in torch_report["windows"]], abs=0.02)
    assert onnx_report["windows"][-1]["flagged"] and onnx_report["drift"]

    code = ("import sys\n"
            "from dapt_core.cli import main\n"
            f"code = main(['drift', {str(onnx_path)!r}, {str(folder)!r}, '--window', '25'])\n"
            "assert 'torch' not in sys.modules, 'dapt drift on an .onnx file imported torch'\n"
            "sys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "FLAGGED" in done.stdout


def test_the_app_download_holds_the_graph_and_its_sidecar(demo_run, tmp_path):
    import zipfile

    from dapt_core.deploy.onnx_export import export_zip

    _, path, _ = demo_run
    archive = zipfile.ZipFile(export_zip(Classifier.load(path, device="cpu"), tmp_path / "line.zip", "line"))
    assert sorted(archive.namelist()) == ["line.json", "line.onnx"]
    assert set(json.loads(archive.read("line.json"))["classnames"]) == set(CLASSES)


def test_export_without_the_onnx_extra_says_how_to_install(demo_run, tmp_path, monkeypatch, capsys):
    import sys

    _, path, _ = demo_run
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if onnx were not installed
    assert main(["export", "onnx", str(path), str(tmp_path / "demo.onnx")]) == 2
    assert "pip install" in capsys.readouterr().err
    assert not (tmp_path / "demo.onnx").exists()


def test_latency_of_torch_and_onnx_on_this_machine(demo_run, capsys):
    _, path, _ = demo_run
    assert main(["info", str(path), "--bench", "--threads", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(row["engine"], row["batch"]) for row in rows} == {("torch", 1), ("torch", 32), ("onnx", 1), ("onnx", 32)}
    for row in rows:
        assert row["ms_per_photo"] > 0 and row["photos_per_second"] == pytest.approx(1000 / row["ms_per_photo"])
        assert row["peak_memory_mb"] > 0
    peak = {row["engine"]: row["peak_memory_mb"] for row in rows}
    assert peak["onnx"] < peak["torch"]  # the ONNX process runs without torch
