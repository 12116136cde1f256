"""What to label next (dapt_core/engine/labelling_order.py): the rankings on synthetic features, their
reasons, and `dapt next` on a tiny folder."""

import json
import shutil

import numpy as np
import pytest
from conftest import write_colour_task

from dapt_core.cli import main
from dapt_core.engine import labelling_order as lo
from dapt_core.errors import DataError

SIZES = (40, 25, 15, 8, 5)


def clustered(seed: int = 0, sizes=SIZES, dim: int = 32, spread: float = 0.15):
    """Features in len(sizes) well-separated clusters of different sizes, and each row's cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    x = np.concatenate([c + spread * rng.normal(size=(s, dim)) for c, s in zip(centres, sizes)])
    return x, np.repeat(np.arange(len(sizes)), sizes)


@pytest.mark.parametrize("seed", range(5))
def test_first_k_picks_cover_every_cluster(seed):
    x, truth = clustered(seed)
    picks = lo.rank_typical(x, count=len(SIZES), seed=seed)
    assert sorted(truth[p.index] for p in picks[:len(SIZES)]) == list(range(len(SIZES)))
    assert [truth[p.index] for p in picks[:len(SIZES)]] == list(range(len(SIZES)))  # largest group first
    assert sorted(p.index for p in picks) == list(range(len(x)))  # every photo once


def test_random_choice_usually_misses_a_cluster():
    x, truth = clustered(0)
    rng = np.random.default_rng(0)
    draws = [len(set(truth[rng.choice(len(x), len(SIZES), replace=False)])) == len(SIZES) for _ in range(500)]
    assert np.mean(draws) < 0.2


def test_labelled_groups_count_as_covered():
    x, truth = clustered(1)
    labelled = [0, 40]  # one photo of each of the two largest clusters
    rest = np.setdiff1d(np.arange(len(x)), labelled)
    picks = lo.rank_typical(x[rest], labelled=x[labelled], count=3, seed=0)
    assert sorted(truth[rest][p.index] for p in picks[:3]) == [2, 3, 4]


def test_most_typical_photo_of_a_cluster_comes_first():
    rng = np.random.default_rng(2)
    core = 0.05 * rng.normal(size=(30, 8)) + np.eye(8)[0]
    stray = np.eye(8)[0] + 0.6 * np.eye(8)[1]  # in the cluster, far from its middle
    x = np.vstack([stray, core])
    first = lo.rank_typical(x, count=1)[0]
    assert first.index != 0 and first.kind == "typical"
    assert lo.rank_typical(x, count=1)[-1].index == 0  # the stray photo comes last


def test_reasons_of_typical_picks():
    x, truth = clustered(3)
    picks = lo.rank_typical(x, count=len(SIZES), seed=0)
    assert picks[0].reason == "typical of a group of 40 photos nobody has labelled yet"
    assert picks[4].reason == "typical of a group of 5 photos nobody has labelled yet"
    assert picks[0].group == 40 and picks[0].kind == "typical"
    after = picks[len(SIZES)]
    assert after.kind == "typical_more" and after.reason.startswith("another typical photo of a group of")
    lone = lo.rank_typical(np.eye(4), count=4)
    assert "nobody has labelled anything like it yet" in lone[0].reason


def test_kmeans_is_seeded_and_leaves_no_cluster_empty():
    import torch

    x, _ = clustered(4)
    x = torch.tensor(x, dtype=torch.float32)
    a, _ = lo.kmeans(x, 7, seed=3)
    b, _ = lo.kmeans(x, 7, seed=3)
    assert torch.equal(a, b)
    assert (torch.bincount(a, minlength=7) > 0).all()
    same, _ = lo.kmeans(torch.ones(6, 3), 4)  # identical points: still 4 clusters, no crash
    assert len(set(same.tolist())) == 4


def test_uncertain_ranking_unknown_first_then_smallest_margin():
    names = ["scratch", "dent", "stain"]
    x, truth = clustered(5, sizes=(5, 5, 5, 5))
    p = np.tile([0.9, 0.05, 0.05], (len(x), 1))
    p[3] = [0.45, 0.40, 0.15]  # cluster 0: hesitates
    p[7] = [0.15, 0.75, 0.1]  # cluster 1
    novelty = np.zeros(len(x))
    novelty[12] = 0.5  # cluster 2: unknown
    picks = lo.rank_uncertain(x, p, names, novelty=novelty, unknown_threshold=0.3, count=4, seed=0)
    assert [pk.index for pk in picks[:3]] == [12, 3, 7]
    assert sorted(truth[pk.index] for pk in picks[:4]) == [0, 1, 2, 3]  # one per group
    assert picks[0].kind == "unknown" and "unlike the photos the model was tuned on" in picks[0].reason
    assert picks[1].reason == "the model hesitates between 'scratch' (45%) and 'dent' (40%)"
    assert picks[2].reason.startswith("the model's least sure answer in a group of 5 photos: 'dent' (75%)")
    assert sorted(pk.index for pk in picks) == list(range(len(x)))
    with pytest.raises(DataError):
        lo.rank_uncertain(x, p[:3], names)


def test_class_mean_probabilities_give_labelled_classes_only():
    x, truth = clustered(6, sizes=(10, 10, 10))
    p = lo.class_mean_probabilities(x, x[[0, 10]], [0, 1], 3)
    assert np.allclose(p.sum(1), 1) and np.all(p[:, 2] < 1e-6)
    assert np.all(p[:10, 0] > 0.5) and np.all(p[10:20, 1] > 0.5)


# ------------------------------------------------------------------------------- the command
@pytest.fixture
def folders(tmp_path):
    unlabelled = write_colour_task(tmp_path / "shift", per_class=6, size=32, seed=1)
    labelled = write_colour_task(tmp_path / "labelled", per_class=2, size=32, seed=2)
    shutil.copy(labelled / "red" / "red_000.png", unlabelled / "copy_of_labelled.png")
    return unlabelled, labelled


def test_next_ranks_a_folder(tiny_spec, folders, capsys):
    unlabelled, labelled = folders
    assert main(["next", str(unlabelled), "--backbone", tiny_spec, "--count", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mode"] == "typical" and result["photos"] == 19 and len(result["picks"]) == 3
    assert all(pick["reason"].startswith("typical of a group of") for pick in result["picks"])
    assert len({pick["path"] for pick in result["picks"]}) == 3

    assert main(["next", str(unlabelled), "--labelled", str(labelled), "--backbone", tiny_spec, "--count", "4"]) == 0
    printed = capsys.readouterr().out
    assert "4 of 18 photos to label next" in printed and "1. " in printed and "4. " in printed
    assert "1 photo(s) left out: the same file is labelled already." in printed
    assert "taught DAPT no more than as many photos picked at random" in printed  # what it was measured to do


def test_next_from_a_prompt_file(tiny_spec, folders, tmp_path, capsys):
    unlabelled, labelled = folders
    out = tmp_path / "p.safetensors"
    train = write_colour_task(tmp_path / "train", per_class=6, size=32, seed=3)
    assert main(["tune", str(train), "--backbone", tiny_spec, "--shots", "3", "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["next", str(unlabelled), "--from", str(out), "--count", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mode"] == "uncertain" and len(result["picks"]) == 5
    assert result["classnames"] == ["blue", "green", "red"]
    for pick in result["picks"]:
        assert pick["kind"] in ("unknown", "uncertain")
        assert "unlike the photos" in pick["reason"] or "the model" in pick["reason"]


def test_next_says_what_is_wrong(tmp_path, tiny_spec, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["next", str(tmp_path / "empty"), "--backbone", tiny_spec]) == 2
    assert "No image files found" in capsys.readouterr().err
    assert main(["next", str(tmp_path / "missing"), "--backbone", tiny_spec]) == 2
    few = write_colour_task(tmp_path / "few", per_class=1, size=32)
    assert main(["next", str(few), "--by", "uncertain", "--backbone", tiny_spec]) == 2
    assert "needs a tuned prompt file (--from)" in capsys.readouterr().err
