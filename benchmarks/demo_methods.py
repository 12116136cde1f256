"""Zero-shot, CoOp, VPT and DAPT on the bundled demo task, over seeds: the model card's table.

Every method runs through the same engine as `dapt tune` (dapt_core.engine.experiment.run_experiment) on the
demo task written by `dapt demo-data` (16 training and 200 test pictures per class). Prints one row
per method with the mean and standard error over seeds of test accuracy, intra-dispersion of the
test images and inter-dispersion of the class text embeddings, and writes every run's metrics.

    python benchmarks/demo_methods.py --out runs/demo-table --seeds 1 2 3
    python benchmarks/demo_methods.py --out runs/demo-lr-auto --lr auto     # lr chosen by CV on the shots
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from dapt_core.data.folders import load_split
from dapt_core.demo.demo_task import write_demo_task
from dapt_core.engine.backbone import load_backbone
from dapt_core.engine.experiment import run_experiment
from dapt_core.engine.methods import TuningConfig
from dapt_core.engine.selection import select_learning_rate

METHODS = ("zeroshot", "coop", "vpt", "dapt")


def mean_se(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) / math.sqrt(len(values)):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for each run's metrics JSON")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--lr", default=None,
                        help="a learning rate for every method, or 'auto' (default: the engine's)")
    parser.add_argument("--beta-v", type=float)
    parser.add_argument("--beta-t", type=float)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--data", help="an existing demo task folder (default: written to a temporary folder)")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data) if args.data else Path(tempfile.mkdtemp()) / "demo"
    if not (data / "train").is_dir():
        write_demo_task(data)
    backbone = load_backbone("demo")
    rows: dict[str, list[dict]] = {}
    for method in args.methods:
        for seed in tqdm(args.seeds, desc=method):
            split = load_split(data, shots=16, seed=seed)
            settings = {"method": method, "seed": seed, "epochs": args.epochs}
            if method == "dapt":
                settings.update(beta_v=args.beta_v, beta_t=args.beta_t)
            if args.lr not in (None, "auto"):
                settings["lr"] = float(args.lr)
            config = TuningConfig(**{k: v for k, v in settings.items() if v is not None})
            selection = None
            if args.lr == "auto" and config.trains:
                selection = select_learning_rate(backbone, split.classnames, split.train, config, shots=16)
                config = replace(config, lr=selection.lr)
            metrics = run_experiment(backbone, split, config, shots=16).metrics()
            if selection:
                metrics["lr_selection"] = selection.scores
            (out / f"{method}_seed{seed}.json").write_text(json.dumps(metrics, indent=1))
            rows.setdefault(method, []).append(metrics)
    print("\n| method | lr | accuracy | intra-dispersion (test images) | inter-dispersion (class texts) |")
    print("|---|---|---|---|---|")
    zero = rows.get("zeroshot") or next(iter(rows.values()))
    print(f"| (frozen CLIP, before) | - | {mean_se([m['zero_shot_accuracy'] for m in zero])} | "
          f"{mean_se([m['dispersion']['before']['intra'] for m in zero])} | "
          f"{mean_se([m['dispersion']['before']['text_inter'] for m in zero])} |")
    for method, metrics in rows.items():
        lrs = sorted({m["config"]["lr"] for m in metrics})
        print(f"| {method} | {', '.join(f'{lr:g}' for lr in lrs) if method != 'zeroshot' else '-'} | "
              f"{mean_se([m['accuracy'] for m in metrics])} | "
              f"{mean_se([m['dispersion']['after']['intra'] for m in metrics])} | "
              f"{mean_se([m['dispersion']['after']['text_inter'] for m in metrics])} |")


if __name__ == "__main__":
    main()
