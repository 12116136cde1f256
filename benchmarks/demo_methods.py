"""Zero-shot, CoOp, VPT and DAPT on the bundled demo task, over seeds: the model card's table.

Every method runs through the same engine as `dapt tune` (dapt_core.engine.experiment.run_experiment) on the
demo task written by `dapt demo-data` (16 training and 200 test pictures per class), or on any task
folder given with --data. Prints one row per method with the mean ± standard deviation over seeds of
test accuracy, the last epoch's training accuracy, intra-dispersion of the test images and
inter-dispersion of the class text embeddings, and writes every run's metrics as it goes: a run whose
JSON is already in --out is read back, not repeated, so an interrupted sweep resumes.

    python benchmarks/demo_methods.py --out runs/demo-table --rotations   # `dapt tune`'s defaults, 90-degree turns
    python benchmarks/demo_methods.py --out runs/demo-recipe --preset recipe   # the paper's recipe (lr 0.002)
    python benchmarks/demo_methods.py --out runs/demo-cv --lr auto   # lr by the 5 x 2-fold cross-validation

Without --lr the rate is chosen as `dapt tune` chooses it: the rate scaled to the backbone for the inspection
preset, the recipe's 0.002 for the recipe preset. The time a selection took is recorded with the run
(`lr_selection.cpu_seconds`, next to the run's `cpu_seconds`), and the table gives their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from dapt_core.atomic import write_json
from dapt_core.data.folders import load_split
from dapt_core.demo.demo_task import write_demo_task
from dapt_core.engine.backbone import load_backbone
from dapt_core.engine.experiment import run_experiment
from dapt_core.engine.methods import AUGMENTATION_PRESETS, DEFAULT_PRESET, DEFAULT_SHOTS, METHODS, TuningConfig
from dapt_core.engine.selection import choose_learning_rate

SHOTS = DEFAULT_SHOTS


def mean_sd(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def run_one(backbone, data: Path, method: str, seed: int, args) -> dict:
    split = load_split(data, shots=SHOTS, seed=seed)
    settings = {"method": method, "seed": seed, "epochs": args.epochs, "preset": args.preset,
                "rotations": args.rotations}
    if method == "dapt":
        settings.update(beta_v=args.beta_v, beta_t=args.beta_t)
    choose = args.lr if args.lr in ("scaled", "quick", "auto") else None
    if args.lr is None and args.preset == "inspection":
        choose = "scaled"
    if args.lr is not None and not choose:
        settings["lr"] = float(args.lr)
    config = TuningConfig(**{k: v for k, v in settings.items() if v is not None})
    selection = None
    # CPU time of this process as well as wall time: on a shared machine the wall time of the choice
    # and of the run can differ by others' load, their CPU times by what each computes.
    cpu_started = time.process_time()
    if choose and config.trains:
        selection = choose_learning_rate(choose, backbone, split.classnames, split.train, config, shots=SHOTS)
        config = replace(config, lr=selection.lr)
    cpu_selection = time.process_time() - cpu_started
    metrics = run_experiment(backbone, split, config, shots=SHOTS).metrics()
    metrics["cpu_seconds"] = time.process_time() - cpu_started - cpu_selection
    if selection:
        metrics["lr_selection"] = {**selection.to_dict(), "cpu_seconds": cpu_selection}
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for each run's metrics JSON (existing runs are reused)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--backbone", default="demo", help="backbone spec (default: the bundled demo CLIP)")
    parser.add_argument("--preset", choices=AUGMENTATION_PRESETS, default=DEFAULT_PRESET,
                        help="augmentation preset (default: %(default)s, as `dapt tune`)")
    parser.add_argument("--rotations", action="store_true", help="inspection preset: allow 90-degree turns")
    parser.add_argument("--lr", default=None,
                        help="a learning rate for every method, 'scaled', 'quick' or 'auto' "
                             "(default: as `dapt tune` chooses)")
    parser.add_argument("--beta-v", type=float)
    parser.add_argument("--beta-t", type=float)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--data",
                        help="an existing task folder (default: the demo task, written to a temporary folder)")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data) if args.data else Path(tempfile.mkdtemp()) / "demo"
    if not (data / "train").is_dir():
        write_demo_task(data)
    backbone = load_backbone(args.backbone)
    rows: dict[str, list[dict]] = {}
    for method in args.methods:
        for seed in tqdm(args.seeds, desc=method):
            path = out / f"{method}_seed{seed}.json"
            if path.exists():
                metrics = json.loads(path.read_text())
            else:
                metrics = run_one(backbone, data, method, seed, args)
                write_json(path, metrics)
            rows.setdefault(method, []).append(metrics)
    print_table(rows)


def print_table(rows: dict[str, list[dict]]) -> None:
    print("\n| method | preset | lr | accuracy | train accuracy, last epoch | intra-dispersion (test images) "
          "| inter-dispersion (class texts) | per seed | lr choice / training time |")
    print("|---|---|---|---|---|---|---|---|---|")
    zero = rows.get("zeroshot") or next(iter(rows.values()))
    print(f"| (frozen CLIP, before) | - | - | {mean_sd([m['zero_shot_accuracy'] for m in zero])} | - | "
          f"{mean_sd([m['dispersion']['before']['intra'] for m in zero])} | "
          f"{mean_sd([m['dispersion']['before']['text_inter'] for m in zero])} | "
          f"{', '.join(format(m['zero_shot_accuracy'], '.3f') for m in zero)} | - |")
    for method, metrics in rows.items():
        if method == "zeroshot":
            continue
        lrs = sorted({m["config"]["lr"] for m in metrics})
        presets = sorted({m["config"].get("preset", "recipe") + (" +turns" if m["config"].get("rotations") else "")
                          for m in metrics})
        print(f"| {method} | {', '.join(presets)} | {', '.join(f'{lr:.3g}' for lr in lrs)} | "
              f"{mean_sd([m['accuracy'] for m in metrics])} | "
              f"{mean_sd([m['history'][-1]['train_accuracy'] for m in metrics])} | "
              f"{mean_sd([m['dispersion']['after']['intra'] for m in metrics])} | "
              f"{mean_sd([m['dispersion']['after']['text_inter'] for m in metrics])} | "
              f"{', '.join(format(m['accuracy'], '.3f') for m in metrics)} | {selection_cost(metrics)} |")


def selection_cost(metrics: list[dict]) -> str:
    """Mean CPU time of the learning-rate choice as a fraction of the same run's (training and scoring)."""
    ratios = [m["lr_selection"]["cpu_seconds"] / m["cpu_seconds"] for m in metrics
              if m.get("lr_selection") and "cpu_seconds" in m]
    return f"{statistics.mean(ratios):.2f}" if ratios else "-"


if __name__ == "__main__":
    main()
