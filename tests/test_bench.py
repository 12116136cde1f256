"""`dapt bench`: seed sweeps on miniature fakes of the benchmark layouts, resume, the report, domain
generalisation on fake ImageNet variants, and the per-data-set hyperparameters.

The fakes are the layouts of tests/test_datasets.py with images recoloured per class (noisy solid colours),
so the tiny random-weight CLIP of conftest.py has something to tell apart.
"""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_datasets import SPLIT_FILE_CASES, build_imagenet, build_imagenet_variants, build_split_file_dataset

from dapt_core.bench.hyperparameters import bench_config, recipe_hyperparameters
from dapt_core.cli import main
from dapt_core.data.datasets import FEW_SHOT_BENCHMARKS, imagenet_label_map, read_dataset
from dapt_core.engine.inference import Classifier
from dapt_core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
COLOURS = [(200, 40, 40), (40, 180, 60), (40, 60, 200), (220, 200, 40), (40, 200, 200), (160, 40, 200)]


def paint(path: Path, colour, rng) -> None:
    pixels = np.clip(np.array(colour)[None, None, :] + rng.normal(0, 25, (40, 40, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, format="PNG" if path.suffix.lower() == ".png" else "JPEG")


def build_colour_benchmark(root: Path, name: str, per_part: dict[str, int]) -> None:
    """A split-file data set (CoOp layout) whose images are noisy solid colours, one colour per class."""
    content = build_split_file_dataset(root, name, per_part)
    folder, _, image_base, _ = SPLIT_FILE_CASES[name]
    rng = np.random.default_rng(len(name))
    for part in content.values():
        for relative, label, _ in part:
            paint(root / folder / image_base / relative, COLOURS[label], rng)


def build_colour_imagenet(root: Path) -> None:
    """The miniature ImageNet and its four variants of test_datasets.py, coloured by wnid."""
    build_imagenet(root)
    build_imagenet_variants(root)
    wnids = sorted(p.name for p in (root / "imagenet" / "images" / "train").iterdir())
    colour = {wnid: COLOURS[i] for i, wnid in enumerate(wnids)}
    rng = np.random.default_rng(0)
    for image in sorted(root.rglob("*")):
        if image.suffix.lower() in (".jpeg", ".jpg"):
            parent = image.parent.name
            wnid = wnids[int(parent)] if parent.isdigit() else parent  # ImageNetV2 folders are labels
            paint(image, colour[wnid], rng)


def bench(*argv) -> int:
    return main(["bench", *[str(a) for a in argv]])


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def accuracy_of(prompt_file: Path, backbone, items) -> float:
    """Accuracy of a saved prompt file on `items`, computed independently of the bench code."""
    classifier = Classifier.load(prompt_file, backbone=backbone)
    logits = classifier.logits([item.path for item in items])
    labels = torch.tensor([item.label for item in items])
    return float((logits.argmax(dim=1) == labels).float().mean())


@pytest.fixture
def data(tmp_path) -> Path:
    root = tmp_path / "data"
    build_colour_benchmark(root, "DTD", {"train": 4, "val": 2, "test": 4})
    build_colour_benchmark(root, "EuroSAT", {"train": 4, "val": 2, "test": 3})
    return root


# --------------------------------------------------------------------------------------------- sweep
def test_sweep_of_two_seeds_writes_results_and_prompt_files_and_the_report_tabulates_them(
        data, tmp_path, tiny_spec, tiny_backbone, capsys):
    out = tmp_path / "runs"

    code = bench("--data-root", data, "--dataset", "dtd", "EuroSAT", "--shots", 2, "--seeds", 1, 2,
                 "--method", "zeroshot", "dapt", "--backbone", tiny_spec, "--epochs", 2, "--out", out,
                 "--workers", 0)

    assert code == 0
    printed = capsys.readouterr().out
    results = {}
    for dataset in ("DTD", "EuroSAT"):
        split = read_dataset(dataset, data)
        for method in ("zeroshot", "dapt"):
            for seed in (1, 2):
                folder = out / dataset / method / "2shot"
                record = load(folder / f"seed{seed}.json")
                results[dataset, method, seed] = record
                assert f"{dataset} {method} 2-shot seed {seed}: " in printed
                assert (record["dataset"], record["method"], record["shots"], record["seed"]) == (
                    dataset, method, 2, seed)
                assert list(record["per_class"]) == record["classnames"] == split.classnames
                assert record["per_class_accuracy"] == [record["per_class"][c] for c in split.classnames]
                assert record["n_train"] == 2 * len(split.classnames) and record["n_test"] == len(split.test)
                assert set(record["dispersion"]) == {"before", "after"}
                assert record["dispersion"]["after"]["intra"] > 0
                assert record["total_seconds"] >= record["train_seconds"] >= 0
                settings = record["settings"]
                assert (settings["backbone"], settings["backbone_weights"], settings["world_size"]) == (
                    tiny_spec, "random", 1)
                assert settings["few_shot_file"] == f"{dataset}/fewshot/2shot_seed{seed}.json"
                # The prompt file beside the JSON is the classifier that was measured.
                assert accuracy_of(folder / f"seed{seed}.safetensors", tiny_backbone, split.test) == \
                    pytest.approx(record["accuracy"], abs=1e-6)
    dapt = results["DTD", "dapt", 1]["settings"]
    assert dapt["preset"] == {"lr": 20.0, "beta_v": 100.0, "beta_t": 0.01, "epochs": 100}  # the recipe's DTD
    assert dapt["overrides"] == {"epochs": 2}
    assert (dapt["config"]["lr"], dapt["config"]["epochs"], dapt["config"]["beta_v"]) == (20.0, 2, 100.0)
    assert results["EuroSAT", "dapt", 2]["settings"]["preset"]["beta_t"] == 10.0  # EuroSAT's own preset
    assert results["DTD", "dapt", 1]["epochs"] == 2 and len(results["DTD", "dapt", 1]["history"]) == 2
    assert results["DTD", "zeroshot", 1]["accuracy"] == results["DTD", "zeroshot", 1]["zero_shot_accuracy"]

    assert main(["bench", "report", str(out)]) == 0

    markdown = (out / "report.md").read_text()
    rows = list(csv.DictReader((out / "report.csv").open()))
    by_key = {(r["dataset"], r["method"]): r for r in rows}
    for dataset in ("DTD", "EuroSAT"):
        cells = []
        for method in ("zeroshot", "dapt"):
            values = [100 * results[dataset, method, s]["accuracy"] for s in (1, 2)]
            row = by_key[dataset, method]
            assert (row["shots"], row["n_seeds"], row["seeds"]) == ("2", "2", "1 2")
            assert float(row["accuracy_mean"]) == pytest.approx(statistics.fmean(values), abs=1e-3)
            assert float(row["accuracy_std"]) == pytest.approx(statistics.stdev(values), abs=1e-3)
            cells.append(f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}")
        assert f"| {dataset} | {cells[0]} | {cells[1]} |" in markdown
    assert "| Data set | Zero-shot CLIP | DAPT |" in markdown  # methods side by side
    for method in ("zeroshot", "dapt"):
        per_seed = [statistics.fmean(100 * results[d, method, s]["accuracy"] for d in ("DTD", "EuroSAT"))
                    for s in (1, 2)]
        assert float(by_key["Average", method]["accuracy_mean"]) == pytest.approx(statistics.fmean(per_seed),
                                                                                   abs=1e-3)
    assert "**Average** (2 data sets)" in markdown
    assert markdown in capsys.readouterr().out


def test_resumed_sweep_skips_finished_seeds_and_reruns_an_interrupted_one(data, tmp_path, tiny_spec, capsys):
    out = tmp_path / "runs"
    common = ["--data-root", data, "--dataset", "DTD", "--shots", 2, "--method", "dapt", "--backbone", tiny_spec,
              "--epochs", 1, "--out", out, "--workers", 0]
    assert bench(*common, "--seeds", 1) == 0
    first = (out / "DTD/dapt/2shot/seed1.json").read_bytes()
    first_prompts = (out / "DTD/dapt/2shot/seed1.safetensors").read_bytes()
    # An interruption after seed 2's prompt file but before its JSON (the JSON is written last).
    (out / "DTD/dapt/2shot/seed2.safetensors").write_bytes(b"half")
    capsys.readouterr()

    assert bench(*common, "--seeds", 1, 2) == 0

    printed = capsys.readouterr().out
    assert "DTD dapt 2-shot seed 1: finished earlier" in printed
    assert "DTD dapt 2-shot seed 2: " in printed and "seed 2: finished earlier" not in printed
    assert (out / "DTD/dapt/2shot/seed1.json").read_bytes() == first
    assert (out / "DTD/dapt/2shot/seed1.safetensors").read_bytes() == first_prompts
    assert load(out / "DTD/dapt/2shot/seed2.json")["seed"] == 2
    assert Classifier.load(out / "DTD/dapt/2shot/seed2.safetensors").classnames == ["banded", "zigzagged"]
    assert not list(out.rglob("*.tmp"))

    # Asking for other settings in the same folder must not silently reuse the finished seeds.
    assert bench(*common, "--seeds", 1, "--lr", 0.5) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "other settings" in error and "lr 20.0 then, 0.5 now" in error


# ------------------------------------------------------------------------------ domain generalisation
def test_dg_scores_imagenet_prompts_on_the_variants_with_only_the_subset_classes(
        tmp_path, tiny_spec, tiny_backbone, capsys):
    data, out = tmp_path / "data", tmp_path / "runs"
    build_colour_imagenet(data)
    assert bench("--data-root", data, "--dataset", "ImageNet", "--seeds", 1, "--method", "dapt", "--backbone",
                 tiny_spec, "--epochs", 2, "--lr", 0.5, "--out", out, "--workers", 0) == 0
    source = out / "ImageNet/dapt/16shot/seed1.safetensors"
    assert load(out / "ImageNet/dapt/16shot/seed1.json")["settings"]["preset"]["epochs"] == 50  # ImageNet rule

    assert bench("dg", "--data-root", data, "--out", out, "--seeds", 1, "--method", "dapt", "--workers", 0) == 0

    classifier = Classifier.load(source, backbone=tiny_backbone)
    imagenet_names = classifier.classnames
    for target, classes in (("ImageNetV2", 6), ("ImageNetSketch", 6), ("ImageNetA", 3), ("ImageNetR", 2)):
        record = load(out / target / "dapt/16shot/seed1.json")
        split = read_dataset(target, data)
        mapping = imagenet_label_map(target, data)
        assert record["protocol"] == "domain-generalisation" and record["source_dataset"] == "ImageNet"
        assert record["n_classes"] == classes and record["classnames"] == split.classnames
        assert len(record["per_class_accuracy"]) == classes  # the per_class dict merges repeated names
        assert split.classnames == [imagenet_names[i] for i in mapping]
        # The tuned ImageNet classifier restricted to the target's classes (by wnid), computed here.
        logits = classifier.logits([item.path for item in split.test])[:, mapping]
        labels = torch.tensor([item.label for item in split.test])
        assert record["accuracy"] == pytest.approx(float((logits.argmax(1) == labels).float().mean()), abs=1e-6)
        assert record["n_test"] == len(split.test)
    # ImageNet-A holds wnids whose names occur twice in ImageNet: the restriction must pick them by wnid.
    assert imagenet_label_map("ImageNetA", data) == [0, 3, 5]

    assert main(["bench", "report", str(out)]) == 0
    markdown = (out / "report.md").read_text()
    assert "Domain generalisation: prompts tuned on 16-shot ImageNet" in markdown
    assert "| Method | ImageNet (source) | ImageNetV2 | ImageNetSketch | ImageNetA | ImageNetR | Average (targets) |" \
        in markdown
    capsys.readouterr()

    assert bench("dg", "--data-root", data, "--out", out, "--seeds", 1, "--method", "dapt", "--workers", 0) == 0
    assert capsys.readouterr().out.count("finished earlier, skipped") == 4

    assert bench("dg", "--data-root", data, "--out", out, "--seeds", 2, "--method", "dapt") == 2
    error = capsys.readouterr().err
    assert "ImageNet/dapt/16shot/seed2.safetensors is missing" in error and "--dataset ImageNet" in error


# ----------------------------------------------------------------------------------- hyperparameters
def test_hyperparameters_follow_the_recipe_by_data_set_name_and_overrides_win():
    recipe = recipe_hyperparameters
    for name in FEW_SHOT_BENCHMARKS:  # every data set of the paper has the recipe's DAPT settings
        hyperparameters, source = recipe(name, "dapt", 16)
        assert set(hyperparameters) == {"lr", "beta_v", "beta_t", "epochs"} and name in source
        assert hyperparameters["lr"] > 0 and hyperparameters["beta_v"] > 0 and hyperparameters["beta_t"] > 0
        assert hyperparameters["epochs"] == (50 if name == "ImageNet" else 200)
    assert recipe("DTD", "dapt", 16)[0] == {"lr": 20.0, "beta_v": 100.0, "beta_t": 0.01, "epochs": 200}
    assert recipe("eurosat", "dapt", 4)[0] == {"lr": 20.0, "beta_v": 100.0, "beta_t": 10.0, "epochs": 100}
    assert recipe("OxfordFlowers", "dapt", 1)[0] == {"lr": 0.002, "beta_v": 10.0, "beta_t": 0.01, "epochs": 50}
    assert recipe("imagenet", "dapt", 16)[0] == {"lr": 2.0, "beta_v": 0.01, "beta_t": 0.01, "epochs": 50}
    assert recipe("Caltech101", "dapt", 8)[0]["lr"] == 0.2
    assert recipe("StanfordCars", "coop", 16)[0] == {"lr": 0.002, "epochs": 200}  # CoOp's lr everywhere
    assert recipe("DTD", "vpt", 2)[0] == {"lr": 20.0, "epochs": 100}
    assert recipe("DTD", "zeroshot", 16)[0] == {}

    config, hyperparameters, source, applied = bench_config("ucf101", "dapt", 16, 3, {"lr": 0.5, "beta_t": None})
    assert (config.lr, config.beta_v, config.beta_t, config.epochs, config.seed) == (0.5, 0.1, 0.1, 200, 3)
    assert hyperparameters["lr"] == 20.0 and applied == {"lr": 0.5} and "UCF101" in source
    coop, *_ = bench_config("OxfordPets", "coop", 2, 1)
    assert (coop.lr, coop.beta_v, coop.beta_t, coop.epochs) == (0.002, 0.0, 0.0, 100)
    zeroshot, _, _, applied = bench_config("DTD", "zeroshot", 16, 1, {"lr": 0.5, "templates": "photo"})
    assert applied == {"templates": "photo"} and zeroshot.templates == "photo"

    with pytest.raises(ConfigError, match="dg"):
        recipe("ImageNet-A", "dapt", 16)
    with pytest.raises(ConfigError, match="dapt"):
        bench_config("DTD", "coop", 16, 1, {"beta_v": 5.0})


def test_bench_user_errors_exit_2_with_one_line(tmp_path, tiny_spec, capsys):
    assert bench("--dataset", "DTD", "--out", tmp_path / "runs") == 2
    assert "--data-root" in capsys.readouterr().err
    assert bench("--data-root", tmp_path, "--dataset", "CIFAR10", "--out", tmp_path / "runs") == 2
    assert "Unknown dataset 'CIFAR10'" in capsys.readouterr().err
    assert bench("--data-root", tmp_path, "--dataset", "DTD", "--out", tmp_path / "runs", "--backbone",
                 tiny_spec, "--workers", 0) == 2
    assert str(tmp_path / "dtd") in capsys.readouterr().err  # where the data set was looked for
    assert main(["bench", "report", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "no benchmark results" in error


# -------------------------------------------------------------------------------------- GPU script
def test_gpu_scaling_script_runs_quick_on_the_cpu(tmp_path):
    report = tmp_path / "scaling.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_dapt_scaling.py"), "--quick", "--classes", "2", "30",
         "--steps", "2", "--warmup", "1", "--json", str(report)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(report.read_text())["results"]
    assert [r["classes"] for r in results] == [2, 30]
    assert all(r["images_per_second"] > 0 and r["process_peak_rss_gib"] > 0 for r in results)
    assert "30 classes:" in done.stdout and "images/s" in done.stdout
