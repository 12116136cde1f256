"""Zero-shot, CoOp and DAPT on tasks whose frozen features barely separate the classes.

On such tasks (issue 20: real textile photos, 3 classes, the demo CLIP) cross-entropy can pull every
class text embedding onto one point and leave the tuned model at chance. This script measures, per
task x seed x method: test accuracy, last-epoch training accuracy, the class text spread
(metrics.text_spread) before and after tuning, the run's health status (engine/run_health.py) and
the seconds of the whole run (choices included), so the table in docs/recipe.md can be re-measured.

Methods (all at `dapt tune`'s defaults otherwise: 16 shots, inspection preset, scaled learning rate):

  zeroshot     the zero-shot classifier
  coop         CoOp as `dapt tune --method coop` ran it before the collapse safeguard
  coop-new     CoOp as `dapt tune --method coop` runs it now (engine/safeguard.py)
  dapt-old     DAPT as `dapt tune` ran it before the collapse safeguard
  dapt-beta0   DAPT without the inter-dispersion term (--beta-t 0), no safeguard
  dapt-new     DAPT as `dapt tune` runs it now (engine/safeguard.py)

    python benchmarks/hard_tasks.py                                   # every cell, then the table
    python benchmarks/hard_tasks.py --task textile --seed 1 --method coop --results cells.jsonl
    python benchmarks/hard_tasks.py --table cells.jsonl               # the table of cells run so far

Each cell is appended to --results as one JSON line as soon as it is done, so a sweep can run as
separate short processes (one per cell) and be printed at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dapt_core.data.folders import load_split  # noqa: E402
from dapt_core.demo.demo_task import write_demo_task  # noqa: E402
from dapt_core.engine.backbone import load_backbone  # noqa: E402
from dapt_core.engine.experiment import run_experiment  # noqa: E402
from dapt_core.engine.methods import TuningConfig  # noqa: E402
from dapt_core.engine.selection import scaled_learning_rate  # noqa: E402

TASKS = ("textile", "textile-faint", "carbon-fibre", "ceramic")
METHODS = ("zeroshot", "coop", "coop-new", "dapt-old", "dapt-beta0", "dapt-new")
SHOTS = 16


def task_dir(root: Path, task: str) -> Path:
    """The task's folder under `root`, written (seed 0, as `dapt demo-data DIR --task TASK`) if absent."""
    folder = root / task
    if not (folder / "test").is_dir():
        write_demo_task(folder, seed=0, task=task)
    return folder


def run_cell(backbone, root: Path, task: str, seed: int, method: str) -> dict:
    """One task x seed x method, as `dapt tune DIR --backbone demo --shots 16 --seed SEED` runs it."""
    split = load_split(str(task_dir(root, task)), shots=SHOTS, seed=seed)
    lr = scaled_learning_rate(backbone)
    configs = {  # (config, safeguard on)
        "zeroshot": (TuningConfig(method="zeroshot", seed=seed), False),
        "coop": (TuningConfig(method="coop", lr=lr, seed=seed), False),
        "coop-new": (TuningConfig(method="coop", lr=lr, seed=seed), True),
        "dapt-old": (TuningConfig(method="dapt", lr=lr, seed=seed), False),
        "dapt-beta0": (TuningConfig(method="dapt", lr=lr, beta_t=0.0, seed=seed), False),
        "dapt-new": (TuningConfig(method="dapt", lr=lr, seed=seed), True),
    }
    config, safeguard = configs[method]
    started = time.perf_counter()
    result = run_experiment(backbone, split, config, shots=SHOTS, safeguard=safeguard)
    seconds = time.perf_counter() - started
    metrics = result.metrics()
    history = metrics.get("history") or []
    spreads = [row.get("text_spread") for row in history]
    return {
        "task": task, "seed": seed, "method": method, "accuracy": metrics["accuracy"],
        "zero_shot_accuracy": metrics["zero_shot_accuracy"],
        "train_accuracy": history[-1]["train_accuracy"] if history else None,
        "text_spread_before": metrics["dispersion"]["before"]["text_inter"],
        "text_spread_after": metrics["dispersion"]["after"]["text_inter"],
        # the image side: a visual prompt can make every test photo look alike to the model
        "image_inter_after": metrics["dispersion"]["after"]["inter"],
        "image_intra_after": metrics["dispersion"]["after"]["intra"],
        # the safeguard's action and the learning rate of the run that was kept
        "chosen": _kept(metrics.get("safeguard")),
        "health": (metrics.get("health") or {}).get("status"),
        "seconds": seconds,
        # every 10th epoch: how the spread and the training accuracy moved
        "spread_curve": spreads[::10], "train_curve": [row["train_accuracy"] for row in history][::10],
    }


