"""Add a class or more photos without starting over: a warm start against tuning from scratch (issue 24).

On the demo task (5 classes incl. "no defect", demo backbone, `dapt tune`'s defaults: DAPT, inspection preset,
scaled learning rate, good class "no defect"), per seed:

  (a) add a class: tune on 4 classes (all but NEW_CLASS) at 16 shots and save the prompt file; then on all 5
      classes warm-start from that file (`dapt tune DIR --from FILE`) against tuning from scratch.
  (b) more photos: tune at 8 shots and save; then at 16 shots warm-start from it against from scratch.

For each: training seconds (the warm start's alone: the stored run is already paid for), accuracy on all test
photos, on the old classes' photos and on the new class's (5-way predictions), and the old classes' accuracy of
the stored run (4-way) for forgetting.

    python benchmarks/warm_start.py --seeds 1 2 3 --results /tmp/warm_start.jsonl
    python benchmarks/warm_start.py --table /tmp/warm_start.jsonl   # prints and writes /tmp/warm_start_table.md

--share and --lr-scale (of the scaled rate) try other warm schedules than the library's.
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

import torch  # noqa: E402

from dapt_core.data.folders import load_split  # noqa: E402
from dapt_core.demo.demo_task import write_demo_task  # noqa: E402
from dapt_core.engine.backbone import load_backbone  # noqa: E402
from dapt_core.engine.device import describe_cpu  # noqa: E402
from dapt_core.engine.methods import TuningConfig  # noqa: E402
from dapt_core.engine.selection import scaled_learning_rate  # noqa: E402
from dapt_core.engine.tuning_run import tune_and_evaluate  # noqa: E402
from dapt_core.engine.warm_start import WARM_SHARE, WarmStart  # noqa: E402

GOOD = "no defect"
NEW_CLASS = "stain"
TABLE = Path("/tmp/warm_start_table.md")


def scores(run, old: list[str]) -> dict:
    after = run.result.after
    names = run.result.split.classnames
    predicted = after.logits.argmax(dim=1)
    labels = after.labels
    is_old = torch.tensor([names[int(label)] in old for label in labels])

    def accuracy(mask):
        return float((predicted[mask] == labels[mask]).float().mean()) if bool(mask.any()) else None

    metrics = run.metrics()
    return {"accuracy": metrics["accuracy"], "old": accuracy(is_old), "new": accuracy(~is_old),
            "train_seconds": metrics["train_seconds"], "epochs": metrics["epochs"],
            "safeguard": (metrics.get("safeguard") or {}).get("action")}


def run_seed(backbone, folder: Path, seed: int, share: float, lr_scale: float, out: Path,
             reuse: list[dict] | None = None) -> list[dict]:
    """The two cases of one seed; with `reuse` (earlier cells of this seed, their prompt files still in `out`)
    only the warm starts run, against the stored and scratch runs measured then."""
    lr = scaled_learning_rate(backbone)
    base = TuningConfig(method="dapt", seed=seed, preset="inspection", lr=lr)
    warm_config = TuningConfig(method="dapt", seed=seed, preset="inspection", lr=lr * lr_scale,
                               epochs=max(1, round(200 * share)), warmup_epochs=0)
    options = {"good_class": GOOD}
    split16 = load_split(folder, shots=16, seed=seed)
    split8 = load_split(folder, shots=8, seed=seed)
    cells = []

    def tune(split, config, init_from=None):
        return tune_and_evaluate(backbone, split, config, init_from=init_from, **options)

    if reuse:
        for cell in reuse:
            name = "four-classes" if cell["case"] == "add a class" else "eight-shots"
            old = [c for c in split16.classnames if c != NEW_CLASS] if name == "four-classes" else split16.classnames
            warm = tune(split16, warm_config, WarmStart.load(out / f"{name}-seed{seed}.safetensors"))
            cells.append({**cell, "share": share, "lr_scale": lr_scale, "warm": scores(warm, list(old))})
        return cells
    scratch = tune(split16, base)
    scratch_scores = scores(scratch, [c for c in split16.classnames if c != NEW_CLASS])
    # (a) add a class
    old4 = split16.without_class(NEW_CLASS)
    stored = tune(old4, base)
    path = stored.result.save_prompt_file(out / f"four-classes-seed{seed}.safetensors")
    warm = tune(split16, warm_config, WarmStart.load(path))
    cells.append({"case": "add a class", "seed": seed, "share": share, "lr_scale": lr_scale,
                  "stored": scores(stored, old4.classnames), "warm": scores(warm, old4.classnames),
                  "scratch": scratch_scores, "cpu": describe_cpu()})
    # (b) more photos: every class is old
    everything = list(split16.classnames)
    stored8 = tune(split8, base)
    path = stored8.result.save_prompt_file(out / f"eight-shots-seed{seed}.safetensors")
    warm = tune(split16, warm_config, WarmStart.load(path))
    cells.append({"case": "more photos (8 -> 16 shots)", "seed": seed, "share": share, "lr_scale": lr_scale,
                  "stored": scores(stored8, everything), "warm": scores(warm, everything),
                  "scratch": scores(scratch, everything), "cpu": describe_cpu()})
    return cells


def table(path: Path, share: float | None = None, lr_scale: float | None = None) -> str:
    cells = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    groups: dict[tuple, list] = {}
    for cell in cells:
        if (share is None or cell["share"] == share) and (lr_scale is None or cell["lr_scale"] == lr_scale):
            groups.setdefault((cell["case"], cell["share"], cell["lr_scale"]), []).append(cell)

    def mean(group, run, key):
        values = [c[run][key] for c in group if c[run].get(key) is not None]
        return statistics.mean(values) if values else None

    def pct(value):
        return "" if value is None else f"{100 * value:.1f}"

    lines = ["| case | warm schedule | seeds | train s: scratch | warm | warm / scratch | accuracy: scratch | warm | "
             "points | old classes: stored run | scratch | warm | new class: scratch | warm |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (case, sh, scale), group in sorted(groups.items()):
        scratch_s, warm_s = mean(group, "scratch", "train_seconds"), mean(group, "warm", "train_seconds")
        acc_s, acc_w = mean(group, "scratch", "accuracy"), mean(group, "warm", "accuracy")
        new = case == "add a class"
        lines.append(
            f"| {case} | {group[0]['warm']['epochs']} epochs ({sh:g} of 200), lr x{scale:g} | {len(group)} | "
            f"{scratch_s:.1f} | {warm_s:.1f} | {warm_s / scratch_s:.2f}x | {pct(acc_s)} | {pct(acc_w)} | "
            f"{100 * (acc_w - acc_s):+.1f} | {pct(mean(group, 'stored', 'old' if new else 'accuracy'))} | "
            f"{pct(mean(group, 'scratch', 'old'))} | {pct(mean(group, 'warm', 'old'))} | "
            f"{pct(mean(group, 'scratch', 'new')) if new else ''} | {pct(mean(group, 'warm', 'new')) if new else ''} |")
    lines.append("")
    lines.append("Per seed (accuracy scratch / warm, %): " + "; ".join(
        f"{c['case']} s{c['seed']}: {pct(c['scratch']['accuracy'])} / {pct(c['warm']['accuracy'])}"
        for group in groups.values() for c in group))
    lines.append(f"CPU: {'; '.join(sorted({c.get('cpu', '?') for c in cells}))}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--share", type=float, default=WARM_SHARE, help="share of the recipe's 200 epochs")
    parser.add_argument("--lr-scale", type=float, default=1.0, help="the warm start's rate over the scaled rate")
    parser.add_argument("--root", default="/tmp/dapt-warm-start", help="where the demo task is written")
    parser.add_argument("--results", default="/tmp/warm_start.jsonl", help="append each cell as one JSON line")
    parser.add_argument("--table", help="print the table of the cells in this JSONL file (and save it) and stop")
    parser.add_argument("--reuse", help="a JSONL file of earlier cells: run only the warm starts, from their files")
    args = parser.parse_args()
    if args.table:
        text = table(Path(args.table))
        print(text)
        TABLE.write_text(text + "\n", encoding="utf-8")
        return
    root = Path(args.root)
    folder = root / "demo"
    if not (folder / "test").is_dir():
        write_demo_task(folder, seed=0)
    backbone = load_backbone("demo", "cpu")
    for seed in args.seeds:
        started = time.perf_counter()
        reuse = None
        if args.reuse:
            earlier = [json.loads(line) for line in Path(args.reuse).read_text().splitlines() if line.strip()]
            reuse = list({c["case"]: c for c in earlier if c["seed"] == seed}.values())
        for cell in run_seed(backbone, folder, seed, args.share, args.lr_scale, root, reuse):
            print(json.dumps(cell), flush=True)
            with open(args.results, "a", encoding="utf-8") as out:
                out.write(json.dumps(cell) + "\n")
        print(f"seed {seed}: {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
