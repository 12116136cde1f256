"""One tuning experiment end to end: tune on the training images, score zero-shot and tuned on the
test images, and package the result as metrics and a prompt file.

The command line, the app and the benchmark runner all go through `run_experiment`, so a number
shown in the browser is the number `dapt tune` prints.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from . import prompt_file
from .backbone import Backbone
from .data import Split
from .errors import DataError
from .evaluation import Evaluation, evaluate_before_after
from .images import sha256_of
from .methods import TuningConfig
from .training import CancelFlag, Progress, TuningResult, tune
from .zeroshot import default_cache_dir, describe_templates, zero_shot_text_features


@dataclass
class ExperimentResult:
    backbone: Backbone
    split: Split
    tuning: TuningResult
    before: Evaluation  # zero-shot CLIP, no prompts
    after: Evaluation  # the tuned model
    shots: int
    eval_seconds: float

    @property
    def config(self) -> TuningConfig:
        return self.tuning.config

    def metrics(self) -> dict:
        """Everything measured, JSON-ready (the --json output of `dapt tune`)."""
        skipped = self.split.skipped + self.tuning.skipped + self.before.skipped
        return _json_safe({
            "method": self.config.method,
            "backbone": self.backbone.spec,
            "backbone_weights": self.backbone.weights_id,
            "device": str(self.backbone.device),
            "shots": self.shots,
            "epochs": self.tuning.epochs,
            "classnames": self.split.classnames,
            "n_train": len(self.split.train),
            "n_test": len(self.after.labels),
            "accuracy": self.after.accuracy,
            "zero_shot_accuracy": self.before.accuracy,
            "zero_shot_templates": describe_templates(self.backbone, self.config.templates),
            "per_class": self.after.per_class,
            "zero_shot_per_class": self.before.per_class,
            "confusion": {"before": self.before.confusion.tolist(), "after": self.after.confusion.tolist()},
            "dispersion": {"before": self.before.dispersion, "after": self.after.dispersion},
            "train_seconds": self.tuning.train_seconds,
            "train_cpu_seconds": self.tuning.train_cpu_seconds,
            "eval_seconds": self.eval_seconds,
            "history": self.tuning.history,
            "config": self.config.to_dict(),
            "notes": self.split.notes,
            "skipped": [{"path": s.path, "reason": s.reason} for s in _unique(skipped)],
        })

    def prompt_tensors(self) -> dict[str, torch.Tensor]:
        tensors = self.tuning.prompted.prompt_tensors()
        tensors[prompt_file.CLASS_EMBEDDINGS] = self.after.text_features
        return tensors

    def header(self, extra: dict | None = None) -> dict:
        metrics = self.metrics()
        summary = {key: metrics[key] for key in ("accuracy", "zero_shot_accuracy", "per_class",
                                                  "zero_shot_per_class", "dispersion", "n_test")}
        training_images = [{"sha256": sha256_of(item.path), "class": self.split.classnames[item.label],
                            "name": Path(item.path).name} for item in self.split.train]
        return prompt_file.build_header(backbone=self.backbone, classnames=self.split.classnames,
                                        config=self.config, epochs=self.tuning.epochs, metrics=summary,
                                        training_images=training_images, extra=extra)

    def save_prompt_file(self, path: str | Path, extra: dict | None = None) -> Path:
        return prompt_file.save(path, self.header(extra), self.prompt_tensors())


def run_experiment(backbone: Backbone, split: Split, config: TuningConfig, *, shots: int | None = None,
                   dataset: str | None = None, on_progress: Callable[[Progress], None] | None = None,
                   cancel: CancelFlag | None = None, num_workers: int = 0,
                   cache_dir: Path | None = None) -> ExperimentResult:
    """Tune `config.method` on `split.train`, then score zero-shot and tuned on `split.test`
    (`cache_dir`: where zero-shot class embeddings and frozen test-image features are kept;
    default: dapt_core.zeroshot.default_cache_dir())."""
    if len(split.classnames) < 2:
        raise DataError("A task needs at least two classes.")
    if not split.test:
        raise DataError("There are no test images to measure on. Keep some images out of training "
                        "(fewer shots) or add a test/ folder.")
    per_class = torch.bincount(torch.tensor([i.label for i in split.train], dtype=torch.long),
                               minlength=len(split.classnames)) if split.train else torch.zeros(1)
    shots = shots if shots is not None else int(per_class.max())
    tuning = tune(backbone, split.classnames, split.train, config, shots=shots, dataset=dataset,
                  on_progress=on_progress, cancel=cancel, num_workers=num_workers, cache_dir=cache_dir)
    started = time.perf_counter()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    zero_shot_text = (tuning.prompted.fixed_text_features if not config.text_prompt
                      else zero_shot_text_features(backbone, split.classnames, config.templates, cache_dir))
    passes = 2 if config.visual_prompt else 1  # zero-shot features, then prompted ones
    total = passes * math.ceil(len(split.test) / config.eval_batch_size)
    done = 0

    def on_batch(*_):
        nonlocal done
        done += 1
        if on_progress is not None:
            elapsed = time.perf_counter() - started
            on_progress(Progress("evaluate", tuning.epochs, tuning.epochs, done, total, elapsed=elapsed,
                                 eta=elapsed / done * max(0, total - done)))

    before, after = evaluate_before_after(tuning.prompted, zero_shot_text, split.test,
                                          batch_size=config.eval_batch_size, num_workers=num_workers,
                                          cancel=cancel, on_batch=on_batch, cache_dir=cache_dir)
    return ExperimentResult(backbone, split, tuning, before, after, shots, time.perf_counter() - started)


def _unique(skipped):
    seen, out = set(), []
    for s in skipped:
        if s.path not in seen:
            seen.add(s.path)
            out.append(s)
    return out


def _json_safe(value):
    """NaN/inf become None so the JSON is standard (a class without test images has no accuracy)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
