"""A time budget for a run: the schedule that fits it, and the deadline that keeps the run inside it.

A quality engineer with a 30-minute meeting asks for a run that ends in 25 minutes. The run's time is
mostly its epochs (engine/estimate.py counts them from steps measured on this machine), so the budget
picks the epoch count that fits and the learning-rate schedule (warm-up, then cosine) is laid over the
shortened run, not cut off: a run of 40 epochs decays its rate over 40 epochs. The parts that do not
shrink with the epochs (decoding the photos, the prototypes, evaluating the test photos, calibrating)
are taken off the budget first.

The estimate can be off (another program on the machine, a slower first epoch), so the training loop
also gets a deadline: it stops after the epoch that would otherwise run past it, leaving the time the
evaluation needs. How much of the recipe's epochs a CPU user can skip, and for what loss, is measured
in benchmarks/budget.py and stated in the README.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

from ..errors import ConfigError
from .estimate import Estimate

# The plan aims at this share of the budget; the deadline catches an estimate that was too low.
PLAN_SHARE = 0.98
# Parts of the estimate that grow with the epochs; the others are paid once.
PER_EPOCH_PARTS = ("train", "choose_lr")  # (the key tiles are chosen about ten times in any run)
# The parts after the training loop: the deadline leaves them this much more than their estimate.
AFTER_TRAINING_PARTS = ("evaluate", "calibrate")
AFTER_TRAINING_MARGIN = 1.1
# A run shorter than this many epochs after the warm-up learns nothing worth keeping.
MIN_EPOCHS_AFTER_WARMUP = 1


@dataclass(frozen=True)
class BudgetPlan:
    """How a run fits `minutes`: `epochs` of the recipe's `full_epochs`, expected to take `planned_seconds`."""

    minutes: float
    full_epochs: int
    epochs: int
    full_seconds: float  # the estimate at the recipe's epochs
    planned_seconds: float  # the estimate at `epochs`
    after_training_seconds: float  # evaluation and calibration, kept free by the deadline

    @property
    def shortened(self) -> bool:
        return self.epochs < self.full_epochs

    def training_deadline(self, started: float) -> float:
        """The clock time (time.perf_counter) by which the training loop must end, for a run begun at `started`."""
        return started + 60 * self.minutes - AFTER_TRAINING_MARGIN * self.after_training_seconds

    def replanner(self, started: float):
        """tune's `replan` for a run begun at `started`: the epochs that fit the budget at the pace the run has
        shown so far (the estimate's steps, timed before the run, can be off by a tenth either way), never more
        than the recipe's."""
        def replan(done: int, seconds_per_epoch: float) -> int:
            end_of_training = started + PLAN_SHARE * 60 * self.minutes - self.after_training_seconds
            more = math.floor((end_of_training - time.perf_counter()) / max(seconds_per_epoch, 1e-9))
            return min(self.full_epochs, done + max(0, more))

        return replan

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if not self.shortened:
            return (f"the whole run ({self.full_epochs} epochs, about {_minutes(self.full_seconds)}) fits in "
                    f"{_minutes(60 * self.minutes)}")
        return (f"{self.epochs} of the recipe's {self.full_epochs} epochs fit in {_minutes(60 * self.minutes)} "
                f"(about {_minutes(self.planned_seconds)}; the whole run would take about "
                f"{_minutes(self.full_seconds)})")


def plan_budget(estimate: Estimate, minutes: float, *, warmup_epochs: int = 1) -> BudgetPlan:
    """The most epochs of the run that `estimate` describes that fit in `minutes` (all of them where the
    whole run fits). Raises ConfigError, with the shortest budget that would do, where not even the
    shortest useful run fits."""
    if not minutes > 0 or not math.isfinite(minutes):
        raise ConfigError(f"A time budget must be a positive number of minutes, got {minutes}.")
    full_epochs = int(estimate.counts.get("epochs", 0))
    budget = 60.0 * minutes
    after = sum(estimate.seconds.get(part, 0.0) for part in AFTER_TRAINING_PARTS)
    if full_epochs < 1:  # nothing to train: zero-shot takes what it takes
        return BudgetPlan(minutes, 0, 0, estimate.total, estimate.total, after)
    per_epoch = sum(estimate.seconds.get(part, 0.0) for part in PER_EPOCH_PARTS) / full_epochs
    once = estimate.total - per_epoch * full_epochs
    fitting = math.floor((PLAN_SHARE * budget - once) / per_epoch) if per_epoch > 0 else full_epochs
    epochs = min(full_epochs, fitting)
    shortest = min(full_epochs, warmup_epochs + MIN_EPOCHS_AFTER_WARMUP)
    if epochs < shortest:
        needed = (once + per_epoch * shortest) / PLAN_SHARE
        raise ConfigError(f"A budget of {_minutes(budget)} is too short for this run: decoding, evaluating and "
                          f"{shortest} epochs take about {_minutes(needed)} on this machine. Give at least "
                          f"{math.ceil(needed / 60)} minutes, or fewer shots or test photos.")
    return BudgetPlan(minutes, full_epochs, epochs, estimate.total, once + per_epoch * epochs, after)


def _minutes(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"
