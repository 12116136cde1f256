"""The label review (dapt_core/engine/label_review.py): suspect labels, duplicates and leaks, outliers, on
synthetic features with a known answer, and `dapt review` on the colour task with the demo model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import write_colour_task

from dapt_core.cli import main
from dapt_core.engine import label_review as lr

CLASSES = ["red", "green", "blue"]


def clusters(per_class: int = 10, dim: int = 32, spread: float = 0.15, seed: int = 0):
    """Three well separated clusters of unit vectors, `per_class` each, labelled 0, 1, 2 in order."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:3]
    x = np.concatenate([centre + spread * rng.normal(size=(per_class, dim)) / np.sqrt(dim) for centre in centres])
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.repeat(np.arange(3), per_class)


def of_kind(result: dict, kind: str) -> list[lr.Finding]:
    return [f for f in result["findings"] if f.kind == kind]


def test_clean_clusters_give_no_finding():
    x, labels = clusters()
    result = lr.review(x, labels, CLASSES, hashes=[f"h{i}" for i in range(len(labels))])
    assert result["findings"] == []
    assert result["k"] == 9  # min(10, 10 photos per class - 1)
    assert result["separation"]["accuracy"] == 1.0


def test_a_planted_flip_ranks_first_and_says_what_it_looks_like():
    x, labels = clusters(per_class=10, spread=0.5)
    noisy = labels.copy()
    noisy[3] = 2  # a red photo labelled blue
    scores = lr.suspect_scores(x, noisy, 3)
    assert int(np.argmax(scores)) == 3
    suspects = of_kind(lr.review(x, noisy, CLASSES), "suspect_label")
    assert [f.photos for f in suspects] == [(3,)]
    assert suspects[0].suggested == "red"
    assert "labelled 'blue' but looks like 'red'" in suspects[0].reason
    assert "9 of its 9 nearest photos are 'red'" in suspects[0].reason


def test_two_flips_are_ranked_by_how_much_more_likely_the_other_class_is():
    x, labels = clusters(per_class=12, spread=0.4, seed=1)
    noisy = labels.copy()
    noisy[0], noisy[20] = 1, 0
    suspects = of_kind(lr.review(x, noisy, CLASSES), "suspect_label")
    assert {f.photos[0] for f in suspects} == {0, 20}
    assert suspects[0].score >= suspects[1].score


def test_exact_and_near_duplicates_within_a_class_across_classes_and_a_leak():
    x, labels = clusters(per_class=10, spread=0.5, seed=2)
    rng = np.random.default_rng(3)
    near = x[4] + 1e-3 * rng.normal(size=x.shape[1])
    x = np.vstack([x, x[7], near, x[15] + 1e-3 * rng.normal(size=x.shape[1])])
    labels = np.concatenate([labels, [0, 0, 2]])  # 30: exact copy of 7; 31: near copy of 4; 32: of 15 ('green')
    hashes = [f"h{i}" for i in range(30)] + ["h7", "n31", "n32"]
    parts = ["train"] * 30 + ["train", "test", "train"]
    result = lr.review(x, labels, CLASSES, hashes=hashes, parts=parts)
    exact = of_kind(result, "duplicate")
    assert [(f.photos, f.scope) for f in exact] == [((7, 30), "within_class")]
    found = {f.photos: f.scope for f in of_kind(result, "near_duplicate")}
    assert found == {(4, 31): "train_test_leak", (15, 32): "across_classes"}
    leak = next(f for f in of_kind(result, "near_duplicate") if f.scope == "train_test_leak")
    assert "flatters the accuracy" in leak.reason
    # a photo and its copy are each other's nearest neighbour, yet neither is an outlier for being far
    # from everything else: outliers are measured without duplicates
    assert not {4, 7, 15, 30, 31, 32} & {f.photos[0] for f in of_kind(result, "outlier")}


def test_ordinary_photos_of_one_class_are_not_near_duplicates():
    x, labels = clusters(per_class=30, spread=0.3, seed=4)
    near, cutoff, median = lr.near_duplicate_pairs(1 - x @ x.T)
    assert near == [] and cutoff == pytest.approx(lr.NEAR_DUPLICATE_FACTOR * median)


