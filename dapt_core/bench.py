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

Settings come from the recipe's per-data-set presets (docs/dapt-recipe.md), chosen by data set name; every
one of them can be overridden on the command line, and the JSON records the preset, the overrides and the
final configuration.

Under `torchrun --nproc_per_node N` the same command trains and evaluates data-parallel
(DistributedDataParallel in dapt_core.training, sharded evaluation in dapt_core.evaluation): NCCL with one
GPU per process (cuda:LOCAL_RANK) where CUDA is available, gloo on the CPU otherwise. Only rank 0 writes
files and shows progress.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import atomic
from .errors import ConfigError, DataError

RESULT_KIND = "dapt-bench-result"
RESULT_VERSION = 1
FEW_SHOT = "few-shot"
DOMAIN_GENERALISATION = "domain-generalisation"
DEFAULT_BENCH_BACKBONE = "ViT-B-16:openai"  # the paper's backbone; no fallback to the demo model here
DEFAULT_SEEDS = (1, 2, 3)
DG_SOURCE = "ImageNet"
DG_SHOTS = 16

# The reference code's per-data-set settings (recipe: "Per-dataset settings"): lr, beta_v, beta_t.
RECIPE_PRESETS: dict[str, tuple[float, float, float]] = {
    "Caltech101": (0.2, 10.0, 0.01),
    "DTD": (20.0, 100.0, 0.01),
    "EuroSAT": (20.0, 100.0, 10.0),
    "FGVCAircraft": (2.0, 100.0, 0.01),
    "Food101": (20.0, 10.0, 0.01),
    "ImageNet": (2.0, 0.01, 0.01),
    "Flowers102": (0.002, 10.0, 0.01),  # "OxfordFlowers" in the reference code
    "OxfordPets": (0.02, 10.0, 0.1),
    "StanfordCars": (0.002, 100.0, 0.1),
    "SUN397": (20.0, 100.0, 0.01),
    "UCF101": (20.0, 0.1, 0.1),
}
# CoOp's published configuration trains its context with lr 0.002 on every data set.
COOP_LR = 0.002
METHOD_ORDER = ("zeroshot", "coop", "vpt", "dapt")
METHOD_TITLES = {"zeroshot": "Zero-shot CLIP", "coop": "CoOp", "vpt": "VPT", "dapt": "DAPT"}
# Settings a user may override, as (command-line flag, TuningConfig field).
OVERRIDABLE = (("epochs", "epochs"), ("lr", "lr"), ("beta_v", "beta_v"), ("beta_t", "beta_t"),
               ("batch_size", "batch_size"), ("eval_batch_size", "eval_batch_size"), ("n_ctx", "n_ctx"),
               ("n_vis", "n_vis"), ("templates", "templates"), ("deep", "deep_visual"))


# ------------------------------------------------------------------------------------------- presets
def preset_for(dataset: str, method: str, shots: int) -> tuple[dict, str]:
    """The recipe's settings for `method` at `shots` shots on `dataset`, and where they come from.

    dapt: the reference code's lr, beta_v and beta_t of the data set; coop: CoOp's lr 0.002; vpt: the data
    set's DAPT lr (the recipe has no VPT table; ours); zeroshot trains nothing. Epochs follow the recipe's
    rule by shots (ImageNet: 50 at every shot count).
    """
    from .datasets import DOMAIN_SHIFT_TARGETS, canonical_name
    from .methods import METHODS, epochs_for_shots

    canonical = canonical_name(dataset)
    if canonical in DOMAIN_SHIFT_TARGETS:
        raise ConfigError(f"{canonical} is a test-only domain-generalisation target; tune on ImageNet with "
                          f"`dapt bench --dataset ImageNet --shots 16`, then evaluate with `dapt bench dg`.")
    if method not in METHODS:
        raise ConfigError(f"Unknown method '{method}'. Choose one of: {', '.join(METHODS)}.")
    lr, beta_v, beta_t = RECIPE_PRESETS[canonical]
    epochs = epochs_for_shots(shots, canonical)
    if method == "dapt":
        return {"lr": lr, "beta_v": beta_v, "beta_t": beta_t, "epochs": epochs}, f"recipe, {canonical}"
    if method == "coop":
        return {"lr": COOP_LR, "epochs": epochs}, "CoOp (lr 0.002 on every data set)"
    if method == "vpt":
        return {"lr": lr, "epochs": epochs}, f"recipe lr of {canonical} (ours: the recipe has no VPT table)"
    return {}, "zero-shot: nothing is trained"


def bench_config(dataset: str, method: str, shots: int, seed: int, overrides: dict | None = None):
    """The TuningConfig of one run: the preset, then `overrides` (TuningConfig field -> value) on top.

    Returns (config, preset, preset_source, overrides actually applied).
    """
    from .methods import TuningConfig

    preset, source = preset_for(dataset, method, shots)
    applied = {k: v for k, v in (overrides or {}).items() if v is not None}
    if method == "zeroshot":
        # Nothing trains: only the settings that shape evaluation can matter.
        applied = {k: v for k, v in applied.items() if k in ("templates", "eval_batch_size")}
    # The paper's protocol: the recipe's augmentation, whatever the engine's default preset is.
    config = TuningConfig(method=method, seed=seed, preset="recipe", **{**preset, **applied})
    return config, preset, source, applied


