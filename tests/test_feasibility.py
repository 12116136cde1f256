"""The check before tuning: can the frozen model tell the classes apart at all? (dapt_core.engine.feasibility)

The counting is checked on synthetic features with known answers; `dapt check`, `dapt tune`'s block and the
Tune page's section on tiny generated photos.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write_colour_task
from PIL import Image

from dapt_core.cli import main
from dapt_core.engine.feasibility import (
    ADVICE,
    describe,
    leave_one_out_predictions,
    level_of,
    probe,
    summarise,
)
from dapt_core.errors import DataError

CLASSES = ["good", "scratch", "dent"]


def clusters(spread: float, per_class: int = 16, dim: int = 32, seed: int = 0):
    """Features around one centre per class; `spread` large = the classes overlap."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(CLASSES), dim))
    labels = np.repeat(np.arange(len(CLASSES)), per_class)
    return centres[labels] + spread * rng.normal(size=(len(labels), dim)), labels


def test_separable_classes_are_clear_and_the_interval_is_above_chance():
    features, labels = clusters(spread=0.1)
    result = probe(features, labels, CLASSES)
    assert result["accuracy"] == 1.0 and result["level"] == "clear"
    assert result["chance"] == pytest.approx(1 / 3) and result["chance_rule"] == "uniform"
    assert result["interval"][0] > result["chance"]
    assert result["confused_pairs"] == []
    assert [a["code"] for a in result["advice"]] == ["start"]
    assert "apart 100% of the time (chance 33%" in describe(result)[0] and "clearly" in describe(result)[0]


def test_features_that_do_not_depend_on_the_class_are_near_chance_and_say_what_to_try():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(len(CLASSES)), 16)
    result = probe(rng.normal(size=(len(labels), 32)), labels, CLASSES, image_size=128)
    low, high = result["interval"]
    assert result["level"] == "near_chance" and low <= result["chance"] <= high
    assert [a["code"] for a in result["advice"]][:3] == ["not_tuning_yet", "closer_photos", "other_backbone"]
    assert "128×128 pixels" in "\n".join(describe(result))
    assert "hardly better than guessing" in describe(result)[0]


def test_photos_much_larger_than_the_input_are_advised_tiles_first():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(len(CLASSES)), 16)
    features = rng.normal(size=(len(labels), 32))
    large = probe(features, labels, CLASSES, image_size=128, largest_photo=(2048, 1536))
    assert [a["code"] for a in large["advice"]][:2] == ["not_tuning_yet", "try_tiles"]
    assert "up to 2048×1536 pixels" in "\n".join(describe(large))
    small = probe(features, labels, CLASSES, image_size=128, largest_photo=(250, 250))
    assert "try_tiles" not in [a["code"] for a in small["advice"]]


def test_the_level_rule():
    assert level_of(0.30, 1 / 3) == "near_chance"  # the interval reaches down to chance
    assert level_of(0.40, 1 / 3) == "partial"
    assert level_of(0.67, 1 / 3) == "clear"  # at least halfway from chance to 100 %
    assert level_of(0.74, 0.5) == "partial" and level_of(0.75, 0.5) == "clear"


def test_leave_one_out_leaves_each_photo_out_of_its_own_class_mean():
    rng = np.random.default_rng(2)
    features, labels = rng.normal(size=(30, 8)), np.repeat(np.arange(3), 10)
    expected = []
    for i in range(len(labels)):
        others = np.arange(len(labels)) != i
        normed = features / np.linalg.norm(features, axis=1, keepdims=True)
        means = np.stack([normed[others & (labels == c)].mean(axis=0) for c in range(3)])
        means /= np.linalg.norm(means, axis=1, keepdims=True)
        expected.append(int((means @ normed[i]).argmax()))
    assert leave_one_out_predictions(features, labels, 3).tolist() == expected
    # One photo per class is too few: nothing is left to make its class mean.
    with pytest.raises(DataError, match="at least 2 usable training photos of every class"):
        probe(features[:4], np.array([0, 0, 1, 2]), CLASSES)


