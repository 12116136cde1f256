"""Whole photo against tiles, and whether the heatmaps point at the defect.

Per task x seed x tiling (16 shots, `dapt tune`'s defaults otherwise, DAPT on the demo model):
accuracy, escapes and overkill (most probable class) on the test photos, the training and
evaluation seconds, and, for a tiled run on a task whose renderer records the defects' boxes (the
`highres` task, defect_boxes.json), the pointing game on every defective test photo: the defect
map's peak (deploy/heatmaps.py) inside the recorded box ("strict"), or within 15 px of it (the
tolerance of Zhang et al.'s pointing game), and the share of the map's mass above its median that
lies inside the box.

    python benchmarks/tiles.py --task highres --seed 1 --tiles auto --epochs 50 --results cells.jsonl
    python benchmarks/tiles.py --table cells.jsonl

Each cell is appended to --results as one JSON line when it is done, so a sweep runs as separate
short processes; --heatmaps DIR also writes the overlays of the first few defective test photos.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dapt_core.data.folders import load_split  # noqa: E402
from dapt_core.data.images import load_image  # noqa: E402
from dapt_core.demo.demo_task import write_demo_task  # noqa: E402
from dapt_core.engine.backbone import load_backbone  # noqa: E402
from dapt_core.engine.experiment import run_experiment  # noqa: E402
from dapt_core.engine.inference import Classifier  # noqa: E402
from dapt_core.engine.methods import TuningConfig  # noqa: E402
from dapt_core.engine.selection import scaled_learning_rate  # noqa: E402
from dapt_core.engine.tiling import mass_inside  # noqa: E402

SHOTS = 16
TOLERANCE = 15  # pixels, as in the pointing game of Zhang et al. (2016)


def task_dir(root: Path, task: str) -> Path:
    folder = root / task
    if not (folder / "test").is_dir():
        write_demo_task(folder, seed=0, task=task)
    return folder


def pointing(classifier: Classifier, folder: Path, good_class: str, limit: int | None, overlays: Path | None) -> dict:
    boxes_file = folder / "defect_boxes.json"
    if not boxes_file.is_file() or not classifier.tiling.on:
        return {}
    boxes = json.loads(boxes_file.read_text())["boxes"]
    tests = sorted(key for key in boxes if key.startswith("test/"))[:limit]
    strict = tolerant = 0
    masses, seconds = [], 0.0
    for number, key in enumerate(tests):
        started = time.perf_counter()
        prediction = classifier.predict(folder / key, heatmaps=True)[0]
        seconds += time.perf_counter() - started
        heat = prediction.heatmap
        x0, y0, x1, y1 = boxes[key]
        x, y = heat.peak
        strict += x0 <= x < x1 and y0 <= y < y1
        tolerant += x0 - TOLERANCE <= x < x1 + TOLERANCE and y0 - TOLERANCE <= y < y1 + TOLERANCE
        masses.append(mass_inside(heat.values, (x0, y0, x1, y1), *heat.size))
        if overlays is not None and number < 10:
            from dapt_core.deploy.heatmaps import save_overlay

            save_overlay(load_image(folder / key), heat, overlays / key.replace("/", "__").replace(".jpg", ".png"),
                         caption=f"{prediction.label} {prediction.score:.0%} · true box {x0},{y0}")
    n = max(1, len(tests))
    return {"pointing_strict": strict / n, "pointing_15px": tolerant / n, "mass_inside": statistics.mean(masses),
            "photos_pointed": len(tests), "seconds_per_heatmap": seconds / n}


def run_cell(backbone, root: Path, task: str, seed: int, tiles: str, epochs: int | None, limit: int | None,
             overlays: Path | None) -> dict:
    folder = task_dir(root, task)
    split = load_split(folder, shots=SHOTS, seed=seed)
    config = TuningConfig(method="dapt", seed=seed, preset="inspection", lr=scaled_learning_rate(backbone),
                          tiles=tiles, epochs=epochs)
    good = "no defect"
    started = time.perf_counter()
    result = run_experiment(backbone, split, config, shots=SHOTS, good_class=good)
    seconds = time.perf_counter() - started
    metrics = result.metrics()
    after = metrics["pass_fail"]["after"] if metrics.get("pass_fail") else {}
    cell = {"task": task, "seed": seed, "tiles": tiles, "epochs": result.tuning.epochs, "epochs_asked": epochs,
            "safeguard": (result.safeguard or {}).get("action"),
            "accuracy": metrics["accuracy"], "zero_shot_accuracy": metrics["zero_shot_accuracy"],
            "escapes": after.get("escapes"), "overkill": after.get("overkill"),
            "train_seconds": metrics["train_seconds"], "eval_seconds": metrics["eval_seconds"],
            "seconds": seconds, "n_test": metrics["n_test"],
            "seconds_per_step": metrics["train_seconds"] / max(1, sum(1 for _ in metrics["history"]) * max(
                1, len(split.train) // config.batch_size))}
    path = root / f"{task}-{seed}-{tiles}.safetensors"
    result.save_prompt_file(path)
    classifier = Classifier.load(path, backbone=backbone)
    cell.update(pointing(classifier, folder, good, limit, overlays))
    return cell


def table(path: Path) -> None:
    cells = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    groups: dict[tuple, list] = {}
    for cell in cells:
        groups.setdefault((cell["task"], cell["tiles"], cell.get("epochs_asked", cell["epochs"])), []).append(cell)
    print("| task | tiles | epochs | seeds | accuracy (mean) | per seed | zero-shot | pointing strict | "
          "pointing 15 px | mass inside | train s | eval s | safeguard |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (task, tiles, epochs), group in sorted(groups.items()):
        def mean(key, group=group):
            values = [c[key] for c in group if c.get(key) is not None]
            return statistics.mean(values) if values else None

        def fmt(value, pattern="{:.3f}"):
            return "" if value is None else pattern.format(value)

        seeds = ", ".join(f"{c['accuracy']:.3f}" for c in sorted(group, key=lambda c: c["seed"]))
        print(f"| {task} | {tiles} | {epochs} | {len(group)} | {fmt(mean('accuracy'))} | {seeds} | "
              f"{fmt(mean('zero_shot_accuracy'))} | {fmt(mean('pointing_strict'))} | {fmt(mean('pointing_15px'))} | "
              f"{fmt(mean('mass_inside'))} | {fmt(mean('train_seconds'), '{:.0f}')} | "
              f"{fmt(mean('eval_seconds'), '{:.0f}')} | "
              f"{', '.join(sorted({str(c.get('safeguard')) for c in group}))} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="highres")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tiles", default="auto")
    parser.add_argument("--epochs", type=int, help="default: the recipe's (200 at 16 shots)")
    parser.add_argument("--root", default="/tmp/dapt-tiles", help="where tasks and prompt files are written")
    parser.add_argument("--results", help="append the cell as one JSON line here")
    parser.add_argument("--pointing-limit", type=int, help="point on the first N defective test photos only")
    parser.add_argument("--heatmaps", help="write the overlays of the first 10 defective test photos here")
    parser.add_argument("--table", help="print the table of the cells in this JSONL file and stop")
    args = parser.parse_args()
    if args.table:
        table(Path(args.table))
        return
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    backbone = load_backbone("demo")
    cell = run_cell(backbone, root, args.task, args.seed, args.tiles, args.epochs, args.pointing_limit,
                    Path(args.heatmaps) if args.heatmaps else None)
    line = json.dumps(cell)
    print(line)
    if args.results:
        with open(args.results, "a") as stream:
            stream.write(line + "\n")


if __name__ == "__main__":
    main()