# ------------------------------------------------------------------------------------- distribution
@dataclass
class Distributed:
    rank: int
    world: int
    device: object  # torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist
            dist.barrier()

    def share(self, value):
        """Rank 0's `value` on every rank (a picklable object)."""
        if self.world == 1:
            return value
        import torch.distributed as dist
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


@contextmanager
def distributed(device: str | None = None):
    """Join torchrun's process group when its environment says there are several processes.

    NCCL on cuda:LOCAL_RANK where CUDA is available (and not --device cpu), else gloo on the CPU. A group
    someone else initialised is used as is; one initialised here is destroyed at the end.
    """
    import torch
    import torch.distributed as dist

    from .device import pick_device

    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if dist.is_available() and dist.is_initialized():
        yield Distributed(dist.get_rank(), dist.get_world_size(), _rank_device(device))
        return
    if world <= 1:
        yield Distributed(0, 1, pick_device(device))
        return
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    wants_cpu = device is not None and torch.device(device).type == "cpu"
    if torch.cuda.is_available() and not wants_cpu:
        target = torch.device("cuda", local_rank)
        torch.cuda.set_device(target)
        dist.init_process_group("nccl", device_id=target)
    else:
        if device is not None and torch.device(device).type not in ("cpu",):
            raise ConfigError(f"--device {device} was asked for under torchrun, but no CUDA GPU is visible; "
                              f"use --device cpu (gloo) or run on a GPU machine.")
        target = torch.device("cpu")
        dist.init_process_group("gloo")
    try:
        yield Distributed(dist.get_rank(), dist.get_world_size(), target)
    finally:
        dist.destroy_process_group()


def _rank_device(device: str | None):
    import torch

    from .device import pick_device

    chosen = pick_device(device)
    if chosen.type == "cuda" and chosen.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return chosen


# ------------------------------------------------------------------------------------------- output
def run_dir(out: Path, dataset: str, method: str, shots: int) -> Path:
    return Path(out) / dataset / method / f"{shots}shot"


def result_path(out: Path, dataset: str, method: str, shots: int, seed: int) -> Path:
    return run_dir(out, dataset, method, shots) / f"seed{seed}.json"


def prompt_path(out: Path, dataset: str, method: str, shots: int, seed: int) -> Path:
    return run_dir(out, dataset, method, shots) / f"seed{seed}.safetensors"


def few_shot_path(out: Path, dataset: str, shots: int, seed: int) -> Path:
    return Path(out) / dataset / "fewshot" / f"{shots}shot_seed{seed}.json"


