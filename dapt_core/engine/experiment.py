"""One tuning experiment end to end: tune on the training images, score zero-shot and tuned on the
test images, and package the result as metrics and a prompt file.

The command line, the app and the benchmark runner all go through `run_experiment`, so a number
shown in the browser is the number `dapt tune` prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..data.images import sha256_of
from ..data.records import Split
from ..deploy.calibration import Calibration, calibrate
from ..deploy.pass_fail import DEFAULT_ESCAPE_RATE, check_escape_rate, good_index
from ..errors import ConfigError, DataError
from . import prompt_file
from .backbone import Backbone
from .cache_folder import default_cache_dir
from .cpu_memory import on_the_cpu
from .evaluation import Evaluation, comparison_metrics, evaluate_before_after, evaluation_batches
from .methods import TuningConfig
from .metrics import json_safe
from .novelty import DESCRIPTION as NOVELTY_DESCRIPTION
from .novelty import NoveltyReference
from .progress import Phase, Progress, eta_seconds
from .run_health import assess_metrics
from .safeguard import applies as safeguard_applies
from .safeguard import tune_with_safeguard
from .training import CancelFlag, TuningResult, tune
from .zeroshot import describe_templates, zero_shot_text_features


@dataclass
class ExperimentResult:
    backbone: Backbone
    split: Split
    tuning: TuningResult
    before: Evaluation  # zero-shot CLIP, no prompts
    after: Evaluation  # the tuned model
    shots: int
    eval_seconds: float
    novelty: NoveltyReference | None = None  # class means of the training photos' tuned features
    calibration: Calibration | None = None  # fitted on the test photos; None with too few of them
    good_class: str | None = None  # the class that means a good part; None for a task without pass/fail
    # What the collapse safeguard saw and did (engine/safeguard.py); None where it did not run.
    safeguard: dict | None = None

    @property
    def config(self) -> TuningConfig:
        return self.tuning.config

    def metrics(self) -> dict:
        """Everything measured, JSON-ready (the --json output of `dapt tune`)."""
        skipped = self.split.skipped + self.tuning.skipped + self.before.skipped
        metrics = json_safe({
            "method": self.config.method,
            "backbone": self.backbone.spec,
            "backbone_weights": self.backbone.weights_id,
            "device": str(self.backbone.device),
            "precision": str(self.backbone.precision or torch.float32).removeprefix("torch."),
            "shots": self.shots,
            "epochs": self.tuning.epochs,
            "epochs_run": len(self.tuning.history),
            # Why training ended before its last epoch (a time budget's deadline), else None.
            "stopped": self.tuning.stopped,
            "classnames": self.split.classnames,
            "n_train": len(self.split.train),
            **comparison_metrics(self.before, self.after, self.good_class),
            "zero_shot_templates": describe_templates(self.backbone, self.config.templates),
            # The runs the collapse safeguard stopped took time too: the user waited for them.
            "train_seconds": self.tuning.train_seconds + (self.safeguard or {}).get("seconds_before_kept_run", 0.0),
            "train_cpu_seconds": self.tuning.train_cpu_seconds,
            "eval_seconds": self.eval_seconds,
            "history": self.tuning.history,
            "config": self.config.to_dict(),
            "notes": self.split.notes,
            "skipped": [{"path": s.path, "reason": s.reason} for s in _unique(skipped)],
            "calibration": None if self.calibration is None else {
                key: value for key, value in self.calibration.to_dict().items()
                if key not in ("novelty_scores", "conformal_scores")},
            "safeguard": self.safeguard,
        })
        # Did the run learn anything? Judged from what was just measured (engine/run_health.py).
        metrics["health"] = assess_metrics(metrics, trains=self.config.trains)
        return metrics

    def prompt_tensors(self) -> dict[str, torch.Tensor]:
        tensors = self.tuning.prompted.prompt_tensors()
        tensors[prompt_file.CLASS_EMBEDDINGS] = self.after.text_features
        if self.calibration is not None:
            tensors[prompt_file.NOVELTY_CLASS_MEANS] = self.novelty.class_means
            # What `dapt drift` compares new photos with: a seeded sample of the held-out photos' tuned features.
            features = self.after.features
            keep = torch.randperm(len(features), generator=torch.Generator().manual_seed(0))
            tensors[prompt_file.DRIFT_REFERENCE] = features[keep[:prompt_file.DRIFT_REFERENCE_MAX].sort().values]
        return tensors

    def header(self, extra: dict | None = None) -> dict:
        metrics = self.metrics()
        summary = {key: metrics[key] for key in ("good_class", "pass_fail", "accuracy", "chance", "zero_shot_accuracy",
                                                  "per_class", "zero_shot_per_class", "dispersion", "n_test",
                                                  "health")}
        training_images = [{"sha256": sha256_of(item.path), "class": self.split.classnames[item.label],
                            "name": Path(item.path).name} for item in self.split.train]
        return prompt_file.build_header(backbone=self.backbone, classnames=self.split.classnames,
                                        config=self.config, epochs=self.tuning.epochs, metrics=summary,
                                        training_images=training_images,
                                        extra={**(extra or {}), **self._calibration_header(),
                                               **({"safeguard": self.safeguard} if self.safeguard else {})})

    def _calibration_header(self) -> dict:
        return {} if self.calibration is None else {"calibration": self.calibration.to_dict()}

    def save_prompt_file(self, path: str | Path, extra: dict | None = None) -> Path:
        return prompt_file.save(path, self.header(extra), self.prompt_tensors())


@on_the_cpu  # reuse freed activation memory between steps (cpu_memory.py)
def run_experiment(backbone: Backbone, split: Split, config: TuningConfig, *, shots: int | None = None,
                   dataset: str | None = None, on_progress: Callable[[Progress], None] | None = None,
                   cancel: CancelFlag | None = None, num_workers: int = 0,
                   cache_dir: Path | None = None, good_class: str | None = None,
                   escape_rate: float = DEFAULT_ESCAPE_RATE, safeguard: bool | None = None,
                   deadline: float | None = None, init_from=None, replan=None,
                   train_extra: list | None = None) -> ExperimentResult:
    """Tune `config.method` on `split.train`, then score zero-shot and tuned on `split.test`
    (`cache_dir`: where zero-shot class embeddings and frozen test-image features are kept;
    default: engine.cache_folder.default_cache_dir()). `good_class`, one of the classes, makes the
    run count escapes and overkill and place a pass threshold for `escape_rate` (pass_fail.py).
    `safeguard`: replace a run whose class text embeddings collapse onto one point by CoOp or the
    zero-shot classifier (engine/safeguard.py); by default on for methods with a text prompt under the
    inspection preset, off under the recipe's (`dapt bench`). `deadline`: when the training loop must end
    (a time budget's, engine/budget.py; see tune), and `replan` its correction by the run's own pace.
    `init_from`: stored prompts to start from (see tune; engine/warm_start.py), and `train_extra` more views of
    some training photos that only the training loop sees (a warm start's emphasis on new classes)."""
    good_index(split.classnames, good_class)  # a class the task does not have is an error before tuning
    check_escape_rate(escape_rate)
    if len(split.classnames) < 2:
        raise DataError("A task needs at least two classes.")
    if not split.test:
        raise DataError("There are no test images to measure on. Keep some images out of training "
                        "(fewer shots) or add a test/ folder.")
    per_class = torch.bincount(torch.tensor([i.label for i in split.train], dtype=torch.long),
                               minlength=len(split.classnames)) if split.train else torch.zeros(1)
    shots = shots if shots is not None else int(per_class.max())
    good = split.classnames.index(good_class) if good_class else None
    options = {"shots": shots, "dataset": dataset, "on_progress": on_progress, "cancel": cancel,
               "num_workers": num_workers, "cache_dir": cache_dir, "keep_decoded": True, "good": good,
               "deadline": deadline, "init_from": init_from, "replan": replan}
    trained = list(split.train) + list(train_extra or [])
    guard = None
    if safeguard is None:
        safeguard = safeguard_applies(config)
    if safeguard:
        if not config.text_prompt:
            raise ConfigError(f"The collapse safeguard watches learned class text embeddings; method "
                              f"'{config.method}' learns none. Use coop or dapt, or leave the safeguard off.")
        zero_shot = zero_shot_text_features(backbone, split.classnames, config.templates,
                                            Path(cache_dir) if cache_dir is not None else default_cache_dir())
        tuning, guard = tune_with_safeguard(backbone, split.classnames, trained, config,
                                            zero_shot_text=zero_shot, **options)
    else:
        tuning = tune(backbone, split.classnames, trained, config, **options)
    started = time.perf_counter()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    zero_shot_text = (tuning.prompted.fixed_text_features if not config.text_prompt
                      else zero_shot_text_features(backbone, split.classnames, config.templates, cache_dir))
    total = evaluation_batches(tuning.prompted, len(split.test), config.eval_batch_size)
    done = 0

    def on_batch(*_):
        nonlocal done
        done += 1
        if on_progress is not None:
            elapsed = time.perf_counter() - started
            on_progress(Progress(Phase.EVALUATE, tuning.epochs, tuning.epochs, done, total, elapsed=elapsed,
                                 eta=eta_seconds(elapsed, done, total)))

    before, after = evaluate_before_after(tuning.prompted, zero_shot_text, split.test,
                                          batch_size=config.eval_batch_size, num_workers=num_workers,
                                          cancel=cancel, on_batch=on_batch, cache_dir=cache_dir,
                                          tiling=config.tiling, good=good)
    novelty, calibration = _calibrate(tuning, split, after, cancel, good_class or None, escape_rate)
    tuning = replace(tuning, decoded=None)  # the result outlives the run: free the photos
    return ExperimentResult(backbone, split, tuning, before, after, shots, time.perf_counter() - started,
                            novelty, calibration, good_class or None, safeguard=guard)


def _calibrate(tuning: TuningResult, split: Split, after: Evaluation, cancel, good_class: str | None,
               escape_rate: float) -> tuple[NoveltyReference, Calibration | None]:
    """What a prediction needs to say "unknown" and to give calibrated probabilities and sets: the
    training photos' class means (one short pass over the few training photos), then the test
    photos' novelty scores and logits, which the evaluation has already computed."""
    # The kept photos serve only when the loop trained on exactly split.train (not a warm start's extra views).
    decoded = tuning.decoded if tuning.decoded is not None and tuning.decoded.items == list(split.train) else None
    novelty = NoveltyReference.from_training(tuning.prompted, split.train, cancel=cancel, decoded=decoded)
    with torch.no_grad():
        scores = novelty.score(after.features)
    calibration = calibrate(after.logits.numpy(), after.labels.numpy(), scores.numpy(),
                            novelty=NOVELTY_DESCRIPTION, good_class=good_class, classnames=split.classnames,
                            escape_rate=escape_rate)
    return novelty, calibration


def _unique(skipped):
    seen, out = set(), []
    for s in skipped:
        if s.path not in seen:
            seen.add(s.path)
            out.append(s)
    return out
