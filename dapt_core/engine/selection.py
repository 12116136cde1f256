"""Choosing the learning rate from the labelled shots alone.

The reference recipe picks a learning rate per data set (0.002 to 20) by looking at test accuracy,
which a quality engineer with 16 photos per class does not have. Three ways here:

  scaled (the default of `dapt tune` and the app) the recipe's rate scaled to the backbone's logit
         scale; no trial runs (scaled_learning_rate).
  quick  that rate and 5 and 25 times it, short runs scored on one held-out quarter of the shots:
         about 0.3-0.45 of a run more (quick_learning_rate).
  auto   five rates spanning the recipe's per-data-set rates, 2-fold cross-validation, full-length runs
         (cross_validated_learning_rate).

`choose_learning_rate` runs the way it is given by name. quick and auto score a candidate by accuracy
(and cross-entropy, to break ties) on training images held out of its run. On the demo tasks (16 shots,
seeds 1-3) the scaled rate did at least as well as the quick choice for CoOp and DAPT, and never
collapsed: the quick choice's 4 held-out photos per class and fifth-length runs favour high rates, which
at full length sometimes fell below zero-shot (ceramic, DAPT, seed 2: 0.241 at 25x against 0.356
zero-shot). See the demo model's card.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from ..data.records import LabeledImage
from ..errors import Cancelled, ConfigError
from .backbone import Backbone
from .evaluation import encode_images
from .methods import DEFAULT_LR, LR_AUTO, LR_QUICK, LR_SCALED, TuningConfig
from .progress import Progress
from .tiled import any_tiles, encode_tiled
from .training import CancelFlag, tune

# Spans the recipe's per-data-set learning rates (0.002 ... 20) in steps of about 10x.
DEFAULT_LR_GRID = (0.002, 0.02, 0.2, 2.0, 20.0)
DEFAULT_FOLDS = 2


@dataclass
class Selection:
    """The chosen learning rate and the held-out score of every candidate."""

    lr: float
    scores: list[dict] = field(default_factory=list)  # {"lr", "accuracy", "loss"} per candidate
    folds: int = DEFAULT_FOLDS
    how: str = LR_AUTO  # one of LR_CHOICES
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """What a prompt file and the metrics record about the choice."""
        return {"how": self.how, "folds": self.folds, "scores": self.scores, "seconds": self.seconds}


def choose_learning_rate(how: str, backbone: Backbone, classnames: list[str], train: list[LabeledImage],
                         config: TuningConfig, *, grid: tuple[float, ...] | None = None, shots: int | None = None,
                         on_progress: Callable[[Progress], None] | None = None,
                         cancel: CancelFlag | None = None, good: int | None = None) -> Selection:
    """The learning rate chosen from the shots alone, the way `how` names: "scaled" (the recipe's rate for
    this backbone's logit scale, no runs), "quick" (about 0.45 of a run) or "auto" (5 rates x 2-fold
    cross-validation, about 2.5 runs); the time it took is in `seconds`. `good`: the good class's index, for the photo's
    rule of a tiled run (the held-out shots are then scored in tiles, as the run will be)."""
    started = time.perf_counter()
    if how == LR_SCALED:
        selection = Selection(scaled_learning_rate(backbone), [], folds=0, how=LR_SCALED)
    elif how == LR_QUICK:
        selection = quick_learning_rate(backbone, classnames, train, config, shots=shots,
                                        on_progress=on_progress, cancel=cancel, good=good)
    elif how == LR_AUTO:
        selection = cross_validated_learning_rate(backbone, classnames, train, config, grid=grid or DEFAULT_LR_GRID,
                                                  shots=shots, on_progress=on_progress, cancel=cancel, good=good)
    else:
        raise ConfigError(f"Unknown learning-rate choice '{how}'; use 'scaled', 'quick', 'auto' or a number.")
    selection.seconds = time.perf_counter() - started
    return selection


def fold_indices(train: list[LabeledImage], folds: int, seed: int) -> list[list[int]]:
    """Stratified folds: each class's images shuffled with `seed` and dealt round-robin."""
    by_class: dict[int, list[int]] = {}
    for index, item in enumerate(train):
        by_class.setdefault(item.label, []).append(index)
    rng = random.Random(seed)
    parts: list[list[int]] = [[] for _ in range(folds)]
    for label in sorted(by_class):
        members = sorted(by_class[label], key=lambda i: str(train[i].path))
        rng.shuffle(members)
        for position, index in enumerate(members):
            parts[position % folds].append(index)
    return parts


