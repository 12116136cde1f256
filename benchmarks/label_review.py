"""How well the label review (dapt_core/engine/label_review.py) finds planted label flips, near duplicates
and outliers, on the demo tasks with the bundled demo backbone.

For each task, shots per class (4, 8, 16) and seed (3), the shots are drawn from a pool of 40 photos per
class (the task's 16 training photos and its first 24 test photos, seed 0 of the renderer), and:

- flips: 10 % of the shots (at least one) get another class's label, drawn at random; the review sees the
  shots alone (one folder per class). Top-N: the N photos whose other class is most likely against their
  own (label_review.suspect_scores), N = the number planted (so precision = recall); at the threshold:
  the photos the review flags as suspect labels.
- near duplicates: the same shots as train/ and as many other pool photos per class as test/; then 10 % of
  the shots (at least one) are copied with slight changes (resized by 2-6 %, brightness +-1-3 %,
  re-encoded as JPEG at quality 80-94), the copies going in turn into the same class's train/ (within a
  class), the same class's test/ (a leak) and another class's train/ (conflicting labels). Top-N: the N
  closest pairs; at the threshold: the review's near-duplicate findings. "scope ok": found pairs whose
  scope (within_class, train_test_leak, across_classes) is the planted one.
- outliers: one photo of another task is put into that near-duplicate folder (a wrong picture);
  "found" counts it, "other flagged" counts the photos flagged besides, per 100 photos.

"probe" is the check before tuning's leave-one-out nearest-class-mean accuracy on the clean shots: how well
the frozen features separate the classes at all, which bounds what a review of labels can see. A control
task ("colours": noisy solid colours, as tests/conftest.py draws them) shows the review where the features
do separate the classes.

    python benchmarks/label_review.py --out /tmp/label_review_table.md
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dapt_core.data.images import sha256_of  # noqa: E402
from dapt_core.data.records import LabeledImage  # noqa: E402
from dapt_core.demo.demo_task import CLASSES, render_demo_image  # noqa: E402
from dapt_core.engine import label_review as review_lib  # noqa: E402
from dapt_core.engine.backbone import load_backbone  # noqa: E402
from dapt_core.engine.feasibility import leave_one_out_predictions  # noqa: E402

POOL = 40  # photos per class to draw shots from
SHOTS = (4, 8, 16)
SEEDS = (1, 2, 3)
TASKS = ("carbon-fibre", "ceramic", "colours")
SHARE = 0.1
COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}


def render_pool(task: str) -> tuple[list[str], list[list[np.ndarray]]]:
    """The task's class names and POOL pictures per class."""
    if task == "colours":
        rng = np.random.default_rng(0)
        pool = [[np.clip(np.array(colour)[None, None, :] + rng.normal(0, 25, (48, 48, 3)), 0, 255).astype(np.uint8)
                 for _ in range(POOL)] for colour in COLOURS.values()]
        return list(COLOURS), pool
    pool = [[render_demo_image(0, "train", name, i, task) if i < 16
             else render_demo_image(0, "test", name, i - 16, task) for i in range(POOL)] for name in CLASSES]
    return list(CLASSES), pool


def near_copy(img: np.ndarray, rng: np.random.Generator) -> bytes:
    """A slightly changed copy: resized by 2-6 %, brightness +-1-3 %, JPEG at quality 80-94."""
    image = Image.fromarray(img)
    side = max(8, round(image.width * (1 + rng.choice([-1, 1]) * rng.uniform(0.02, 0.06))))
    image = image.resize((side, side), Image.BICUBIC)
    pixels = np.asarray(image).astype(np.float32) * (1 + rng.choice([-1, 1]) * rng.uniform(0.01, 0.03))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="JPEG",
                                                                     quality=int(rng.integers(80, 95)))
    return buffer.getvalue()