def _kept(record: dict | None) -> str | None:
    """The safeguard's action and the run it kept, e.g. "switched_method: coop 0.00851"."""
    if not record:
        return None
    rate = "" if record.get("lr") is None else f" {record['lr']:.3g}"
    return f"{record['action']}: {record['method']}{rate}"


def table(rows: list[dict]) -> str:
    """Markdown: one line per task x seed x method, then the mean per task x method."""
    lines = ["| task | seed | method | accuracy | train acc | text spread (zs -> tuned) | health | safeguard | s |",
             "|---|---|---|---|---|---|---|---|---|"]
    order = {m: i for i, m in enumerate(METHODS)}
    rows = sorted(rows, key=lambda r: (TASKS.index(r["task"]) if r["task"] in TASKS else 99, r["seed"],
                                       order.get(r["method"], 99)))

    def num(value, digits=3):
        return "-" if value is None else f"{value:.{digits}f}"

    for r in rows:
        lines.append(f"| {r['task']} | {r['seed']} | {r['method']} | {num(r['accuracy'])} | "
                     f"{num(r['train_accuracy'], 2)} | {num(r['text_spread_before'], 4)} -> "
                     f"{num(r['text_spread_after'], 5)} | {r.get('health') or '-'} | {r.get('chosen') or '-'} | "
                     f"{r['seconds']:.0f} |")
    lines += ["", "| task | method | mean accuracy | min accuracy | seeds | mean s |", "|---|---|---|---|---|---|"]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["method"]), []).append(r)
    for (task, method), members in groups.items():
        accuracies = [m["accuracy"] for m in members]
        lines.append(f"| {task} | {method} | {statistics.mean(accuracies):.3f} | {min(accuracies):.3f} | "
                     f"{len(members)} | {statistics.mean(m['seconds'] for m in members):.0f} |")
    return "\n".join(lines)


def pivot(rows: list[dict]) -> str:
    """Markdown, one line per task x seed: test accuracy of each method side by side, and what the
    safeguard kept (docs/recipe.md shows this one)."""
    cells = {(r["task"], r["seed"], r["method"]): r for r in rows}
    methods = [m for m in METHODS if any(key[2] == m for key in cells)]
    lines = ["| task | seed | " + " | ".join(methods) + " | kept by dapt-new |",
             "|---|---|" + "---|" * len(methods) + "---|"]
    for task, seed in sorted({(r["task"], r["seed"]) for r in rows},
                             key=lambda k: (TASKS.index(k[0]) if k[0] in TASKS else 99, k[1])):
        values = [cells.get((task, seed, m)) for m in methods]
        kept = cells.get((task, seed, "dapt-new"))
        lines.append(f"| {task} | {seed} | " + " | ".join("-" if v is None else f"{v['accuracy']:.3f}" for v in values)
                     + f" | {(kept or {}).get('chosen') or '-'} |")
    return "\n".join(lines)


def read_rows(path: Path) -> list[dict]:
    """The cells of a results file; a cell run twice counts once (the last run)."""
    rows: dict[tuple, dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[(row["task"], row["seed"], row["method"])] = row
    return list(rows.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--seed", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--method", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--data-root", type=Path, help="where the task folders are written (default: a temp dir)")
    parser.add_argument("--results", type=Path, help="append each cell here as a JSON line")
    parser.add_argument("--table", type=Path, help="only print the table of this results file")
    args = parser.parse_args()
    if args.table:
        rows = read_rows(args.table)
        print(pivot(rows) + "\n\n" + table(rows))
        return
    root = args.data_root or Path(tempfile.mkdtemp(prefix="dapt-hard-tasks-"))
    backbone = load_backbone("demo")
    rows = []
    for task in args.task:
        for seed in args.seed:
            for method in args.method:
                row = run_cell(backbone, root, task, seed, method)
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if not k.endswith("_curve")}), file=sys.stderr)
                if args.results:
                    with args.results.open("a") as out:
                        out.write(json.dumps(row) + "\n")
    print(pivot(rows) + "\n\n" + table(rows))


if __name__ == "__main__":
    main()
