"""The one progress record of long work (tuning, evaluation, the app's job phases) and its ETA.

Free of torch so that the app's job queue can hold progress without loading the engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


class Phase:
    """The phases of long work, as Progress.phase names them. SELECT (the learning-rate choice), PROTOTYPES,
    TRAIN and EVALUATE come from the engine; the app's jobs add the others, which carry only the phase
    (CHECK is the check before Start). The app shows each in words (ui's job.phase.* strings)."""

    QUEUED = "queued"
    LOADING = "loading"  # the backbone
    PREPARING = "preparing"  # the split
    SELECT = "select"
    PROTOTYPES = "prototypes"
    TRAIN = "train"
    EVALUATE = "evaluate"
    CHECK = "check"
    SAVING = "saving"
    MAPPING = "mapping"
    CANCELLED = "cancelled"
    ALL = (QUEUED, LOADING, PREPARING, SELECT, PROTOTYPES, TRAIN, EVALUATE, CHECK, SAVING, MAPPING, CANCELLED)


@dataclass(frozen=True)
class Progress:
    """One update for a progress display (the CLI's bars, the app's job panel); `phase` is one of Phase's."""

    phase: str
    epoch: int = 0  # 1-based
    epochs: int = 0
    step: int = 0  # 1-based, over the whole phase
    total_steps: int = 0
    loss: float = math.nan  # the loss terms: the latest read back from the device (training.READBACK_SECONDS)
    ce: float = math.nan
    intra: float = math.nan
    inter: float = math.nan
    train_accuracy: float = math.nan
    lr: float = 0.0
    elapsed: float = 0.0
    eta: float = math.nan
    updated: float = 0.0  # time.time() of this update, stamped by whoever keeps it (the app's jobs)

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0


ProgressCallback = Callable[[Progress], None]


def eta_seconds(elapsed: float, done: int, total: int) -> float:
    """Seconds left at the pace so far: `done` of `total` steps took `elapsed` seconds."""
    return elapsed / done * max(0, total - done) if done else math.nan
