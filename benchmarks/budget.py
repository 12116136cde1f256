"""How much of the recipe a CPU user can skip, and for what loss: accuracy against the share of the epochs.

A time budget (dapt tune --budget, engine/budget.py) shortens a run to the epochs that fit, with the
learning-rate schedule laid over them. This runs exactly that: `dapt tune`'s defaults (DAPT, inspection
preset, scaled learning rate, 16 shots, good class "no defect") with 1/8, 1/4, 1/2 and all of the recipe's
epochs, per task and seed, and records accuracy, escapes, overkill and seconds.

    python benchmarks/budget.py --task carbon-fibre --seed 1 --share 0.125 --results budget.jsonl
    python benchmarks/budget.py --table budget.jsonl

Each cell is appended to --results as one JSON line when it is done, so a sweep runs as separate short
processes.
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
from dapt_core.demo.demo_task import write_demo_task  # noqa: E402
from dapt_core.engine.backbone import load_backbone  # noqa: E402
from dapt_core.engine.device import describe_cpu  # noqa: E402
from dapt_core.engine.methods import TuningConfig  # noqa: E402
from dapt_core.engine.tuning_run import tune_and_evaluate  # noqa: E402

SHOTS = 16
GOOD = "no defect"


def run_cell(backbone, root: Path, task: str, seed: int, share: float) -> dict:
    folder = root / task
    if not (folder / "test").is_dir():
        write_demo_task(folder, seed=0, task=task)
    split = load_split(folder, shots=SHOTS, seed=seed)
    full = TuningConfig(method="dapt", seed=seed, preset="inspection").epochs_for(SHOTS)
    epochs = max(2, round(full * share))
    config = TuningConfig(method="dapt", seed=seed, preset="inspection", epochs=epochs)
    started = time.perf_counter()
    run = tune_and_evaluate(backbone, split, config, shots=SHOTS, lr_choice="scaled", good_class=GOOD)
    metrics = run.metrics()
    after = (metrics.get("pass_fail") or {}).get("after") or {}
    return {"task": task, "seed": seed, "share": share, "epochs": epochs, "full_epochs": full,
            "accuracy": metrics["accuracy"], "zero_shot_accuracy": metrics["zero_shot_accuracy"],
            "escapes": (after.get("escapes") or {}).get("rate"), "overkill": (after.get("overkill") or {}).get("rate"),
            "safeguard": (metrics.get("safeguard") or {}).get("action"),
            "train_seconds": metrics["train_seconds"], "seconds": time.perf_counter() - started,
            "cpu": describe_cpu()}


def table(path: Path) -> None:
    cells = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    groups: dict[tuple, list] = {}
    for cell in cells:
        groups.setdefault((cell["task"], cell["share"]), []).append(cell)
    print("| task | share of the recipe's epochs | epochs | seeds | accuracy | per seed | escapes | overkill | "
          "run s (mean) | loss against all epochs (points) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    full = {task: statistics.mean(c["accuracy"] for c in group)
            for (task, share), group in groups.items() if share == 1.0}
    for (task, share), group in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        accuracy = statistics.mean(c["accuracy"] for c in group)
        seeds = ", ".join(f"{c['accuracy']:.3f}" for c in sorted(group, key=lambda c: c["seed"]))

        def mean(key, group=group):
            values = [c[key] for c in group if c.get(key) is not None]
            return f"{statistics.mean(values):.3f}" if values else ""

        loss = f"{100 * (full[task] - accuracy):+.1f}" if task in full else ""
        print(f"| {task} | {share:g} | {group[0]['epochs']} | {len(group)} | {accuracy:.3f} | {seeds} | "
              f"{mean('escapes')} | {mean('overkill')} | {statistics.mean(c['seconds'] for c in group):.0f} | "
              f"{loss} |")
    cpus = sorted({c.get("cpu", "?") for c in cells})
    print(f"\nCPU: {'; '.join(cpus)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="carbon-fibre")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--share", type=float, default=1.0, help="share of the recipe's epochs (default: all)")
    parser.add_argument("--root", default="/tmp/dapt-budget", help="where the demo tasks are written")
    parser.add_argument("--results", help="append the cell as one JSON line here")
    parser.add_argument("--table", help="print the table of the cells in this JSONL file and stop")
    args = parser.parse_args()
    if args.table:
        table(Path(args.table))
        return
    cell = run_cell(load_backbone("demo", "cpu"), Path(args.root), args.task, args.seed, args.share)
    print(json.dumps(cell))
    if args.results:
        with open(args.results, "a", encoding="utf-8") as out:
            out.write(json.dumps(cell) + "\n")


if __name__ == "__main__":
    main()