def read_result(path: Path) -> dict | None:
    """A finished run's JSON, or None if there is none or it is not a bench result."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("kind") == RESULT_KIND else None


def _comparable(config: dict) -> dict:
    # The seed names the file; the test batch size changes memory use, not the result.
    return {k: v for k, v in config.items() if k not in ("seed", "eval_batch_size")}


def _check_same_settings(path: Path, existing: dict, config: dict, backbone) -> None:
    """A finished seed is only reused when it was run with the settings asked for now."""
    settings = existing.get("settings", {})
    then = {**_comparable(settings.get("config", {})), "backbone": settings.get("backbone"),
            "backbone_weights": settings.get("backbone_weights")}
    now = {**_comparable(config), "backbone": backbone.spec, "backbone_weights": backbone.weights_id}
    differing = [k for k in sorted(set(then) | set(now)) if then.get(k) != now.get(k)]
    if differing:
        described = ", ".join(f"{k} {then.get(k)!r} then, {now.get(k)!r} now" for k in differing[:6])
        raise ConfigError(f"{path} was run with other settings ({described}). Use another --out for these "
                          f"settings, or delete that file to run the seed again.")


def _finished(out: Path, dataset: str, method: str, shots: int, seed: int) -> dict | None:
    existing = read_result(result_path(out, dataset, method, shots, seed))
    if existing is not None and prompt_path(out, dataset, method, shots, seed).is_file():
        return existing
    return None


def _environment(ctx: Distributed, backbone, num_workers: int) -> dict:
    import open_clip
    import torch

    from . import __version__
    from .device import autocast_dtype, describe

    dtype = autocast_dtype(backbone.device)
    return {
        "backbone": backbone.spec,
        "backbone_weights": backbone.weights_id,
        "backbone_description": backbone.describe(),
        "world_size": ctx.world,
        "device": str(backbone.device),
        "device_name": describe(backbone.device),
        "precision": str(dtype).replace("torch.", "") if dtype is not None else "float32",
        "num_workers": num_workers,
        "dapt_core_version": __version__,
        "torch_version": torch.__version__,
        "open_clip_version": getattr(open_clip, "__version__", "?"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
    }


# --------------------------------------------------------------------------------------- progress
class _Progress:
    """tqdm over the steps of training, then of evaluation, on rank 0 only."""

    def __init__(self, label: str):
        self.label = label
        self.bar = None
        self.phase = None

    def update(self, progress) -> None:
        from tqdm import tqdm

        if progress.phase != self.phase:
            self.close()
            self.phase = progress.phase
            self.bar = tqdm(total=progress.total_steps, desc=f"{self.label} {progress.phase}", unit="step",
                            file=sys.stderr, dynamic_ncols=True, leave=False)
        if progress.phase == "train":
            self.bar.set_postfix(epoch=f"{progress.epoch}/{progress.epochs}", loss=f"{progress.loss:.3f}",
                                 refresh=False)
        self.bar.update(progress.step - self.bar.n)

    def batches(self, total: int, what: str):
        from tqdm import tqdm

        self.close()
        self.bar = tqdm(total=total, desc=f"{self.label} {what}", unit="batch", file=sys.stderr,
                        dynamic_ncols=True, leave=False)
        return lambda done, _total: self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _say(ctx: Distributed, text: str) -> None:
    if ctx.main:
        print(text, flush=True)


def _pct(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}%"


# ---------------------------------------------------------------------------------------- the sweep
def cmd_bench(args) -> int:
    """`dapt bench --data-root R --dataset NAME ...`: tune and score each seed, skipping finished ones."""
    from .backbone import load_backbone
    from .datasets import canonical_name

    missing = [flag for flag, value in (("--data-root", args.data_root), ("--dataset", args.dataset),
                                        ("--out", args.out)) if not value]
    if missing:
        raise ConfigError(f"dapt bench needs {', '.join(missing)}; e.g. dapt bench --data-root /data --dataset DTD "
                          f"--shots 16 --seeds 1 2 3 --method dapt --out runs/ (see dapt bench --help).")
    out = Path(args.out).expanduser()
    datasets = _unique([canonical_name(name) for name in args.dataset])
    shots_list = _unique(args.shots)
    seeds = _unique(args.seeds)
    methods = _unique(args.method)
    if any(k < 1 for k in shots_list):
        raise ConfigError(f"--shots must be at least 1, got {shots_list}.")
    overrides = _overrides(args)
    # Validate every configuration before the first (possibly hours-long) run starts.
    plans = []
    for dataset in datasets:
        for shots in shots_list:
            for method in methods:
                for seed in seeds:
                    plans.append((dataset, shots, method, seed, *bench_config(dataset, method, shots, seed, overrides)))

    with distributed(args.device) as ctx:
        backbone = load_backbone(args.backbone, ctx.device)
        workers = _workers(args.workers, ctx)
        environment = _environment(ctx, backbone, workers)
        _say(ctx, f"backbone {backbone.spec} ({backbone.weights_id}) on {environment['device_name']}, "
                  f"{ctx.world} process(es), {environment['precision']}")
        try:
            _sweep(ctx, plans, out, backbone, environment, workers, args.data_root)
        except KeyboardInterrupt:
            if ctx.main:
                print(f"interrupted: the seeds finished so far are saved under {out}; run the same command "
                      f"again to resume.", file=sys.stderr)
            raise
    return 0


def _sweep(ctx, plans, out, backbone, environment, workers, data_root) -> None:
    from .datasets import read_dataset

    current = full = None
    for dataset, shots, method, seed, config, preset, source, applied in plans:
        result_file = result_path(out, dataset, method, shots, seed)
        label = f"{dataset} {method} {shots}-shot seed {seed}"
        decision = None
        if ctx.main:  # rank 0 decides what is finished, so that every rank runs the same seeds
            try:
                existing = _finished(out, dataset, method, shots, seed)
                if existing is not None:
                    _check_same_settings(result_file, existing, config.to_dict(), backbone)
                decision = ("skip", existing.get("accuracy")) if existing is not None else ("run", None)
            except ConfigError as error:
                decision = ("error", str(error))
        decision = ctx.share(decision)
        if decision[0] == "error":
            raise ConfigError(decision[1])
        if decision[0] == "skip":
            _say(ctx, f"{label}: finished earlier ({_pct(decision[1])}), skipped: {result_file}")
            continue
        if current != dataset:
            full = read_dataset(dataset, data_root)
            current = dataset
            for note in full.notes:
                _say(ctx, f"note: {dataset}: {note}")
        _run_one(ctx, backbone, full, out, dataset, shots, method, seed, config, preset, source, applied,
                 environment, workers, data_root, label)


def _run_one(ctx, backbone, full, out, dataset, shots, method, seed, config, preset, source, applied,
             environment, workers, data_root, label) -> None:
    from .experiment import run_experiment
    from .fewshot import few_shot_split

    started = time.perf_counter()
    cache = few_shot_path(out, dataset, shots, seed)
    if ctx.main:  # rank 0 draws (or reuses) and saves the selection; the others read what it saved
        split = few_shot_split(full, shots, seed, cache)
    ctx.barrier()
    if not ctx.main:
        split = few_shot_split(full, shots, seed, cache)
    progress = _Progress(label) if ctx.main else None
    try:
        result = run_experiment(backbone, split, config, shots=shots, dataset=dataset,
                                on_progress=progress.update if progress else None, num_workers=workers)
    finally:
        if progress:
            progress.close()
    total = time.perf_counter() - started
    if ctx.main:
        metrics = result.metrics()
        metrics.pop("confusion", None)  # 1000 x 1000 for ImageNet; per-class accuracy is kept
        metrics.update(_per_class_lists(result.before, result.after))
        prompt_file = prompt_path(out, dataset, method, shots, seed)
        settings = {
            "dataset": dataset, "method": method, "shots": shots, "seed": seed,
            "preset": preset, "preset_source": source, "overrides": applied, "config": config.to_dict(),
            **environment, "data_root": str(Path(data_root).expanduser().absolute()),
            "few_shot_file": str(cache.relative_to(out)),
        }
        record = {
            "kind": RESULT_KIND, "version": RESULT_VERSION, "protocol": FEW_SHOT,
            "dataset": dataset, "method": method, "shots": shots, "seed": seed,
            **{k: v for k, v in metrics.items() if k not in ("method", "shots", "config")},
            "total_seconds": total,
            "prompt_file": prompt_file.name,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "settings": settings,
        }
        result.save_prompt_file(prompt_file, extra={"bench": {k: settings[k] for k in (
            "dataset", "method", "shots", "seed", "preset_source", "overrides", "world_size")}})
        written = atomic.write_json(result_path(out, dataset, method, shots, seed), record)
        print(f"{label}: {_pct(record['accuracy'])} (zero-shot {_pct(record['zero_shot_accuracy'])}) in "
              f"{total:.1f} s -> {written}", flush=True)
    ctx.barrier()


def _per_class_lists(before, after) -> dict:
    """Per-class accuracy in label order. The per_class dicts are keyed by name, and ImageNet's CLIP class
    names repeat ("missile", "sunglasses" name two classes each), so only these lists hold every class."""
    from .experiment import _json_safe
    from .metrics import per_class_accuracy

    return _json_safe({"per_class_accuracy": per_class_accuracy(after.confusion),
                       "zero_shot_per_class_accuracy": per_class_accuracy(before.confusion)})


def _overrides(args) -> dict:
    values = {}
    for flag, field in OVERRIDABLE:
        value = getattr(args, flag, None)
        if flag == "deep":
            value = True if value else None
        if value is not None:
            values[field] = value
    return values


def _workers(requested: int | None, ctx: Distributed) -> int:
    if requested is not None:
        if requested < 0:
            raise ConfigError(f"--workers must be 0 or more, got {requested}.")
        return requested
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    per_process = cpus // max(1, ctx.world)
    return min(8, per_process - 1) if per_process > 2 else 0


def _unique(values) -> list:
    seen, out = set(), []
    for value in values:
        if value not in seen:
            seen.add(value)
            out.append(value)
    return out


# ------------------------------------------------------------------------------- domain generalisation
def cmd_dg(args) -> int:
    """`dapt bench dg`: prompts tuned on K-shot ImageNet, scored on ImageNet-V2, -Sketch, -A and -R."""
    import torch

    from . import prompt_file as pf
    from .backbone import load_backbone
    from .datasets import DOMAIN_SHIFT_TARGETS, canonical_name, imagenet_label_map, read_dataset
    from .evaluation import encode_images, score
    from .prompts import PromptedCLIP
    from .zeroshot import zero_shot_text_features

    out = Path(args.out).expanduser()
    targets = _unique([canonical_name(t) for t in (args.targets or DOMAIN_SHIFT_TARGETS)])
    wrong = [t for t in targets if t not in DOMAIN_SHIFT_TARGETS]
    if wrong:
        raise ConfigError(f"{', '.join(wrong)} is not a domain-generalisation target; choose from "
                          f"{', '.join(DOMAIN_SHIFT_TARGETS)}.")
    methods, seeds, shots = _unique(args.method), _unique(args.seeds), args.shots
    sources = {}
    for method in methods:
        for seed in seeds:
            path = prompt_path(out, DG_SOURCE, method, shots, seed)
            if not path.is_file():
                raise DataError(
                    f"{path} is missing: tune on ImageNet first with dapt bench --data-root {args.data_root} "
                    f"--dataset ImageNet --shots {shots} --seeds {seed} --method {method} --out {args.out}")
            sources[(method, seed)] = path

    with distributed(args.device) as ctx:
        backbone = None
        workers = _workers(args.workers, ctx)
        zero_shot_cache: dict[str, torch.Tensor] = {}
        for target in targets:
            todo = [(m, s) for m in methods for s in seeds]
            if ctx.main:
                todo = [(m, s) for m, s in todo
                        if read_result(result_path(out, target, m, shots, s)) is None]
            todo = ctx.share(todo)
            for method, seed in [(m, s) for m in methods for s in seeds if (m, s) not in todo]:
                _say(ctx, f"{target} {method} seed {seed}: finished earlier, skipped: "
                          f"{result_path(out, target, method, shots, seed)}")
            if not todo:
                continue
            split = read_dataset(target, args.data_root)
            label_map = imagenet_label_map(target, args.data_root)
            for note in split.notes:
                _say(ctx, f"note: {target}: {note}")
            unprompted = None  # the frozen image features of the target: the same for every prompt file
            for method, seed in todo:
                started = time.perf_counter()
                file = pf.load(sources[(method, seed)])
                if backbone is None:
                    backbone = load_backbone(args.backbone or file.backbone_spec, ctx.device)
                    environment = _environment(ctx, backbone, workers)
                file.check_backbone(backbone)
                _check_class_map(file, split.classnames, label_map, target, sources[(method, seed)])
                index = torch.tensor(label_map, dtype=torch.long)
                config = file.header["config"]
                templates = config.get("templates", "auto")
                if templates not in zero_shot_cache:
                    zero_shot_cache[templates] = zero_shot_text_features(backbone, file.classnames, templates)
                visual = file.tensors.get(pf.VISUAL_PROMPT)
                model = PromptedCLIP(
                    backbone, split.classnames, text_prompt=False, visual_prompt=visual is not None,
                    n_vis=visual.shape[1] if visual is not None else int(config.get("n_vis", 16)),
                    deep_visual=visual is not None and visual.shape[0] > 1,
                    fixed_text_features=file.tensors[pf.CLASS_EMBEDDINGS][index])
                if visual is not None:
                    with torch.no_grad():
                        model.visual_prompt.copy_(visual.to(model.visual_prompt))
                batch_size = args.eval_batch_size or int(config.get("eval_batch_size", 100))
                label = f"{target} {method} seed {seed}"
                progress = _Progress(label) if ctx.main else None
                try:
                    if unprompted is None:
                        hook = progress.batches(_batch_count(split.test, batch_size, ctx), "frozen features") \
                            if progress else None
                        unprompted = encode_images(model, split.test, prompted=False, batch_size=batch_size,
                                                   num_workers=workers, on_batch=hook)
                    before = score(model, split.test, *unprompted, zero_shot_cache[templates][index])
                    if visual is None:
                        after_features = unprompted
                    else:
                        hook = progress.batches(_batch_count(split.test, batch_size, ctx), "prompted features") \
                            if progress else None
                        after_features = encode_images(model, split.test, prompted=True, batch_size=batch_size,
                                                       num_workers=workers, on_batch=hook)
                    after = score(model, split.test, *after_features, model.text_features())
                finally:
                    if progress:
                        progress.close()
                if ctx.main:
                    _write_dg_result(out, target, method, shots, seed, file, sources[(method, seed)], before,
                                     after, split, label_map, environment, workers, time.perf_counter() - started,
                                     args.data_root, label)
                ctx.barrier()
    return 0


def _batch_count(items, batch_size: int, ctx: Distributed) -> int:
    batches = math.ceil(len(items) / batch_size)
    return len(range(ctx.rank, batches, ctx.world))


def _check_class_map(file, classnames: list[str], label_map: list[int], target: str, path: Path) -> None:
    names = file.classnames
    if max(label_map, default=-1) >= len(names):
        raise DataError(f"{path} holds {len(names)} classes but {target} uses ImageNet labels up to "
                        f"{max(label_map)}; it was not tuned on ImageNet's classes.")
    mapped = [names[i] for i in label_map]
    if mapped != list(classnames):
        first = next(i for i, (a, b) in enumerate(zip(mapped, classnames)) if a != b)
        raise DataError(f"{path} was tuned on other class names than {target} uses (label {first}: "
                        f"'{mapped[first]}' in the prompt file, '{classnames[first]}' in {target}); use the "
                        f"classnames.txt the ImageNet run used.")


def _write_dg_result(out, target, method, shots, seed, file, source_path, before, after, split, label_map,
                     environment, workers, seconds, data_root, label) -> None:
    from .experiment import _json_safe

    header = file.header
    record = _json_safe({
        "kind": RESULT_KIND, "version": RESULT_VERSION, "protocol": DOMAIN_GENERALISATION,
        "dataset": target, "source_dataset": DG_SOURCE, "method": method, "shots": shots, "seed": seed,
        "backbone": header["backbone"]["spec"], "backbone_weights": header["backbone"].get("weights"),
        "n_test": len(after.labels), "n_classes": len(split.classnames),
        "accuracy": after.accuracy, "zero_shot_accuracy": before.accuracy,
        "classnames": list(split.classnames),
        "per_class": after.per_class, "zero_shot_per_class": before.per_class,
        **_per_class_lists(before, after),
        "dispersion": {"before": before.dispersion, "after": after.dispersion},
        "eval_seconds": seconds, "total_seconds": seconds,
        "source_prompt_file": os.path.relpath(source_path, result_path(out, target, method, shots, seed).parent),
        "notes": split.notes,
        "skipped": [{"path": s.path, "reason": s.reason} for s in split.skipped + after.skipped],
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "dataset": target, "source_dataset": DG_SOURCE, "method": method, "shots": shots, "seed": seed,
            "config": header["config"], "class_map": "ImageNet labels of the target's classes (by wnid)",
            "imagenet_labels": label_map if len(label_map) != len(file.classnames) else "all",
            **environment, "num_workers": workers, "data_root": str(Path(data_root).expanduser().absolute()),
        },
    })
    written = atomic.write_json(result_path(out, target, method, shots, seed), record)
    print(f"{label}: {_pct(record['accuracy'])} (zero-shot {_pct(record['zero_shot_accuracy'])}) -> {written}",
          flush=True)


# ------------------------------------------------------------------------------------------- report
@dataclass
class Cell:
    seeds: list[int]
    values: list[float]  # accuracy per seed, in percent

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None


def collect_results(results_dir: Path) -> list[dict]:
    """Every bench result JSON under `results_dir` (few-shot cache files and others are ignored)."""
    found = []
    for path in sorted(Path(results_dir).rglob("*.json")):
        data = read_result(path)
        if data is not None and data.get("accuracy") is not None:
            data["_path"] = str(path)
            found.append(data)
    return found


def build_report(results: list[dict]) -> tuple[str, list[dict]]:
    """The Markdown report and the CSV rows of a set of bench results."""
    from .datasets import DOMAIN_SHIFT_TARGETS, FEW_SHOT_BENCHMARKS

    by_backbone: dict[tuple, list[dict]] = {}
    for r in results:
        settings = r.get("settings", {})
        key = (settings.get("backbone") or r.get("backbone"), settings.get("backbone_weights") or r.get("backbone_weights"))
        by_backbone.setdefault(key, []).append(r)
    lines = ["# DAPT benchmark report", "",
             f"{len(results)} runs. Top-1 test accuracy in %: mean ± sample standard deviation over seeds "
             "(n - 1 in the denominator); (n=K) marks a cell with fewer seeds than the most in its table. "
             "Average: mean over data sets, and ± the standard deviation over seeds of the per-seed averages; "
             "† where a method lacks some data sets of the table (then the mean of its data sets only).", ""]
    rows: list[dict] = []
    order = {name: i for i, name in enumerate(FEW_SHOT_BENCHMARKS + DOMAIN_SHIFT_TARGETS)}
    for (spec, weights), group in by_backbone.items():
        cells: dict[tuple, Cell] = {}
        for r in sorted(group, key=lambda r: r["seed"]):
            key = (r.get("protocol", FEW_SHOT), r["dataset"], r["shots"], r["method"])
            cell = cells.setdefault(key, Cell([], []))
            cell.seeds.append(r["seed"])
            cell.values.append(100.0 * r["accuracy"])
        lines += [f"## Backbone {spec} ({weights})", ""]
        overridden: dict[str, set[str]] = {}
        for r in group:
            applied = r.get("settings", {}).get("overrides")
            if applied:
                text = ", ".join(f"{k} {v}" for k, v in sorted(applied.items()))
                overridden.setdefault(r["method"], set()).add(text)
        if overridden:
            described = "; ".join(f"{METHOD_TITLES.get(m, m)}: {' | '.join(sorted(t))}"
                                  for m, t in sorted(overridden.items(), key=lambda item: _method_key(item[0])))
            lines += [f"Overrides of the recipe's presets (not the paper's protocol): {described}.", ""]
        few = {k: c for k, c in cells.items() if k[0] == FEW_SHOT}
        for shots in sorted({k[2] for k in few}):
            table = {(d, m): c for (_, d, k, m), c in few.items() if k == shots}
            datasets = sorted({d for d, _ in table}, key=lambda d: (order.get(d, 99), d))
            methods = sorted({m for _, m in table}, key=_method_key)
            lines += [f"### Few-shot classification, {shots} shot{'s' if shots != 1 else ''}", ""]
            lines += _markdown_table(table, datasets, methods, "Data set", by_row="dataset")
            lines.append("")
            rows += _csv_rows(table, datasets, methods, FEW_SHOT, spec, shots, "Average")
        dg = {k: c for k, c in cells.items() if k[0] == DOMAIN_GENERALISATION}
        for shots in sorted({k[2] for k in dg}):
            targets = sorted({d for (_, d, k, _) in dg if k == shots}, key=lambda d: (order.get(d, 99), d))
            methods = sorted({m for (_, _, k, m) in dg if k == shots}, key=_method_key)
            table = {(d, m): c for (_, d, k, m), c in dg.items() if k == shots}
            source = {(DG_SOURCE, m): c for (_, d, k, m), c in few.items() if k == shots and d == DG_SOURCE}
            lines += [f"### Domain generalisation: prompts tuned on {shots}-shot {DG_SOURCE}, no tuning on the "
                      f"targets", ""]
            source = {(f"{DG_SOURCE} (source)", m): c for (_, m), c in source.items()}
            lines += _markdown_table({**table, **source}, ([f"{DG_SOURCE} (source)"] if source else []) + targets,
                                     methods,
                                     "Method", by_row="method", average_over=targets,
                                     average_title="Average (targets)")
            lines.append("")
            rows += _csv_rows(table, targets, methods, DOMAIN_GENERALISATION, spec, shots, "Average (targets)")
    return "\n".join(lines).rstrip() + "\n", rows


def _method_key(method: str):
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def _average(table: dict, datasets: list[str], method: str) -> tuple[Cell | None, bool]:
    """(per-seed averages over the data sets, complete?) for one method."""
    have = [d for d in datasets if (d, method) in table]
    if not have:
        return None, False
    complete = len(have) == len(datasets)
    common = set.intersection(*(set(table[(d, method)].seeds) for d in have))
    seeds = sorted(common)
    same_seeds = all(set(table[(d, method)].seeds) == common for d in have)
    if seeds and same_seeds:
        values = [statistics.fmean(table[(d, method)].values[table[(d, method)].seeds.index(s)] for d in have)
                  for s in seeds]
        return Cell(seeds, values), complete
    means = statistics.fmean(table[(d, method)].mean for d in have)
    return Cell([], [means]), complete  # seeds differ between data sets: a mean of means, no deviation


def _format(cell: Cell | None, most: int, complete: bool = True) -> str:
    if cell is None:
        return "–"
    text = f"{cell.mean:.2f}" + (f" ± {cell.std:.2f}" if cell.std is not None else "")
    if cell.seeds and len(cell.seeds) < most:
        text += f" (n={len(cell.seeds)})"
    return text + ("" if complete else " †")


def _markdown_table(table: dict, datasets: list[str], methods: list[str], corner: str, *, by_row: str,
                    average_over: list[str] | None = None, average_title: str = "Average") -> list[str]:
    average_over = datasets if average_over is None else average_over
    most = max((len(c.seeds) for c in table.values()), default=0)
    averages = {m: _average(table, average_over, m) for m in methods}
    titles = {m: METHOD_TITLES.get(m, m) for m in methods}
    if by_row == "dataset":
        header = [corner] + [titles[m] for m in methods]
        body = [[d] + [_format(table.get((d, m)), most) for m in methods] for d in datasets]
        count = len(average_over)
        body.append([f"**{average_title}** ({count} data set{'s' if count != 1 else ''})"] +
                    [_format(averages[m][0], most, averages[m][1]) for m in methods])
    else:
        header = [corner] + datasets + [average_title]
        body = [[titles[m]] + [_format(table.get((d, m)), most) for d in datasets] +
                [_format(averages[m][0], most, averages[m][1])] for m in methods]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + [":---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in body]
    return out


CSV_FIELDS = ("protocol", "backbone", "shots", "dataset", "method", "n_seeds", "seeds", "accuracy_mean",
              "accuracy_std")


def _csv_rows(table, datasets, methods, protocol, backbone, shots, average_title) -> list[dict]:
    rows = []
    for method in methods:
        entries = [(d, table.get((d, method))) for d in datasets]
        average, complete = _average(table, datasets, method)
        entries.append((average_title + ("" if complete else " (incomplete)"), average))
        for dataset, cell in entries:
            if cell is None:
                continue
            rows.append({"protocol": protocol, "backbone": backbone, "shots": shots, "dataset": dataset,
                         "method": method, "n_seeds": len(cell.seeds),
                         "seeds": " ".join(str(s) for s in cell.seeds),
                         "accuracy_mean": f"{cell.mean:.4f}",
                         "accuracy_std": "" if cell.std is None else f"{cell.std:.4f}"})
    return rows


def cmd_report(args) -> int:
    """`dapt bench report DIR`: DIR/report.md and DIR/report.csv from every result under DIR."""
    directory = Path(args.results_dir).expanduser()
    if not directory.is_dir():
        raise DataError(f"{directory} is not a folder of benchmark results (the --out of dapt bench).")
    results = collect_results(directory)
    if not results:
        raise DataError(f"{directory} holds no benchmark results yet; run dapt bench ... --out {directory} first.")
    markdown, rows = build_report(results)
    md_path = Path(args.markdown).expanduser() if args.markdown else directory / "report.md"
    csv_path = Path(args.csv).expanduser() if args.csv else directory / "report.csv"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    for path, text in ((md_path, markdown), (csv_path, buffer.getvalue())):
        atomic.write_text(path, text)
    print(markdown, end="")
    print(f"\nwrote {md_path} and {csv_path}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------- command line
EXAMPLES = """\
examples:
  dapt bench --data-root /data --dataset DTD --shots 16 --seeds 1 2 3 --method dapt --out runs/
  torchrun --nproc_per_node 4 -m dapt_core.cli bench --data-root /data --dataset ImageNet --shots 16 --out runs/
  dapt bench dg --data-root /data --out runs/ --method dapt
  dapt bench report runs/
