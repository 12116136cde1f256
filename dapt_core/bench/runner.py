"""Benchmark runs of the paper's protocol, one command per experiment, and the tables that compare them.

    dapt bench --data-root R --dataset DTD --shots 16 --seeds 1 2 3 --method dapt --out runs/
    dapt bench dg --data-root R --out runs/ --method dapt          # ImageNet prompts on its four variants
    dapt bench report runs/                                        # runs/report.md and runs/report.csv

A sweep writes, per data set, method, shot count and seed (under OUT/<DataSet>/<method>/<K>shot/):
  seed<S>.json          accuracy, per-class accuracy, dispersion before/after, times, every setting
  seed<S>.safetensors   the tuned prompt file (what `bench dg`, `dapt eval` and `dapt predict` read)
and the few-shot selection under OUT/<DataSet>/fewshot/, shared by every method so that they train on the
same images. A seed whose JSON and prompt file exist is skipped, so an interrupted sweep resumes where it
stopped; both are written atomically (temporary file, then rename), the JSON last.

Settings come from the recipe's per-data-set hyperparameters (docs/recipe.md, bench/hyperparameters.py),
chosen by data set name; every one of them can be overridden on the command line, and the JSON records
them (under "preset", its older name), the overrides and the final configuration.

Under `torchrun --nproc_per_node N` the same command trains and evaluates data-parallel
(DistributedDataParallel in dapt_core.engine.training, sharded evaluation in dapt_core.engine.evaluation): NCCL with one
GPU per process (cuda:LOCAL_RANK) where CUDA is available, gloo on the CPU otherwise. Only rank 0 writes
files and shows progress.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import atomic
from ..engine.methods import TuningConfig
from ..errors import ConfigError
from .distributed import Distributed, distributed
from .hyperparameters import OVERRIDABLE, bench_config
from .results import (
    FEW_SHOT,
    RESULT_KIND,
    RESULT_VERSION,
    BenchProgress,
    Session,
    check_same_settings,
    few_shot_path,
    finished_result,
    pct,
    per_class_lists,
    prompt_path,
    result_path,
    utc_now,
)


# ---------------------------------------------------------------------------------------- the sweep
def cmd_bench(args) -> int:
    """`dapt bench --data-root R --dataset NAME ...`: tune and score each seed, skipping finished ones."""
    from ..data.datasets import canonical_name
    from ..engine.backbone import load_backbone

    missing = [flag for flag, value in (("--data-root", args.data_root), ("--dataset", args.dataset),
                                        ("--out", args.out)) if not value]
    if missing:
        raise ConfigError(f"dapt bench needs {', '.join(missing)}; e.g. dapt bench --data-root /data --dataset DTD "
                          f"--shots 16 --seeds 1 2 3 --method dapt --out runs/ (see dapt bench --help).")
    out = Path(args.out).expanduser()
    datasets = unique_in_order([canonical_name(name) for name in args.dataset])
    shots_list = unique_in_order(args.shots)
    seeds = unique_in_order(args.seeds)
    methods = unique_in_order(args.method)
    if any(k < 1 for k in shots_list):
        raise ConfigError(f"--shots must be at least 1, got {shots_list}.")
    overrides = _overrides(args)
    # Validate every configuration before the first (possibly hours-long) run starts.
    plans = []
    for dataset in datasets:
        for shots in shots_list:
            for method in methods:
                for seed in seeds:
                    plans.append(Plan(dataset, shots, method, seed,
                                      *bench_config(dataset, method, shots, seed, overrides)))

    with distributed(args.device) as ctx:
        session = Session(ctx, out, args.data_root, worker_count(args.workers, ctx))
        session.use_backbone(load_backbone(args.backbone, ctx.device))
        session.say(f"backbone {session.backbone.spec} ({session.backbone.weights_id}) on "
                    f"{session.environment['device_name']}, {ctx.world} process(es), "
                    f"{session.environment['precision']}")
        try:
            _sweep(session, plans)
        except KeyboardInterrupt:
            if ctx.main:
                print(f"interrupted: the seeds finished so far are saved under {out}; run the same command "
                      f"again to resume.", file=sys.stderr)
            raise
    return 0


@dataclass(frozen=True)
class Plan:
    """One seed of one method at one shot count on one data set, with its settings."""

    dataset: str
    shots: int
    method: str
    seed: int
    config: TuningConfig
    hyperparameters: dict  # the recipe's for this data set, method and shot count
    hyperparameters_source: str
    overrides: dict

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.method} {self.shots}-shot seed {self.seed}"

    def result_file(self, out: Path) -> Path:
        return result_path(out, self.dataset, self.method, self.shots, self.seed)

    def prompt_file(self, out: Path) -> Path:
        return prompt_path(out, self.dataset, self.method, self.shots, self.seed)


def _sweep(session: Session, plans: list[Plan]) -> None:
    from ..data.datasets import read_dataset

    current = full = None
    for plan in plans:
        decision = session.ctx.share(_decide(session, plan) if session.ctx.main else None)
        if decision[0] == "error":
            raise ConfigError(decision[1])
        if decision[0] == "skip":
            session.say(f"{plan.label}: finished earlier ({pct(decision[1])}), skipped: "
                        f"{plan.result_file(session.out)}")
            continue
        if current != plan.dataset:
            full, current = read_dataset(plan.dataset, session.data_root), plan.dataset
            for note in full.notes:
                session.say(f"note: {plan.dataset}: {note}")
        _run_one(session, plan, full)


def _decide(session: Session, plan: Plan) -> tuple[str, object]:
    """On rank 0, which decides for every rank so that all run the same seeds: run, skip or refuse."""
    try:
        existing = finished_result(session.out, plan.dataset, plan.method, plan.shots, plan.seed)
        if existing is None:
            return "run", None
        check_same_settings(plan.result_file(session.out), existing, plan.config.to_dict(), session.backbone)
        return "skip", existing.get("accuracy")
    except ConfigError as error:
        return "error", str(error)


def _run_one(session: Session, plan: Plan, full) -> None:
    started = time.perf_counter()
    split, selection_file = _few_shot_split(session, plan, full)
    result = _tune(session, plan, split)
    if session.ctx.main:
        _write_result(session, plan, result, time.perf_counter() - started, selection_file)
    session.ctx.barrier()


def _few_shot_split(session: Session, plan: Plan, full):
    """The seed's few-shot selection: rank 0 draws (or reuses) and saves it, the others read what it saved."""
    from ..data.fewshot import few_shot_split

    selection_file = few_shot_path(session.out, plan.dataset, plan.shots, plan.seed)
    if session.ctx.main:
        split = few_shot_split(full, plan.shots, plan.seed, selection_file)
    session.ctx.barrier()
    if not session.ctx.main:
        split = few_shot_split(full, plan.shots, plan.seed, selection_file)
    return split, selection_file


