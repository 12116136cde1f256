"""Drift (dapt_core/deploy/drift.py): the two tests, the windows and verdicts, the prompt file's
reference sample and `dapt drift`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import write_colour_task
from PIL import Image

from dapt_core.cli import main
from dapt_core.deploy import drift
from dapt_core.deploy.calibration import Calibration
from dapt_core.errors import ConfigError


def _features(rng, count, shift=0.0, width=32):
    """Unit vectors around a fixed direction, optionally moved along another one."""
    centre = np.zeros(width)
    centre[0] = 1.0
    moved = np.zeros(width)
    moved[1] = shift
    x = centre + moved + 0.3 * rng.standard_normal((count, width))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _calibration(rng, held_out=400, rate=0.05):
    scores = sorted(rng.random(held_out).tolist())
    return Calibration(temperature=1.0, novelty_scores=scores, conformal_scores=scores, reject_rate=rate)


def test_binomial_tails_on_known_cases():
    assert drift.binomial_tail(5, 10, 0.5) == pytest.approx(638 / 1024, rel=1e-12)
    assert drift.binomial_tail(1, 20, 0.05) == pytest.approx(1 - 0.95 ** 20, rel=1e-12)
    assert drift.binomial_tail(0, 20, 0.05) == 1.0 and drift.binomial_tail(21, 20, 0.05) == 0.0
    # 19 of 50 unknown against 5 % expected: far out in the tail (exact sum by hand with math.comb)
    exact = sum(math.comb(50, x) * 0.05 ** x * 0.95 ** (50 - x) for x in range(19, 51))
    assert drift.binomial_tail(19, 50, 0.05) == pytest.approx(exact, rel=1e-9) and exact < 1e-9
    # Beta-binomial with a uniform rate: every count equally likely
    assert drift.beta_binomial_tail(3, 9, 1, 1) == pytest.approx(7 / 10, rel=1e-12)
    # ... and with a rate pinned down by many held-out photos it is the binomial
    assert drift.beta_binomial_tail(6, 50, 0.05 * 1e6, 0.95 * 1e6) == pytest.approx(
        drift.binomial_tail(6, 50, 0.05), rel=1e-3)


def test_the_unknown_model_follows_the_calibration_rank():
    rng = np.random.default_rng(0)
    calibration = _calibration(rng, held_out=99, rate=0.05)  # rank ceil(100 * 0.95) = 95 of 99
    model = drift.UnknownModel.of(calibration)
    assert (model.a, model.b) == (5, 95) and model.expected_share == pytest.approx(0.05)
    assert model.threshold == calibration.unknown_threshold()
    assert drift.UnknownModel.of(_calibration(rng, held_out=10, rate=0.05)) is None  # the threshold flags nothing


def test_no_drift_on_a_resample_of_the_reference():
    rng = np.random.default_rng(1)
    reference = _features(rng, 200)
    calibration = _calibration(rng)
    new = _features(rng, 150)
    report = drift.assess([f"p{i:03d}" for i in range(150)], novelty=rng.random(150), features=new,
                          calibration=calibration, reference=reference, window=50)
    assert [w.photos for w in report.windows] == [50, 50, 50]
    assert not report.drift and report.tests == ["unknown share", "features"]
    assert report.verdict.startswith("No ") and all(w.p_features > 0.005 for w in report.windows)
    assert all(w.expected_share == pytest.approx(0.05, abs=0.003) for w in report.windows)
    assert report.permutations >= 200 and report.reference_photos == 200
    json.dumps(report.to_dict())  # JSON-ready


def test_drift_on_a_shifted_copy():
    rng = np.random.default_rng(2)
    reference = _features(rng, 200)
    calibration = _calibration(rng)
    same, shifted = _features(rng, 100), _features(rng, 100, shift=0.5)
    novelty = np.concatenate([rng.random(100), 0.9 + 0.1 * rng.random(100)])  # then half above 0.95
    report = drift.assess([f"p{i:03d}" for i in range(200)], novelty=novelty, features=np.vstack([same, shifted]),
                          calibration=calibration, reference=reference, window=50)
    assert report.drift and [w.flagged for w in report.windows][2:] == [True, True]
    assert report.windows[3].p_features < 0.001 and report.windows[3].p_unknown < 1e-6
    assert "unknown against 5% expected" in report.windows[3].verdict
    assert report.verdict.startswith("Drift:") and "window 3" in report.verdict
    # The features alone see it too (an old file without calibration, or the same unknown share)
    features_only = drift.assess([f"p{i:03d}" for i in range(100)], features=shifted, reference=reference,
                                 window=50)
    assert features_only.drift and features_only.tests == ["features"]


def test_without_reference_features_only_the_unknown_share_is_compared():
    rng = np.random.default_rng(3)
    report = drift.assess([f"p{i}" for i in range(60)], novelty=rng.random(60), features=_features(rng, 60),
                          calibration=_calibration(rng), reference=None, window=30)
    assert report.tests == ["unknown share"] and any("no reference features" in note for note in report.notes)


def test_windows_keep_a_short_remainder_with_the_last():
    assert drift.window_bounds(120, 50) == [(0, 50), (50, 120)]
    assert drift.window_bounds(130, 50) == [(0, 50), (50, 100), (100, 130)]
    with pytest.raises(ConfigError):
        drift.window_bounds(100, 2)


def test_mmd_p_value_is_uniform_enough_under_no_change():
    rng = np.random.default_rng(4)
    reference = _features(rng, 100)
    p_values = [drift.mmd_test(reference, _features(rng, 30), permutations=99, seed=s)[1] for s in range(40)]
    assert np.mean(np.array(p_values) < 0.05) <= 0.15  # about 5 % expected


def test_an_exports_reference_is_read_back_exactly_and_a_damaged_one_is_refused(tmp_path):
    import base64

    from dapt_core.deploy.onnx_runner import drift_reference_of
    from dapt_core.errors import PromptFileError

    values = _features(np.random.default_rng(2), 7).astype(np.float16)
    entry = {"dtype": "float16", "shape": [7, 32], "base64": base64.b64encode(values.astype("<f2").tobytes()).decode()}
    side = tmp_path / "model.json"
    assert np.array_equal(drift_reference_of({"drift_reference": entry}, side), values.astype(np.float32))
    assert drift_reference_of({}, side) is None  # an export from before the reference: the unknown share only
    for damaged in ({**entry, "shape": [8, 32]}, {**entry, "base64": "not base64!"}, {"shape": [7, 32]}):
        with pytest.raises(PromptFileError, match="model.json is damaged.*export again"):
            drift_reference_of({"drift_reference": damaged}, side)


@pytest.fixture(scope="module")
def tuned(tiny_spec, tmp_path_factory):
    root = write_colour_task(tmp_path_factory.mktemp("drift") / "data", per_class=12)
    out = root.parent / "p.safetensors"
    assert main(["tune", str(root), "--backbone", tiny_spec, "--shots", "3", "--epochs", "1",
                 "--out", str(out)]) == 0
    return root, out


def test_the_prompt_file_carries_the_reference_sample(tuned):
    from dapt_core.engine import prompt_file

    _, out = tuned
    file = prompt_file.load(out)
    reference = file.tensors[prompt_file.DRIFT_REFERENCE]
    assert reference.dtype.is_floating_point and reference.element_size() == 2  # fp16
    assert reference.shape == (27, 32)  # 9 held-out photos per class, 3 classes, embed_dim 32
    assert file.header["calibration"]["held_out_photos"] == 27


def test_dapt_drift_on_a_tiny_folder(tuned, tmp_path, capsys):
    from dapt_core.engine import prompt_file

    root, out = tuned
    folder = tmp_path / "line"
    folder.mkdir()
    for i, path in enumerate(sorted(root.rglob("*.png"))[:24]):
        Image.open(path).save(folder / f"{i:03d}.png")
    chart = tmp_path / "drift.png"
    assert main(["drift", str(out), str(folder), "--window", "12", "--json", "--chart", str(chart)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["windows"]) == 2 and report["tests"] == ["unknown share", "features"]
    assert report["windows"][0]["first"].endswith("000.png") and isinstance(report["drift"], bool)
    assert Image.open(chart).size == (800, 360)

    # Dark photos: everything flagged
    dark = tmp_path / "dark"
    dark.mkdir()
    for i in range(12):
        Image.new("RGB", (48, 48), (i, i, i)).save(dark / f"{i:03d}.png")
    assert main(["drift", str(out), str(dark), "--window", "6", "--chart", str(tmp_path / "d.html")]) == 0
    printed = capsys.readouterr()
    assert "FLAGGED" in printed.out and (tmp_path / "d.html").stat().st_size > 1000

    # An older file without the reference features: the unknown share only, and a note saying so
    old = prompt_file.load(out)
    tensors = {k: v for k, v in old.tensors.items() if k != prompt_file.DRIFT_REFERENCE}
    header = {k: v for k, v in old.header.items() if k != "tensors"}
    old_path = prompt_file.save(tmp_path / "old.safetensors", header, tensors)
    assert main(["drift", str(old_path), str(folder), "--window", "12"]) == 0
    printed = capsys.readouterr()
    assert "features p=" not in printed.out and "no reference features" in printed.err

    # A CSV from `dapt predict`
    csv_path = tmp_path / "p.csv"
    assert main(["predict", str(out), str(folder), "--csv", str(csv_path)]) == 0
    capsys.readouterr()
    assert main(["drift", str(out), str(csv_path), "--window", "12", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tests"] == ["unknown share"] and len(report["windows"]) == 2

    assert main(["drift", str(out), str(tmp_path / "nowhere")]) == 2  # usage error
    assert main(["drift", str(out), str(folder), "--window", "2"]) == 2
