"""One answer for one photo, the same whichever engine computed it (torch or ONNX Runtime).

An engine gives logits and a novelty score per photo; `decide` turns them into the class, its
calibrated probability, the unknown flag and, when a coverage is asked for, the prediction set.
numpy only, so the ONNX runner does not need torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .calibration import Calibration, softmax


@dataclass
class Prediction:
    label: str
    score: float  # probability of `label`: calibrated (temperature-scaled) when the file is calibrated
    probabilities: dict[str, float]
    # True: unlike the training photos (do not trust `label`); None: the file carries no calibration.
    unknown: bool | None = None
    novelty: float | None = None  # higher = further from the training photos
    prediction_set: list[str] | None = field(default=None)  # classes that hold the true one at the asked coverage

    def __repr__(self) -> str:
        flag = ", unknown" if self.unknown else ""
        return f"Prediction({self.label!r}, {self.score:.3f}{flag})"

    def to_dict(self) -> dict:
        return {"label": self.label, "score": self.score, "unknown": self.unknown, "novelty": self.novelty,
                "set": self.prediction_set, "probabilities": self.probabilities}


@dataclass(frozen=True)
class Decision:
    """How raw outputs become answers: the file's calibration and the user's choices."""

    classnames: list[str]
    calibration: Calibration | None = None
    coverage: float | None = None  # ask for prediction sets at this coverage
    unknown_threshold: float | None = None  # overrides the threshold of the file's reject rate
    reject_rate: float | None = None  # choose the threshold for this false-reject rate instead

    def threshold(self) -> float | None:
        if self.unknown_threshold is not None:
            return self.unknown_threshold
        if self.calibration is None:
            return None
        return self.calibration.unknown_threshold(self.reject_rate)

    def set_cut(self) -> float | None:
        if self.coverage is None or self.calibration is None:
            return None
        return self.calibration.set_cut(self.coverage)

    def decide(self, logits: np.ndarray, novelty: np.ndarray | None) -> list[Prediction]:
        logits = np.asarray(logits, dtype=np.float64)
        temperature = self.calibration.temperature if self.calibration is not None else 1.0
        probabilities = softmax(logits / temperature)
        threshold, cut = self.threshold(), self.set_cut()
        predictions = []
        for index, row in enumerate(probabilities):
            best = int(row.argmax())
            score = None if novelty is None else float(novelty[index])
            unknown = None if threshold is None or score is None else bool(score > threshold)
            members = None
            if cut is not None:
                from .conformal import prediction_set

                members = [self.classnames[c] for c in prediction_set(row, cut)]
            predictions.append(Prediction(self.classnames[best], float(row[best]),
                                          {name: float(p) for name, p in zip(self.classnames, row)},
                                          unknown, score, members))
        return predictions

    def describe(self) -> list[str]:
        """Lines for the user: what the flags and sets rest on."""
        if self.calibration is None:
            return [("this file has no calibration (tuned by an older DAPT Studio or with too few held-out photos): "
                     "no unknown flag, no prediction sets, uncalibrated probabilities")]
        measured = self.calibration.measured
        lines = []
        threshold = self.threshold()
        if self.unknown_threshold is not None:
            lines.append(f"unknown: novelty above {threshold:.4f} (threshold given by the user)")
        else:
            rate = self.calibration.reject_rate if self.reject_rate is None else self.reject_rate
            shown = "never (too few held-out photos for this rate)" if not math.isfinite(threshold) \
                else f"novelty above {threshold:.4f}"
            lines.append(f"unknown: {shown}, chosen to reject at most {rate:.1%} of photos like the "
                         f"{self.calibration.held_out} held-out ones")
            if self.reject_rate is None and "false_reject_rate" in measured:
                lines.append(f"  measured on the held-out photos (two-fold): {measured['false_reject_rate']:.1%} "
                             f"rejected")
        if self.coverage is not None:
            row = measured.get("coverage", {}).get(str(self.coverage))
            text = f"sets: {self.coverage:.0%} coverage"
            if row:
                text += (f"; measured on the held-out photos (two-fold): coverage {row['coverage']:.1%}, "
                         f"average set size {row['mean_set_size']:.2f}")
            lines.append(text)
        return lines