def _tune(session: Session, plan: Plan, split):
    from ..engine.experiment import run_experiment

    progress = BenchProgress(plan.label) if session.ctx.main else None
    try:
        return run_experiment(session.backbone, split, plan.config, shots=plan.shots, dataset=plan.dataset,
                              on_progress=progress.update if progress else None, num_workers=session.workers)
    finally:
        if progress:
            progress.close()


def _write_result(session: Session, plan: Plan, result, total_seconds: float, selection_file: Path) -> None:
    metrics = result.metrics()
    metrics.pop("confusion", None)  # 1000 x 1000 for ImageNet; per-class accuracy is kept
    metrics.update(per_class_lists(result.before, result.after))
    prompt_file = plan.prompt_file(session.out)
    settings = {
        "dataset": plan.dataset, "method": plan.method, "shots": plan.shots, "seed": plan.seed,
        # "preset": the result file's older name for the recipe's hyperparameters (kept for its readers)
        "preset": plan.hyperparameters, "preset_source": plan.hyperparameters_source, "overrides": plan.overrides,
        "config": plan.config.to_dict(), **session.environment, "data_root": session.data_root_recorded,
        "few_shot_file": str(selection_file.relative_to(session.out)),
    }
    record = {
        "kind": RESULT_KIND, "version": RESULT_VERSION, "protocol": FEW_SHOT,
        "dataset": plan.dataset, "method": plan.method, "shots": plan.shots, "seed": plan.seed,
        **{k: v for k, v in metrics.items() if k not in ("method", "shots", "config")},
        "total_seconds": total_seconds,
        "prompt_file": prompt_file.name,
        "finished": utc_now(),
        "settings": settings,
    }
    result.save_prompt_file(prompt_file, extra={"bench": {k: settings[k] for k in (
        "dataset", "method", "shots", "seed", "preset_source", "overrides", "world_size")}})
    written = atomic.write_json(plan.result_file(session.out), record)
    print(f"{plan.label}: {pct(record['accuracy'])} (zero-shot {pct(record['zero_shot_accuracy'])}) in "
          f"{total_seconds:.1f} s -> {written}", flush=True)


def _overrides(args) -> dict:
    values = {}
    for flag, field in OVERRIDABLE:
        value = getattr(args, flag, None)
        if flag == "deep":
            value = True if value else None
        if value is not None:
            values[field] = value
    return values


def worker_count(requested: int | None, ctx: Distributed) -> int:
    if requested is not None:
        if requested < 0:
            raise ConfigError(f"--workers must be 0 or more, got {requested}.")
        return requested
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    per_process = cpus // max(1, ctx.world)
    return min(8, per_process - 1) if per_process > 2 else 0


def unique_in_order(values) -> list:
    seen, out = set(), []
    for value in values:
        if value not in seen:
            seen.add(value)
            out.append(value)
    return out