def test_confused_pairs_are_counted_both_ways_round_most_first():
    labels = np.array([0] * 4 + [1] * 4 + [2] * 4)
    predictions = np.array([0, 0, 1, 1,   1, 1, 1, 0,   2, 2, 2, 0])
    result = summarise(predictions, labels, CLASSES)
    assert result["confused_pairs"] == [
        {"first": "good", "second": "scratch", "count": 3, "first_as_second": 2, "second_as_first": 1, "photos": 8},
        {"first": "good", "second": "dent", "count": 1, "first_as_second": 0, "second_as_first": 1, "photos": 8},
    ]
    assert result["per_class"] == {"good": 0.5, "scratch": 0.75, "dent": 0.75}
    assert "It confuses 'good' with 'scratch' most (3 times), then 'good' with 'dent' (once)." in describe(result)


def test_unbalanced_classes_take_the_largest_class_as_chance():
    labels = np.array([0] * 12 + [1] * 4 + [2] * 4)
    result = summarise(labels.copy(), labels, CLASSES)
    assert result["chance"] == pytest.approx(0.6) and result["chance_rule"] == "majority"
    assert result["chance_class"] == "good" and "always answering 'good'" in describe(result)[0]


def test_good_vs_defective_counts_escapes_and_overkill():
    # 10 good photos, 2 of them called a defect; 20 defective, 5 of them called good
    labels = np.array([0] * 10 + [1] * 10 + [2] * 10)
    predictions = labels.copy()
    predictions[:2] = 2
    predictions[[10, 11, 12, 20, 21]] = 0
    pass_fail = summarise(predictions, labels, CLASSES, good_class="good")["good_vs_defective"]
    assert pass_fail["defective_called_good"]["count"] == 5 and pass_fail["defective_called_good"]["of"] == 20
    assert pass_fail["good_called_defective"]["count"] == 2 and pass_fail["good_called_defective"]["of"] == 10
    assert pass_fail["accuracy"] == pytest.approx(1 - (5 / 20 + 2 / 10) / 2) and pass_fail["chance"] == 0.5
    low, high = pass_fail["interval"]
    assert low < pass_fail["accuracy"] < high
    assert summarise(predictions, labels, CLASSES)["good_vs_defective"] is None
    # defect types mixed up, pass/fail clean: the advice says pass/fail is within reach
    mixed = np.array([0] * 20 + [1] * 20 + [2] * 20)
    answers = mixed.copy()
    answers[20:30], answers[40:50] = 2, 1
    result = summarise(answers, mixed, CLASSES, good_class="good")
    assert result["level"] != "clear" and result["good_vs_defective"]["level"] == "clear"
    assert result["advice"][0]["code"] == "pass_fail_only"


def test_every_advice_has_both_languages():
    from ui.i18n import STRINGS

    assert not [code for code in ADVICE if f"feas.advice.{code}" not in STRINGS]


# ------------------------------------------------------------------------ on photos