def save_png(img: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


def features_of(backbone, paths: list[Path], labels: list[int], cache: Path) -> np.ndarray:
    features, kept, skipped = review_lib.frozen_features(
        backbone, [LabeledImage(p, label) for p, label in zip(paths, labels)], cache_dir=cache)
    assert not skipped and kept == list(range(len(paths))), skipped
    return features


def flip_cell(backbone, classnames, pool, shots, seed, folder: Path, cache: Path) -> dict:
    rng = np.random.default_rng([seed, shots, 1])
    n_classes = len(classnames)
    paths, labels = [], []
    for c, pictures in enumerate(pool):
        for i in rng.choice(POOL, shots, replace=False):
            paths.append(save_png(pictures[i], folder / "pool" / f"{c}-{i:03d}.png"))
            labels.append(c)
    features = features_of(backbone, paths, labels, cache)
    probe = float(np.mean(leave_one_out_predictions(features, np.array(labels), n_classes) == np.array(labels)))
    planted = set(rng.choice(len(labels), max(1, round(SHARE * len(labels))), replace=False).tolist())
    noisy = list(labels)
    for i in planted:
        noisy[i] = int((noisy[i] + rng.integers(1, n_classes)) % n_classes)
    scores = review_lib.suspect_scores(features, noisy, n_classes)
    top = set(np.argsort(-scores, kind="stable")[:len(planted)].tolist())
    result = review_lib.review(features, noisy, classnames)
    flagged = {f.photos[0] for f in result["findings"] if f.kind == "suspect_label"}
    return {"probe": probe, "photos": len(labels), "planted": len(planted), "top_hits": len(top & planted),
            "flagged": len(flagged), "flag_hits": len(flagged & planted)}


def duplicate_cell(backbone, classnames, pool, foreign, shots, seed, folder: Path, cache: Path) -> dict:
    rng = np.random.default_rng([seed, shots, 2])
    n_classes = len(classnames)
    paths, labels, parts, train_rows = [], [], [], []
    for c, pictures in enumerate(pool):
        order = rng.permutation(POOL)
        for part, chosen in (("train", order[:shots]), ("test", order[shots:2 * shots])):
            for i in chosen:
                if part == "train":
                    train_rows.append(len(paths))
                paths.append(save_png(pictures[i], folder / "pool" / f"{c}-{i:03d}.png"))
                labels.append(c)
                parts.append(part)
    originals = rng.choice(train_rows, max(1, round(SHARE * shots * n_classes)), replace=False)
    planted = {}
    for n, row in enumerate(originals):
        scope = ("within_class", "train_test_leak", "across_classes")[n % 3]
        c = labels[row]
        label = int((c + rng.integers(1, n_classes)) % n_classes) if scope == "across_classes" else c
        pixels = np.asarray(Image.open(paths[row]).convert("RGB"))
        path = folder / f"copy-{seed}-{shots}-{n}.jpg"
        path.write_bytes(near_copy(pixels, rng))
        planted[(int(row), len(paths))] = scope
        paths.append(path)
        labels.append(label)
        parts.append("test" if scope == "train_test_leak" else "train")
    outlier = len(paths)
    paths.append(save_png(foreign, folder / f"foreign-{seed}-{shots}.png"))
    labels.append(int(rng.integers(n_classes)))
    parts.append("train")
    features = features_of(backbone, paths, labels, cache)
    result = review_lib.review(features, labels, classnames, parts=parts, hashes=[sha256_of(p) for p in paths])
    distance = 1 - features @ features.T
    rows, cols = np.triu_indices(len(paths), k=1)
    closest = np.argsort(distance[rows, cols], kind="stable")[:len(planted)]
    top = {(int(rows[i]), int(cols[i])) for i in closest}
    found = {tuple(sorted(f.photos)): f.scope for f in result["findings"] if f.kind in ("near_duplicate", "duplicate")}
    hits = {pair: scope for pair, scope in found.items() if pair in planted}
    outliers = {f.photos[0] for f in result["findings"] if f.kind == "outlier"}
    return {"photos": len(paths), "planted": len(planted), "top_hits": len(top & set(planted)),
            "flagged": len(found), "flag_hits": len(hits),
            "scope_ok": sum(planted[pair] == scope for pair, scope in hits.items()),
            "outlier_found": int(outlier in outliers), "outlier_others": len(outliers - {outlier})}


def ratio(hits: int, of: int) -> str:
    return f"{hits / of:.2f} ({hits}/{of})" if of else "– (0/0)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    backbone = load_backbone("demo", "cpu")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp), Path(tmp) / "cache"
        pools = {task: render_pool(task) for task in TASKS}
        for task in TASKS:
            classnames, pool = pools[task]
            other = "ceramic" if task == "carbon-fibre" else "carbon-fibre"
            foreign = pools[other][1][1][0]  # a scratched photo of another material
            for shots in SHOTS:
                flips, dups = [], []
                for seed in SEEDS:
                    folder = root / task
                    flips.append(flip_cell(backbone, classnames, pool, shots, seed, folder, cache))
                    dups.append(duplicate_cell(backbone, classnames, pool, foreign, shots, seed, folder, cache))
                total = {key: sum(cell[key] for cell in flips)
                         for key in ("planted", "top_hits", "flagged", "flag_hits")}
                dup = {key: sum(cell[key] for cell in dups) for key in dups[0]}
                rows.append(
                    f"| {task} | {shots} | {np.mean([c['probe'] for c in flips]):.2f} | {total['planted']} | "
                    f"{ratio(total['top_hits'], total['planted'])} | {ratio(total['flag_hits'], total['flagged'])} | "
                    f"{ratio(total['flag_hits'], total['planted'])} | {dup['planted']} | "
                    f"{ratio(dup['top_hits'], dup['planted'])} | {ratio(dup['flag_hits'], dup['flagged'])} | "
                    f"{ratio(dup['flag_hits'], dup['planted'])} | {dup['scope_ok']}/{dup['flag_hits']} | "
                    f"{dup['outlier_found']}/{len(SEEDS)} | {100 * dup['outlier_others'] / dup['photos']:.1f} |")
                print(rows[-1], file=sys.stderr)
    header = [
        f"Label review on the demo tasks, bundled demo backbone, seeds {', '.join(map(str, SEEDS))} summed "
        f"(benchmarks/label_review.py, {time.perf_counter() - started:.0f} s on CPU). Thresholds: suspect when its "
        f"own class <= {review_lib.SUSPECT_OWN_MAX} and another >= {review_lib.SUSPECT_OTHER_MIN} likely; near "
        f"duplicate below {review_lib.NEAR_DUPLICATE_FACTOR} x the median nearest-neighbour distance; outlier above "
        f"Q3 + {review_lib.OUTLIER_IQR} IQR (log distances).",
        "",
        "| task | shots/class | probe acc | flips planted | flips top-N P=R | flips P @thr | flips R @thr | "
        "near-dups planted | dups top-N P=R | dups P @thr | dups R @thr | scope ok | outlier found | "
        "other outliers /100 photos |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    table = "\n".join(header + rows) + "\n"
    print(table)
    if args.out:
        args.out.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
