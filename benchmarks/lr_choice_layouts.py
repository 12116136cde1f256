#!/usr/bin/env python
"""The learning-rate choices of `dapt tune` against the recipe's per-data-set rates, on miniature benchmark layouts.

The recipe's DAPT rates span 0.002 (Flowers102, StanfordCars) to 20 (DTD, EuroSAT, Food101, SUN397, UCF101),
chosen per data set on CLIPs with a logit scale of 100. A user's photos come with no such table, so
`dapt tune` scales the recipe's 0.002 to the backbone's logit scale ("scaled", no trial runs) or, on
request, tries three short runs on the training photos ("quick"). This script measures both against the
data set's own recipe rate, with everything else at the recipe's settings for that data set (betas,
epochs, augmentation), on miniature copies of the benchmark layouts read through `read_dataset`, the path
`dapt bench` takes.

The copies are the layouts the tests build (tests/test_datasets.py), with their pictures painted so that
a class is told apart by a faint tint and its stripes' spacing (at any angle) under strong noise: hard enough that
accuracy does not saturate at a few shots, easy enough that tuning can learn it. They are not the data
sets: the numbers say whether a rate learns, stalls or diverges on this backbone, not what the paper's
accuracies would be.

Printed per data set and seed: zero-shot accuracy and, for each rate, the rate, the test accuracy, the
last epoch's training accuracy and the seconds spent (choice + tuning); then the means over data sets
and seeds.

    python benchmarks/lr_choice_layouts.py           # demo backbone; DTD EuroSAT Caltech101 OxfordPets Flowers102
    python benchmarks/lr_choice_layouts.py --seeds 1 2 3 --shots 8
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the miniature layouts' builders

from test_datasets import SPLIT_FILE_CASES, build_split_file_dataset  # noqa: E402

from dapt_core.bench.hyperparameters import bench_config  # noqa: E402
from dapt_core.data.datasets import read_dataset  # noqa: E402
from dapt_core.data.fewshot import few_shot_split  # noqa: E402
from dapt_core.engine.backbone import load_backbone  # noqa: E402
from dapt_core.engine.experiment import run_experiment  # noqa: E402
from dapt_core.engine.selection import choose_learning_rate  # noqa: E402

DATASETS = ("DTD", "EuroSAT", "Caltech101", "OxfordPets", "Flowers102")
CHOICES = ("recipe", "scaled", "quick")


def paint_layout(root: Path, name: str, shots: int, test_per_class: int, size: int = 96) -> None:
    """The data set's miniature layout, each picture a faint class tint and stripe spacing under noise."""
    content = build_split_file_dataset(root, name, {"train": shots, "val": 1, "test": test_per_class})
    folder, _, image_base, _ = SPLIT_FILE_CASES[name]
    rng = np.random.default_rng(len(name))
    y, x = np.mgrid[0:size, 0:size] / size
    for part in content.values():
        for relative, label, _ in part:
            angle, frequency = rng.uniform(0, np.pi), 4 + label
            phase = rng.uniform(0, 2 * np.pi)
            stripes = np.sin(2 * np.pi * frequency * (x * np.cos(angle) + y * np.sin(angle)) + phase)
            tint = np.array([120.0, 120.0, 120.0]) + 6 * np.eye(3)[label % 3]
            pixels = tint + 20 * stripes[..., None] + rng.normal(0, 50, (size, size, 3))
            path = root / folder / image_base / relative
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=sorted(SPLIT_FILE_CASES))
    parser.add_argument("--backbone", default="demo")
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--test-per-class", type=int, default=40)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)

    backbone = load_backbone(args.backbone, args.device)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dapt-lr-layouts-") as tmp:
        root = Path(tmp)
        for name in args.datasets:
            paint_layout(root, name, args.shots, args.test_per_class)
            full = read_dataset(name, root)
            for seed in args.seeds:
                split = few_shot_split(full, args.shots, seed)
                recipe, hyperparameters, _, _ = bench_config(name, "dapt", args.shots, seed)
                line = {"dataset": name, "seed": seed}
                for choice in CHOICES:
                    started = time.perf_counter()
                    config = recipe
                    if choice != "recipe":
                        chosen = choose_learning_rate(choice, backbone, split.classnames, split.train, recipe,
                                                      shots=args.shots)
                        config = replace(recipe, lr=chosen.lr)
                    result = run_experiment(backbone, split, config, shots=args.shots, cache_dir=root / "cache")
                    history = result.tuning.history
                    line["zero_shot"] = result.before.accuracy
                    line[choice] = {"lr": config.lr, "accuracy": result.after.accuracy,
                                    "train_accuracy": history[-1]["train_accuracy"] if history else None,
                                    "seconds": time.perf_counter() - started}
                rows.append(line)
                print(f"{name} seed {seed} (recipe lr {hyperparameters['lr']:g}, "
                      f"beta_v {hyperparameters['beta_v']:g}, beta_t {hyperparameters['beta_t']:g}, "
                      f"{hyperparameters['epochs']} epochs): zero-shot {line['zero_shot']:.3f}; "
                      + "; ".join(f"{c} lr {line[c]['lr']:.3g}: {line[c]['accuracy']:.3f} "
                                  f"(train {line[c]['train_accuracy']:.2f}, {line[c]['seconds']:.0f} s)"
                                  for c in CHOICES), flush=True)

    print("\n| rate | mean test accuracy | runs below zero-shot | mean seconds (choice + tuning) |")
    print("|---|---|---|---|")
    print(f"| zero-shot | {statistics.mean(r['zero_shot'] for r in rows):.3f} | | |")
    for choice in CHOICES:
        below = sum(r[choice]["accuracy"] < r["zero_shot"] for r in rows)
        print(f"| {choice} | {statistics.mean(r[choice]['accuracy'] for r in rows):.3f} | {below} of {len(rows)} | "
              f"{statistics.mean(r[choice]['seconds'] for r in rows):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