def cross_validated_learning_rate(backbone: Backbone, classnames: list[str], train: list[LabeledImage],
                                  config: TuningConfig, *, grid: tuple[float, ...] = DEFAULT_LR_GRID,
                                  folds: int = DEFAULT_FOLDS, shots: int | None = None,
                                  on_progress: Callable[[Progress], None] | None = None,
                                  cancel: CancelFlag | None = None, good: int | None = None) -> Selection:
    """The "auto" choice: cross-validate `config` over the learning rates in `grid` using `train` only.

    Args:
        shots: shots of the final run, for the recipe's epoch count (each fold trains as long).
        on_progress: receives the training progress of each fold run, phase "select".
    """
    if not config.trains:
        raise ConfigError(f"Method '{config.method}' does not train; there is no learning rate to choose.")
    per_class = torch.bincount(torch.tensor([i.label for i in train]), minlength=len(classnames))
    if int(per_class.min()) < folds:
        raise ConfigError(f"Choosing the learning rate by {folds}-fold cross-validation needs at least {folds} "
                          f"training images in every class; give the learning rate with --lr instead.")
    shots = shots if shots is not None else int(per_class.max())
    epochs = config.epochs_for(shots)
    parts = fold_indices(train, folds, config.seed)
    runs = len(grid) * folds
    scores = []
    for g, lr in enumerate(grid):
        correct = total = 0
        loss_sum = 0.0
        for k, held_out in enumerate(parts):
            if cancel is not None and cancel.is_set():
                raise Cancelled("Learning-rate selection was cancelled; nothing was saved.")
            held = set(held_out)
            fit = [item for i, item in enumerate(train) if i not in held]
            check = [train[i] for i in held_out]
            run = g * folds + k

            def relay(progress: Progress, run=run):
                if on_progress is not None:
                    step = run * progress.total_steps + progress.step
                    on_progress(replace(progress, phase="select", step=step,
                                        total_steps=runs * progress.total_steps))

            fold_correct, fold_loss, fold_total = _held_out_score(
                backbone, classnames, fit, check, replace(config, lr=lr, epochs=epochs), relay, cancel, good)
            correct += fold_correct
            loss_sum += fold_loss
            total += fold_total
        scores.append({"lr": lr, "accuracy": correct / max(1, total), "loss": loss_sum / max(1, total)})
    best = max(scores, key=lambda s: (s["accuracy"], -s["loss"]))
    return Selection(best["lr"], scores, folds)


def _held_out_score(backbone: Backbone, classnames: list[str], fit: list[LabeledImage], check: list[LabeledImage],
                    config: TuningConfig, on_progress, cancel, good: int | None = None) -> tuple[int, float, int]:
    """Tune on `fit`, then (correct predictions, summed cross-entropy, images) on `check`, scored as the
    run will score its photos (in tiles, by the photo's rule, where the setting gives them tiles)."""
    model = tune(backbone, classnames, fit, config, on_progress=on_progress, cancel=cancel, good=good).prompted
    with torch.no_grad():
        text = model.text_features().float().cpu()
    if any_tiles(check, config.tiling, backbone.preprocessing.size):
        _, logits, labels, _, _ = encode_tiled(model, check, config.tiling, text, good, prompted=True, cancel=cancel)
    else:
        features, labels, _, _ = encode_images(model, check, prompted=True)
        logits = model.logit_scale.cpu() * features @ text.t()
    loss = F.cross_entropy(logits, labels, reduction="sum").item()
    return int((logits.argmax(1) == labels).sum()), loss if math.isfinite(loss) else float("inf"), len(labels)


