"""Where a benchmark run's files go, reading them back for resuming, the environment recorded with them,
and progress output."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..engine.progress import Phase
from ..errors import ConfigError
from .distributed import Distributed

RESULT_KIND = "dapt-bench-result"
RESULT_VERSION = 1
FEW_SHOT = "few-shot"
DOMAIN_GENERALISATION = "domain-generalisation"
DEFAULT_BENCH_BACKBONE = "ViT-B-16:openai"  # the paper's backbone; no fallback to the demo model here
DEFAULT_SEEDS = (1, 2, 3)
DG_SOURCE = "ImageNet"
DG_SHOTS = 16


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


def check_same_settings(path: Path, existing: dict, config: dict, backbone) -> None:
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


def finished_result(out: Path, dataset: str, method: str, shots: int, seed: int) -> dict | None:
    existing = read_result(result_path(out, dataset, method, shots, seed))
    if existing is not None and prompt_path(out, dataset, method, shots, seed).is_file():
        return existing
    return None


def describe_environment(ctx: Distributed, backbone, num_workers: int) -> dict:
    import open_clip
    import torch

    from .. import __version__
    from ..engine.device import describe

    dtype = backbone.precision
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


@dataclass
class Session:
    """What every run of one `dapt bench` command shares: the processes, the results folder, the data,
    the loading workers, and the backbone with the environment recorded beside each result."""

    ctx: Distributed
    out: Path
    data_root: str
    workers: int
    backbone: Any = None
    environment: dict = field(default_factory=dict)

    def use_backbone(self, backbone) -> None:
        self.backbone = backbone
        self.environment = describe_environment(self.ctx, backbone, self.workers)

    @property
    def data_root_recorded(self) -> str:
        return str(Path(self.data_root).expanduser().absolute())

    def say(self, text: str) -> None:
        say(self.ctx, text)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------- progress
class BenchProgress:
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
        if progress.phase == Phase.TRAIN:
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


def say(ctx: Distributed, text: str) -> None:
    if ctx.main:
        print(text, flush=True)


def pct(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}%"


def per_class_lists(before, after) -> dict:
    """Per-class accuracy in label order. The per_class dicts are keyed by name, and ImageNet's CLIP class
    names repeat ("missile", "sunglasses" name two classes each), so only these lists hold every class."""
    from ..engine.metrics import json_safe, per_class_accuracy

    return json_safe({"per_class_accuracy": per_class_accuracy(after.confusion),
                       "zero_shot_per_class_accuracy": per_class_accuracy(before.confusion)})
