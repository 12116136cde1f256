"""One answer for one photo, the same whichever engine computed it (torch or ONNX Runtime).

An engine gives logits and a novelty score per photo; `decide` turns them into the class, its
calibrated probability, the unknown flag, the pass/fail verdict (where the file has an operating
point) and, when a coverage is asked for, the prediction set.
numpy only, so the ONNX runner does not need torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .calibration import Calibration, softmax
from .pass_fail import check_escape_rate

PASS, FAIL = "pass", "fail"


@dataclass
class Prediction:
    label: str
    score: float  # probability of `label`: calibrated (temperature-scaled) when the file is calibrated
    probabilities: dict[str, float]
    # True: unlike the training photos (do not trust `label`); None: the file carries no calibration.
    unknown: bool | None = None
    novelty: float | None = None  # higher = further from the training photos
    prediction_set: list[str] | None = field(default=None)  # classes that hold the true one at the asked coverage
    # "pass" or "fail" at the file's operating point (a part unknown to the model fails); None: no operating point.
    verdict: str | None = None
    good_probability: float | None = None  # calibrated probability of the good class
    # Where the evidence lies (deploy/heatmaps.py), for a tiled file when asked for; not in to_dict.
    heatmap: object | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        flag = ", unknown" if self.unknown else ""
        verdict = f", {self.verdict}" if self.verdict else ""
        return f"Prediction({self.label!r}, {self.score:.3f}{flag}{verdict})"

    def to_dict(self) -> dict:
        return {"label": self.label, "score": self.score, "unknown": self.unknown, "novelty": self.novelty,
                "set": self.prediction_set, "verdict": self.verdict, "good_probability": self.good_probability,
                "probabilities": self.probabilities}


@dataclass(frozen=True)
class Decision:
    """How raw outputs become answers: the file's calibration and the user's choices."""

    classnames: list[str]
    calibration: Calibration | None = None
    coverage: float | None = None  # ask for prediction sets at this coverage
    unknown_threshold: float | None = None  # overrides the threshold of the file's reject rate
    reject_rate: float | None = None  # choose the threshold for this false-reject rate instead
    escape_rate: float | None = None  # place the pass threshold for this escape rate instead of the file's

    @property
    def operating_point(self):
        return None if self.calibration is None else self.calibration.operating_point

    def pass_cut(self) -> float | None:
        """The calibrated P(good) a part must exceed to pass; None without an operating point."""
        if self.operating_point is None:
            return None
        if self.escape_rate is not None:
            check_escape_rate(self.escape_rate)
        return self.operating_point.cut(self.escape_rate)

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
        flags = None if threshold is None or novelty is None else np.asarray(novelty, dtype=np.float64) > threshold
        good = passed = None
        if self.pass_cut() is not None:  # also checks a given escape rate
            good = self.classnames.index(self.operating_point.good_class)
            passed = self.operating_point.passes(probabilities[:, good], flags, self.escape_rate)
        predictions = []
        for index, row in enumerate(probabilities):
            best = int(row.argmax())
            score = None if novelty is None else float(novelty[index])
            unknown = None if flags is None else bool(flags[index])
            members = None
            if cut is not None:
                from .conformal import prediction_set

                members = [self.classnames[c] for c in prediction_set(row, cut)]
            verdict = good_probability = None
            if good is not None:
                good_probability = float(row[good])
                verdict = PASS if passed[index] else FAIL
            predictions.append(Prediction(self.classnames[best], float(row[best]),
                                          {name: float(p) for name, p in zip(self.classnames, row)},
                                          unknown, score, members, verdict, good_probability))
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
        lines.extend(self._describe_operating_point())
        if self.coverage is not None:
            row = measured.get("coverage", {}).get(str(self.coverage))
            text = f"sets: {self.coverage:.0%} coverage"
            if row:
                text += (f"; measured on the held-out photos (two-fold): coverage {row['coverage']:.1%}, "
                         f"average set size {row['mean_set_size']:.2f}")
            lines.append(text)
        return lines

    def _describe_operating_point(self) -> list[str]:
        point = self.operating_point
        if point is None:
            return ["pass/fail: none (no class of this file means a good part, or its held-out photos held no "
                    "defective one); each photo gets a class only"]
        rate = point.escape_rate if self.escape_rate is None else self.escape_rate
        cut = self.pass_cut()
        if cut == math.inf:
            return [f"pass/fail: nothing passes: {len(point.defect_scores)} defective held-out photo(s) cannot "
                    f"promise an escape rate of {rate:.1%} (it takes at least {math.ceil(1 / rate - 1)}); tune "
                    f"with more defective test photos or allow a higher rate"]
        lines = [f"pass/fail: a part passes when P({point.good_class}) > {cut:.4f} and it is not "
                 f"unknown; placed for at most {rate:.1%} escapes on the {len(point.defect_scores)} defective "
                 f"held-out photos (conformal risk control)"]
        overkill = point.overkill_on_held_out(self.escape_rate)
        if overkill is not None:
            lines.append(f"  it stops {overkill:.1%} of the {len(point.good_scores)} good held-out photos (overkill)")
        return lines