# The recipe's learning rates were chosen on CLIPs whose logit scale is 100; the gradient reaching the
# prompts grows with the logit scale, so a backbone with a smaller one needs a proportionally larger rate.
REFERENCE_LOGIT_SCALE = 100.0

# The quick selection: the scaled rate and 5 and 25 times it, each trained for a fifth of the
# epochs on three quarters of the shots and scored on the held-out quarter. It costs at most
# 3 x 0.75 x 0.2 = 0.45 of the final run's training (measured on the demo tasks, 16 shots: 0.28-0.30
# of the run's CPU time, as the last partial batch of an epoch is dropped), so choosing and tuning
# take about 1.3-1.45 runs (the 5 x 2-fold cross-validation above takes 5 x 0.5 x 1 = 2.5 runs
# before the final one).
# Upward only: on the demo task (DAPT, inspection preset, seed 1) the scaled rate 0.0088 gave 0.482,
# 0.05 gave 0.507 and 0.25 gave 0.493, and the recipe's data sets mostly use rates above 0.002.
QUICK_FACTORS = (1.0, 5.0, 25.0)
QUICK_EPOCH_FRACTION = 0.2
QUICK_HELD_OUT = 4  # one quarter of each class's shots is held out


def scaled_learning_rate(backbone: Backbone, lr: float = DEFAULT_LR) -> float:
    """`lr`, a rate for a logit scale of 100 (the recipe's 0.002 by default), for this backbone's scale."""
    return lr * REFERENCE_LOGIT_SCALE / float(backbone.model.logit_scale.exp())


def quick_learning_rate(backbone: Backbone, classnames: list[str], train: list[LabeledImage],
                        config: TuningConfig, *, base: float | None = None, shots: int | None = None,
                        on_progress: Callable[[Progress], None] | None = None,
                        cancel: CancelFlag | None = None, good: int | None = None) -> Selection:
    """Choose among `base` x QUICK_FACTORS with short runs scored on a held-out quarter of the shots.

    Args:
        base: the smallest candidate (default: the recipe's rate scaled to the backbone's logit scale).
    With fewer than two images in some class nothing can be held out; `base` is kept.
    """
    if not config.trains:
        raise ConfigError(f"Method '{config.method}' does not train; there is no learning rate to choose.")
    base = base if base is not None else scaled_learning_rate(backbone)
    per_class = torch.bincount(torch.tensor([i.label for i in train]), minlength=len(classnames))
    if int(per_class.min()) < 2:
        return Selection(base, [], folds=0, how=LR_QUICK)
    shots = shots if shots is not None else int(per_class.max())
    # At least one epoch after the warm-up: the warm-up runs at warmup_lr whatever the candidate, so
    # runs no longer than it would score every candidate the same and always keep `base`.
    epochs = max(config.warmup_epochs + 1, round(config.epochs_for(shots) * QUICK_EPOCH_FRACTION))
    held = set(fold_indices(train, QUICK_HELD_OUT, config.seed)[0])
    fit = [item for i, item in enumerate(train) if i not in held]
    check = [item for i, item in enumerate(train) if i in held]
    candidates = [base * factor for factor in QUICK_FACTORS]
    scores = []
    for run, lr in enumerate(candidates):
        if cancel is not None and cancel.is_set():
            raise Cancelled("Learning-rate selection was cancelled; nothing was saved.")

        def relay(progress: Progress, run=run):
            if on_progress is not None:
                on_progress(replace(progress, phase="select", step=run * progress.total_steps + progress.step,
                                    total_steps=len(candidates) * progress.total_steps))

        correct, loss, total = _held_out_score(backbone, classnames, fit, check, replace(config, lr=lr, epochs=epochs),
                                               relay, cancel, good)
        scores.append({"lr": lr, "accuracy": correct / max(1, total), "loss": loss / max(1, total)})
    best = max(scores, key=lambda s: (s["accuracy"], -s["loss"]))
    return Selection(best["lr"], scores, folds=1, how=LR_QUICK)
