"""Pass or fail: the good class, escapes and overkill, the operating point and its guarantee, and the
answers a line system gets (dapt_core.deploy.pass_fail and where it is used)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dapt_core.deploy.calibration import Calibration, calibrate
from dapt_core.deploy.pass_fail import (
    OperatingPoint,
    argmax_counts,
    counts,
    fit_operating_point,
    guess_good_class,
    pass_cut,
    readiness,
    tradeoff_curve,
    wilson_interval,
)
from dapt_core.deploy.prediction import Decision
from dapt_core.errors import ConfigError


@pytest.mark.parametrize("classes, good", [
    (["no defect", "scratch", "crack"], "no defect"),
    (["OK", "NG"], "OK"),
    (["scratch", "Good", "dent"], "Good"),
    (["良品", "キズ", "打痕"], "良品"),
    (["ok_sample", "ng_sample"], "ok_sample"),
    (["No-Defect", "stain"], "No-Defect"),
    (["not ok", "ok"], "ok"),
    (["scratch", "dent", "stain"], None),  # no name says good: accuracy only
    (["good", "ok", "dent"], None),  # two say so: the user has to choose
])
def test_the_good_class_is_guessed_from_the_names(classes, good):
    assert guess_good_class(classes) == good


def test_escapes_and_overkill_on_a_toy_with_known_counts():
    classes = ["no defect", "scratch", "crack"]
    # 4 good parts, 3 scratches, 3 cracks
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    predictions = np.array([0, 0, 1, 2, 0, 1, 2, 0, 0, 2])
    result = counts(predictions == 0, labels, predictions, classes, good=0)
    assert (result["escapes"]["count"], result["escapes"]["of"]) == (3, 6)  # one scratch, two cracks passed
    assert (result["overkill"]["count"], result["overkill"]["of"]) == (2, 4)
    assert result["escapes_by_class"] == {"scratch": 1, "crack": 2}
    # caught: scratch->scratch, scratch->crack, crack->crack: two of three typed right
    assert (result["defect_type_accuracy"]["count"], result["defect_type_accuracy"]["of"]) == (2, 3)
    low, high = result["escapes"]["interval"]
    assert low < 0.5 < high


def test_argmax_counts_pass_a_part_when_good_is_most_probable():
    probabilities = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8]])
    result = argmax_counts(probabilities, np.array([0, 0, 1, 2]), ["good", "a", "b"], good=0)
    assert result["overkill"]["count"] == 1 and result["escapes"]["count"] == 1


def test_wilson_interval_is_sensible_at_zero_and_contains_the_rate():
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and 0.1 < high < 0.2  # 0 of 20 does not mean "never"
    low, high = wilson_interval(30, 100)
    assert low < 0.3 < high


def test_trade_off_curve_runs_from_stopping_everything_to_passing_everything():
    p_good = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.1])
    labels = np.array([0, 0, 1, 0, 1, 1])
    curve = tradeoff_curve(p_good, labels, good=0)
    assert curve[0] == {"threshold": 0.0, "escape_rate": 1.0, "overkill_rate": 0.0}
    assert curve[-1]["escape_rate"] == 0.0 and curve[-1]["overkill_rate"] == 1.0
    escapes = [row["escape_rate"] for row in curve]
    assert escapes == sorted(escapes, reverse=True)


def test_pass_cut_allows_what_conformal_risk_control_allows():
    scores = np.linspace(0.0, 0.98, 99)  # 99 defective held-out photos
    cut = pass_cut(scores, 0.05)  # (k + 1) / 100 <= 0.05: at most 4 may pass
    assert int((scores > cut).sum()) == 4
    assert pass_cut(scores[:10], 0.02) == float("inf")  # 10 photos cannot promise 2 %: nothing passes


def test_the_escape_rate_holds_on_fresh_parts_on_average():
    """The guarantee itself: over many calibration draws, the escape rate on fresh defective parts is at most
    the allowed rate on average, while good parts still pass (the threshold is not simply 'stop all')."""
    rng = np.random.default_rng(0)
    allowed, rates, good_passed = 0.05, [], []
    for _ in range(300):
        defects = rng.beta(2, 5, size=120)  # P(good) of defective parts: mostly low, some high
        goods = rng.beta(5, 2, size=40)
        point = fit_operating_point(np.column_stack([np.r_[goods, defects], 1 - np.r_[goods, defects]]),
                                    np.r_[np.zeros(40, int), np.ones(120, int)], 0, "good", allowed)
        fresh_defects, fresh_goods = rng.beta(2, 5, size=2000), rng.beta(5, 2, size=2000)
        rates.append(float(point.passes(fresh_defects).mean()))
        good_passed.append(float(point.passes(fresh_goods).mean()))
    assert np.mean(rates) <= allowed + 0.003  # Monte-Carlo noise of 300 draws
    assert np.mean(rates) > allowed / 2  # and not far more cautious than asked
    assert np.mean(good_passed) > 0.3


def _held_out(n_good=60, n_defect=140, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n_good, int), rng.integers(1, 3, n_defect)]
    logits = rng.normal(size=(len(labels), 3)) * 2
    logits[np.arange(len(labels)), labels] += 2.5  # a model that is mostly right
    novelty = rng.uniform(0.1, 0.3, len(labels))
    return logits, labels, novelty


def test_calibration_carries_the_operating_point_through_json():
    logits, labels, novelty = _held_out()
    calibration = calibrate(logits, labels, novelty, good_class="no defect",
                            classnames=["no defect", "scratch", "dent"], escape_rate=0.05)
    point = calibration.operating_point
    assert point.good_class == "no defect" and point.escape_rate == 0.05
    measured = point.measured
    assert measured["escapes"]["of"] == 140 and measured["overkill"]["of"] == 60
    again = Calibration.from_dict(json.loads(json.dumps(calibration.to_dict())))
    assert again.operating_point.cut() == point.cut()
    assert readiness(calibration.to_dict()["pass_fail"]) in ("not_ready", "costly", "workable")
    # a task without a good class, or held-out photos of one kind only, get none
    assert calibrate(logits, labels, novelty, classnames=["a", "b", "c"]).operating_point is None
    only_defects = labels > 0
    assert calibrate(logits[only_defects], labels[only_defects], novelty[only_defects], good_class="no defect",
                     classnames=["no defect", "scratch", "dent"]).operating_point is None


def test_decision_fails_unknown_parts_and_passes_only_above_the_cut():
    classnames = ["no defect", "scratch"]
    point = OperatingPoint("no defect", 0.1, defect_scores=sorted(np.linspace(0.0, 0.9, 19).tolist()),
                           good_scores=[0.95, 0.97])
    calibration = Calibration(temperature=1.0, novelty_scores=sorted(np.linspace(0, 1, 50).tolist()),
                              conformal_scores=sorted(np.linspace(0, 1, 50).tolist()), operating_point=point)
    cut = point.cut()
    assert 0.0 < cut < 1.0
    logits = np.log(np.array([[0.99, 0.01], [0.99, 0.01], [0.05, 0.95]]))
    novelty = np.array([0.1, 5.0, 0.1])  # the second photo is unlike anything seen in training
    answers = Decision(classnames, calibration).decide(logits, novelty)
    assert [a.verdict for a in answers] == ["pass", "fail", "fail"]
    assert answers[1].unknown and answers[0].good_probability == pytest.approx(0.99)
    strict = Decision(classnames, calibration, escape_rate=0.01).decide(logits, novelty)
    assert [a.verdict for a in strict] == ["fail", "fail", "fail"]  # 19 defects cannot promise 1 %: none pass
    with pytest.raises(ConfigError):
        Decision(classnames, calibration, escape_rate=1.5).decide(logits, novelty)


# ------------------------------------------------------------------------------ on the demo task
@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """A short tuning run on the demo task (its 1,000 held-out photos place the threshold) and 1,000 fresh
    photos of the same task drawn with another seed."""
    from dapt_core.data.folders import load_split
    from dapt_core.demo.demo_task import write_demo_task
    from dapt_core.engine.backbone import load_backbone
    from dapt_core.engine.experiment import run_experiment
    from dapt_core.engine.methods import TuningConfig

    root = tmp_path_factory.mktemp("pass-fail-demo")
    task = Path(write_demo_task(root / "task", seed=0)["out_dir"])
    fresh = Path(write_demo_task(root / "fresh", seed=1)["out_dir"])
    backbone = load_backbone("demo", "cpu")
    split = load_split(task, shots=16, seed=1)
    result = run_experiment(backbone, split, TuningConfig(method="coop", epochs=3, lr=0.05, seed=1), shots=16,
                            cache_dir=root / "cache", good_class="no defect", escape_rate=0.05)
    out = result.save_prompt_file(root / "prompts.safetensors")
    return result, out, fresh


def test_demo_run_leads_with_escapes_and_overkill(demo_run):
    result, _, _ = demo_run
    metrics = result.metrics()
    pass_fail = metrics["pass_fail"]
    assert pass_fail["good_class"] == "no defect"
    assert pass_fail["after"]["escapes"]["of"] == 800 and pass_fail["after"]["overkill"]["of"] == 200
    assert metrics["chance"] == pytest.approx(0.2)
    assert metrics["calibration"]["pass_fail"]["escape_rate"] == 0.05


def test_the_threshold_meets_the_escape_rate_on_fresh_demo_photos(demo_run):
    """Placed on the run's held-out photos for at most 5 % escapes; counted on 800 defective photos the run
    never saw. The guarantee is on average over calibration sets; one draw may exceed it by sampling noise
    (about 1.1 points here), so the bound allows 2.5 of those."""
    from dapt_core.cli import _items_for
    from dapt_core.data.folders import scan_folder
    from dapt_core.engine.inference import Classifier

    _, out, fresh = demo_run
    classifier = Classifier.load(out, device="cpu")
    items, _ = _items_for(scan_folder(fresh).parts["test"], classifier.classnames)
    _, after = classifier.evaluate(items, cache_dir=out.parent / "cache")
    counted = classifier.count_at_operating_point(after, classifier.novelty.score(after.features).numpy())
    assert counted["escapes"]["of"] == 800
    assert counted["escapes"]["rate"] <= 0.05 + 2.5 * 0.011
    assert counted["overkill"]["rate"] < 1.0  # some good parts pass: not "stop everything"


def test_predict_gives_a_verdict_per_photo(demo_run, capsys):
    from dapt_core import cli

    _, out, fresh = demo_run
    photos = [photo for name in ("no defect", "crack") for photo in sorted((fresh / "test" / name).glob("*.png"))[:3]]
    csv_path = out.parent / "shift.csv"
    assert cli.main(["predict", str(out), *map(str, photos), "--csv", str(csv_path)]) == 0
    rows = csv_path.read_text().splitlines()
    assert rows[0].endswith(",verdict,good_probability")
    assert all(row.split(",")[-2] in ("pass", "fail") for row in rows[1:])
    assert "failed" in capsys.readouterr().err


def test_the_onnx_export_gives_the_same_verdicts_and_states_the_threshold(demo_run):
    pytest.importorskip("onnxruntime")
    from dapt_core.deploy.onnx_export import export_onnx
    from dapt_core.deploy.onnx_runner import OnnxClassifier
    from dapt_core.engine.inference import Classifier

    _, out, fresh = demo_run
    classifier = Classifier.load(out, device="cpu")
    onnx_path, sidecar = export_onnx(classifier, out.parent / "line" / "model.onnx")
    meta = json.loads(sidecar.read_text())
    point = classifier.calibration.operating_point
    assert meta["good_class"] == "no defect" and meta["pass_threshold"] == pytest.approx(point.cut())
    photos = [photo for name in ("no defect", "dent", "stain")
              for photo in sorted((fresh / "test" / name).glob("*.png"))[:4]]
    torch_answers = classifier.predict(photos)
    onnx_answers = OnnxClassifier(onnx_path).predict(photos)
    assert [a.verdict for a in onnx_answers] == [a.verdict for a in torch_answers]
    assert {a.verdict for a in torch_answers} <= {"pass", "fail"}


def test_info_leads_with_escapes_and_overkill(demo_run, capsys):
    from dapt_core import cli

    _, out, _ = demo_run
    assert cli.main(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.index("escapes") < printed.index("overkill") < printed.index("accuracy")
    assert "defective parts called 'no defect'" in printed and "(chance 20.0%)" in printed