def test_an_outlier_is_found():
    x, labels = clusters(per_class=10, spread=0.3, seed=5)
    odd = np.zeros(x.shape[1])
    odd[10] = 1.0  # a direction no photo has
    result = lr.review(np.vstack([x, odd]), np.append(labels, 1), CLASSES)
    outliers = of_kind(result, "outlier")
    assert [f.photos for f in outliers] == [(30,)]
    assert "unlike every other photo" in outliers[0].reason
    assert not of_kind(result, "suspect_label")  # far from every class: not "looks like" another one


def test_finding_keys_are_stable_and_json_ready():
    x, labels = clusters(per_class=6, spread=0.5)
    noisy = labels.copy()
    noisy[0] = 1
    result = lr.review(x, noisy, CLASSES)
    finding = of_kind(result, "suspect_label")[0]
    ids = [f"sha{i}" for i in range(len(noisy))]
    assert finding.key(ids) == "suspect_label:sha0:red"
    names = [f"p{i}.png" for i in range(18)]
    data = lr.to_json({**result, "names": names, "paths": [f"/x/{name}" for name in names]})
    json.dumps(data)
    assert data["findings"][0]["names"] == ["p0.png"] and data["findings"][0]["paths"] == ["/x/p0.png"]


# --------------------------------------------------------------- the command, real features (demo model)
@pytest.fixture(scope="module")
def planted_folder(tmp_path_factory):
    """The colour task as train/ and test/, with a red photo filed as green, a train photo copied into
    test/ (a leak) and one photo saved twice in one class."""
    root = tmp_path_factory.mktemp("review")
    write_colour_task(root / "train", per_class=8, seed=0)
    write_colour_task(root / "test", per_class=4, seed=1)
    shutil.move(root / "train" / "red" / "red_002.png", root / "train" / "green" / "red_002.png")
    shutil.copy(root / "train" / "blue" / "blue_001.png", root / "test" / "blue" / "leaked.png")
    shutil.copy(root / "train" / "green" / "green_003.png", root / "train" / "green" / "green_again.png")
    return root


def test_review_command_prints_the_findings(planted_folder, capsys):
    assert main(["review", str(planted_folder), "--backbone", "demo"]) == 0
    out = capsys.readouterr().out
    assert "Labels that look wrong (1):" in out
    assert "train/green/red_002.png is labelled 'green' but looks like 'red'" in out
    assert "Exact duplicates (2):" in out
    assert "test/blue/leaked.png, train/blue/blue_001.png are the same file" in out
    assert "the test photo flatters the accuracy" in out


def test_review_command_json(planted_folder, capsys):
    assert main(["review", str(planted_folder), "--backbone", "demo", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    found = {(f["kind"], tuple(f["names"]), f["scope"], f["suggested"]) for f in data["findings"]
             if f["kind"] != "outlier"}
    assert found == {
        ("suspect_label", ("train/green/red_002.png",), None, "red"),
        ("duplicate", ("test/blue/leaked.png", "train/blue/blue_001.png"), "train_test_leak", None),
        ("duplicate", ("train/green/green_003.png", "train/green/green_again.png"), "within_class", None),
    }
    assert data["photos"] == 38 and data["classnames"] == sorted(CLASSES)


def test_an_outlier_with_a_copy_is_still_an_outlier():
    """Its copy is its nearest photo; not counting duplicates, it is still unlike every other photo."""
    x, labels = clusters(per_class=10, spread=0.3, seed=5)
    odd = np.zeros(x.shape[1])
    odd[10] = 1.0
    copy = odd + 1e-4 * np.random.default_rng(0).normal(size=x.shape[1])
    result = lr.review(np.vstack([x, odd, copy]), np.append(labels, [1, 1]), CLASSES)
    assert [f.photos for f in of_kind(result, "near_duplicate")] == [(30, 31)]
    assert {f.photos for f in of_kind(result, "outlier")} == {(30,), (31,)}