def write_look_alike_task(root: Path, per_class: int = 8) -> Path:
    """Three classes of the same grey noise: nothing tells them apart."""
    rng = np.random.default_rng(5)
    for name in ("alpha", "beta", "gamma"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(128 + rng.normal(0, 30, (48, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:02d}.png")
    return root


def test_dapt_check_on_photos_separable_then_look_alike(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DAPT_CACHE_DIR", str(tmp_path / "cache"))
    colours = write_colour_task(tmp_path / "colours", per_class=8)
    assert main(["check", str(colours), "--backbone", "demo", "--shots", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["photos"] == 12 and result["backbone"] == "demo" and result["good_vs_defective"] is None
    assert result["accuracy"] > result["chance"] and result["level"] != "near_chance"
    cold = result["seconds"]
    assert list((tmp_path / "cache" / "image-features").rglob("*.safetensors"))  # kept for the next check
    assert main(["check", str(colours), "--backbone", "demo", "--shots", "4"]) == 0
    printed = capsys.readouterr().out
    assert "The frozen model tells these classes apart" in printed and "Zero-shot" in printed
    assert float(printed.split(", ")[1].split(" s)")[0]) <= max(cold, 1.0)  # read from the cache

    alike = write_look_alike_task(tmp_path / "alike")
    assert main(["check", str(alike), "--backbone", "demo", "--shots", "6", "--good-class", "alpha", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["level"] == "near_chance" and result["interval"][0] <= result["chance"]
    assert result["good_vs_defective"]["good_class"] == "alpha"
    assert "not_tuning_yet" in [a["code"] for a in result["advice"]]
    assert main(["check", str(alike), "--backbone", "demo", "--good-class", "omega"]) == 2
    assert "'omega' is not one of the classes" in capsys.readouterr().err


def test_dapt_tune_says_the_check_before_training(tiny_spec, tmp_path, capsys):
    data = write_colour_task(tmp_path / "data", per_class=6)
    assert main(["tune", str(data), "--backbone", tiny_spec, "--shots", "3", "--epochs", "1",
                 "--out", str(tmp_path / "p.safetensors"), "--json", "-"]) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)  # stdout stays the metrics JSON: the check goes to stderr
    assert "The frozen model tells these classes apart" in captured.err
    assert main(["tune", str(data), "--backbone", tiny_spec, "--shots", "3", "--epochs", "1", "--no-check",
                 "--out", str(tmp_path / "q.safetensors")]) == 0
    assert "tells these classes apart" not in capsys.readouterr().err


# ------------------------------------------------------------------------ the Tune page


def test_the_tune_page_shows_the_check_and_keeps_its_result(tmp_path, monkeypatch):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from streamlit.testing.v1 import AppTest

    from dapt_core.studio import job_queue, jobs
    from dapt_core.studio.workspace import Workspace
    from ui import nav

    monkeypatch.setenv("DAPT_WORKSPACE", str(tmp_path / "workspace"))
    workspace = Workspace(tmp_path / "workspace")
    task = write_colour_task(tmp_path / "colours", per_class=6)
    project = workspace.create_project("Colours")
    for folder in sorted(task.iterdir()):
        project.add_class(folder.name)
        project.add_image_paths(folder.name, sorted(folder.glob("*.png")))
    app = str(Path(__file__).resolve().parents[1] / "app.py")

    def tune_page() -> AppTest:
        at = AppTest.from_file(app, default_timeout=180)
        at.run()
        at.switch_page(nav.TUNE.path)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    def checks() -> list:
        return [job for job in job_queue.get_queue().jobs(project.id) if job.label == jobs.FEASIBILITY_LABEL]

    at = tune_page()
    assert "Can this model tell your classes apart?" in [s.value for s in at.subheader]
    [job] = checks()  # started by itself, in the background
    assert job.wait(120) and job.snapshot().state == job_queue.DONE, job.snapshot().error
    at.run()
    shown = " ".join(str(e.value) for kind in ("success", "info", "warning") for e in getattr(at, kind))
    assert "On the frozen features of your 9 training photos, this model tells the classes apart" in shown
    assert list((workspace.cache_dir / "feasibility").glob("*.json"))

    # a new session (a refresh, or a restarted server reading the workspace) shows it without computing again
    started = time.time()
    again = tune_page()
    again.session_state["lang"] = "ja"
    again.run()
    assert not again.exception, [e.value for e in again.exception]
    assert len(checks()) == 1 and time.time() - started < 60
    assert "このモデルでクラスを見分けられるか" in [s.value for s in again.subheader]
    shown = " ".join(str(e.value) for kind in ("success", "info", "warning") for e in getattr(again, kind))
    assert "学習用画像 9 枚" in shown
