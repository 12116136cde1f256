"""Drift (dapt_core/deploy/drift.py) measured on the demo task: false alarms on fresh photos of the same
line, and how many photos it takes to see a change.

Per seed: DAPT tuned on 4 of the demo task's 5 classes (no defect, scratch, crack, dent; 16 training
and HELD_OUT held-out photos per class, demo backbone, 20 epochs), its prompt file written and loaded
as a line PC would. Then, against that file's calibration and reference sample:

- fresh photos of the same line: FRESH per class, rendered with another seed (the same distribution,
  photos the run never saw); WINDOWS random windows of 50 drawn from them; the share of windows flagged
  (the stated rate is ALPHA = 1 %), by each test alone and by the two together, and, for comparison,
  by the plain binomial test at the stated reject rate instead of the beta-binomial drift uses;
- changes, each applied to fresh photos: lighting (brightness -30 %), blur (Gaussian, radius 2), a new
  material (the ceramic task's photos of the same classes), a new defect type (the fifth class, stain,
  which the run never saw: all of the window, and a fifth of it among fresh photos of the four).
  For window sizes SIZES, TRIALS random windows of that many changed photos each; "photos to detect"
  is the smallest size at which at least 90 % of the windows are flagged.

    OMP_NUM_THREADS=2 python benchmarks/drift.py                 # 3 seeds; the table to stdout
    python benchmarks/drift.py --seeds 0 --out /tmp/drift_table.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dapt_core.data.folders import load_split  # noqa: E402
from dapt_core.demo.demo_task import CLASSES, TRAIN_PER_CLASS, render_demo_image  # noqa: E402
from dapt_core.deploy import drift  # noqa: E402
from dapt_core.deploy.calibration import Calibration  # noqa: E402
from dapt_core.engine import prompt_file  # noqa: E402
from dapt_core.engine.backbone import load_backbone  # noqa: E402
from dapt_core.engine.experiment import run_experiment  # noqa: E402
from dapt_core.engine.inference import Classifier  # noqa: E402
from dapt_core.engine.methods import TuningConfig  # noqa: E402

KNOWN, NEW_DEFECT = list(CLASSES[:4]), CLASSES[4]
HELD_OUT, FRESH, CHANGED = 100, 100, 50  # photos per class
WINDOW, WINDOWS, TRIALS = 50, 200, 30
SIZES = (5, 10, 20, 50, 100)
ALPHA = drift.ALPHA


def tuned_file(seed: int, root: Path) -> Path:
    for name in KNOWN:
        for part, count in (("train", TRAIN_PER_CLASS), ("test", HELD_OUT)):
            folder = root / part / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                Image.fromarray(render_demo_image(seed, part, name, i)).save(folder / f"{i:03d}.png")
    split = load_split(root, shots=TRAIN_PER_CLASS, seed=seed)
    result = run_experiment(load_backbone("demo", "cpu"), split, TuningConfig(method="dapt", epochs=20, seed=seed),
                            shots=TRAIN_PER_CLASS)
    return result.save_prompt_file(root / "drift.safetensors")


def photos(seed: int, classes, per_class: int, task: str = "carbon-fibre") -> list[Image.Image]:
    return [Image.fromarray(render_demo_image(seed, "test", name, i, task)) for name in classes
            for i in range(per_class)]


def encoded(classifier, images) -> tuple[np.ndarray, np.ndarray]:
    parts = [classifier.image_features(images[i:i + 100]) for i in range(0, len(images), 100)]
    return np.vstack([f for f, _ in parts]), np.concatenate([n for _, n in parts])


def one_window(pool, indices, calibration, reference, seed) -> tuple[dict, float]:
    features, novelty = pool
    report = drift.assess([str(i) for i in indices], novelty=novelty[indices], features=features[indices],
                          calibration=calibration, reference=reference, window=len(indices), seed=seed)
    return report.windows[0], report.alpha / len(report.tests)


def measure_seed(seed: int, work: Path) -> dict:
    started = time.perf_counter()
    path = tuned_file(seed, work / f"seed{seed}")
    tune_seconds = time.perf_counter() - started
    file = prompt_file.load(path)
    classifier = Classifier.from_prompt_file(file, device="cpu")
    calibration = Calibration.from_dict(file.header["calibration"])
    reference = drift.reference_of(file)
    unknown_model = drift.UnknownModel.of(calibration)
    rng = np.random.default_rng(1000 + seed)
    fresh_images = photos(100 + seed, KNOWN, FRESH)
    fresh = encoded(classifier, fresh_images)
    changed_images = fresh_images[::FRESH // CHANGED]  # CHANGED per class
    changes = {
        "lighting (brightness -30%)": encoded(classifier, [ImageEnhance.Brightness(im).enhance(0.7)
                                                           for im in changed_images]),
        "blur (Gaussian, radius 2)": encoded(classifier, [im.filter(ImageFilter.GaussianBlur(2))
                                                          for im in changed_images]),
        "new material (ceramic)": encoded(classifier, photos(100 + seed, KNOWN, CHANGED, task="ceramic")),
        f"new defect type ({NEW_DEFECT}), all of the window": encoded(classifier,
                                                                      photos(100 + seed, [NEW_DEFECT], 4 * CHANGED)),
    }
    stains = changes[f"new defect type ({NEW_DEFECT}), all of the window"]
    # A fifth of each window is the new defect, the rest fresh photos of the four known classes.
    mixed = (np.vstack([fresh[0], stains[0]]), np.concatenate([fresh[1], stains[1]]))
    # False alarms: random windows of fresh photos.
    flags = {"unknown share": 0, "features": 0, "either (drift's flag)": 0, "plain binomial at the stated rate": 0}
    for trial in range(WINDOWS):
        indices = rng.choice(len(fresh[1]), WINDOW, replace=False)
        w, level = one_window(fresh, indices, calibration, reference, seed + trial)
        flags["unknown share"] += w.p_unknown < level
        flags["features"] += w.p_features < level
        flags["either (drift's flag)"] += w.flagged
        flags["plain binomial at the stated rate"] += drift.binomial_tail(
            w.unknown, w.photos, calibration.reject_rate) < level
    detection = {}
    for name, pool in list(changes.items()) + [(f"new defect type ({NEW_DEFECT}), a fifth of the window", mixed)]:
        rates = {}
        for size in SIZES:
            hits = 0
            for trial in range(TRIALS):
                if pool is mixed:
                    new = max(1, round(size / 5))
                    indices = np.concatenate([rng.choice(len(fresh[1]), size - new, replace=False),
                                              len(fresh[1]) + rng.choice(len(stains[1]), new, replace=False)])
                else:
                    indices = rng.choice(len(pool[1]), min(size, len(pool[1])), replace=False)
                hits += one_window(pool, indices, calibration, reference, seed + trial)[0].flagged
            rates[size] = hits / TRIALS
        detection[name] = rates
    return {"seed": seed, "tune_seconds": tune_seconds, "accuracy": file.header["metrics"]["accuracy"],
            "held_out": calibration.held_out, "reference": len(reference),
            "expected_unknown": unknown_model.expected_share,
            "false_alarms": {k: v / WINDOWS for k, v in flags.items()},
            "fresh_unknown_share": float((fresh[1] > unknown_model.threshold).mean()),
            "detection": detection, "seconds": time.perf_counter() - started}


def photos_to_detect(rates: dict) -> str:
    return next((str(size) for size, rate in rates.items() if rate >= 0.9), f">{max(rates)}")


def table(results: list[dict]) -> str:
    seeds = ", ".join(str(r["seed"]) for r in results)
    lines = [f"Demo task, DAPT tuned on 4 of 5 classes (20 epochs, demo backbone), seeds {seeds}; "
             f"{results[0]['held_out']} held-out photos calibrate, {results[0]['reference']} "
             f"of them are the reference sample; per-window false-alarm rate stated: {ALPHA:.0%}.", "",
             "| fresh photos of the same line, windows of 50 | " + " | ".join(f"seed {r['seed']}" for r in results)
             + " |", "|---" * (len(results) + 1) + "|"]
    for key in results[0]["false_alarms"]:
        lines.append(f"| windows flagged: {key} | " + " | ".join(f"{r['false_alarms'][key]:.1%}" for r in results)
                     + " |")
    lines.append("| unknown share of the fresh photos (expected) | " + " | ".join(
        f"{r['fresh_unknown_share']:.1%} ({r['expected_unknown']:.1%})" for r in results) + " |")
    lines += ["", f"| change: photos to detect (90% of {TRIALS} windows flagged) | "
              + " | ".join(f"seed {r['seed']}" for r in results) + " | flagged at 50 photos |",
              "|---" * (len(results) + 2) + "|"]
    for name in results[0]["detection"]:
        lines.append(f"| {name} | " + " | ".join(photos_to_detect(r["detection"][name]) for r in results) + " | "
                     + ", ".join(f"{r['detection'][name][50]:.0%}" for r in results) + " |")
    lines += ["", "Detection rate by window size (mean over seeds): " + "; ".join(
        f"{name}: " + ", ".join(f"{size}: {np.mean([r['detection'][name][size] for r in results]):.0%}"
                                for size in SIZES) for name in results[0]["detection"])]
    lines.append(f"Tuning {np.mean([r['tune_seconds'] for r in results]):.0f} s and everything "
                 f"{np.mean([r['seconds'] for r in results]):.0f} s per seed on this machine; accuracy on the "
                 f"held-out photos {', '.join(format(r['accuracy'], '.3f') for r in results)}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", help="also write the table here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="dapt-drift-") as work:
        for seed in args.seeds:
            results.append(measure_seed(seed, Path(work)))
            print(f"seed {seed}: {results[-1]['seconds']:.0f} s", file=sys.stderr)
    text = table(results)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