"""


def register(commands, common) -> None:
    """Add `dapt bench` (the sweep) with its sub-commands `report` and `dg` to the dapt command line."""
    from .datasets import DATASETS, DOMAIN_SHIFT_TARGETS
    from .methods import METHODS

    bench = commands.add_parser(
        "bench", parents=[common], help="paper benchmarks: few-shot sweeps, domain generalisation, report",
        description="Tune and score one or more seeds on a benchmark data set with the recipe's preset for it; "
                    "finished seeds are skipped. Under torchrun the run is data-parallel.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("--data-root", help="folder holding the data sets in CoOp's layout (DATASETS.md)")
    bench.add_argument("--dataset", nargs="+", metavar="NAME",
                       help=f"one or more of: {', '.join(n for n in DATASETS if n not in DOMAIN_SHIFT_TARGETS)}")
    bench.add_argument("--shots", type=int, nargs="+", default=[DG_SHOTS], help="shots per class (default 16)")
    bench.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS), help="default: 1 2 3")
    bench.add_argument("--method", nargs="+", default=["dapt"], choices=list(METHODS), metavar="METHOD",
                       help=f"one or more of {', '.join(METHODS)} (default dapt)")
    bench.add_argument("--backbone", default=DEFAULT_BENCH_BACKBONE, help="default: %(default)s")
    bench.add_argument("--out", help="results folder; rerunning with the same folder resumes")
    overrides = bench.add_argument_group("overrides of the preset (default: the recipe's value for the data set)")
    overrides.add_argument("--epochs", type=int)
    overrides.add_argument("--lr", type=float)
    overrides.add_argument("--beta-v", type=float, help="weight of intra-dispersion (dapt)")
    overrides.add_argument("--beta-t", type=float, help="weight of inter-dispersion (dapt)")
    overrides.add_argument("--batch-size", type=int, help="global training batch (default 32)")
    overrides.add_argument("--eval-batch-size", type=int, help="test batch (default 100)")
    overrides.add_argument("--n-ctx", type=int)
    overrides.add_argument("--n-vis", type=int)
    overrides.add_argument("--deep", action="store_true", help="deep visual prompt")
    overrides.add_argument("--templates", choices=["auto", "openai", "simple", "photo"], help="zero-shot template set")
    _add_machine_options(bench)
    bench.set_defaults(handler=cmd_bench)

    sub = bench.add_subparsers(title="sub-commands", dest="bench_command", metavar="{report,dg}")
    report = sub.add_parser("report", parents=[common], help="Markdown and CSV tables of a results folder",
                            description="Mean and standard deviation over seeds per data set, the average over "
                                        "data sets, methods side by side.")
    report.add_argument("results_dir", help="the --out folder of dapt bench")
    report.add_argument("--markdown", help="where to write the Markdown table (default DIR/report.md)")
    report.add_argument("--csv", help="where to write the CSV table (default DIR/report.csv)")
    report.set_defaults(handler=cmd_report)

    dg = sub.add_parser("dg", parents=[common], help="evaluate ImageNet prompts on ImageNet-V2, -Sketch, -A, -R",
                        description="Score the prompts `dapt bench --dataset ImageNet` tuned (read from "
                                    "OUT/ImageNet/<method>/<K>shot/) on the four variants, without tuning on them. "
                                    "ImageNet-A and -R use the class embeddings of their 200 classes only.")
    dg.add_argument("--data-root", required=True)
    dg.add_argument("--out", required=True, help="the results folder holding the ImageNet runs; results go there")
    dg.add_argument("--method", nargs="+", default=["dapt"], choices=list(METHODS), metavar="METHOD")
    dg.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    dg.add_argument("--shots", type=int, default=DG_SHOTS, help="shots of the ImageNet runs (default 16)")
    dg.add_argument("--targets", nargs="+", metavar="NAME", help=f"default: {' '.join(DOMAIN_SHIFT_TARGETS)}")
    dg.add_argument("--backbone", help="default: the one the prompt files name")
    dg.add_argument("--eval-batch-size", type=int, help="default: the tuning run's (100)")
    _add_machine_options(dg)
    dg.set_defaults(handler=cmd_dg)


def _add_machine_options(parser) -> None:
    parser.add_argument("--device", help="cuda | cuda:N | cpu (default: best available; under torchrun "
                                         "cuda:LOCAL_RANK)")
    parser.add_argument("--workers", type=int, help="data-loading processes per rank (default: from the CPU count)")
