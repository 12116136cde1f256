"""What the held-out photos of a tuning run teach about the tuned model's answers.

Three things are fitted on the held-out (test) photos, from the logits and novelty scores the
evaluation already computed (no extra pass over the photos):

- a temperature T for the probabilities (temperature scaling, Guo et al. 2017): softmax(logits / T)
  with T chosen to minimise the negative log-likelihood of the true classes. One number cannot
  overfit a small held-out set, and it never changes which class wins, so the answer stays the
  tuned model's; only the confidence becomes honest;
- the unknown threshold: the novelty score above which a photo is "unlike the training photos",
  chosen so that at most the stated share of held-out photos would be rejected (the same rank
  rule as conformal prediction, so the rate holds for new photos exchangeable with the held-out);
- the conformal scores of the held-out photos (see dapt_core.deploy.conformal);
- where one class means a good part, the operating point: the threshold on the calibrated probability
  of "good" above which a part passes, for an allowed escape rate (see dapt_core.deploy.pass_fail).

The sorted novelty and conformal scores are kept, so the reject rate and coverage can be chosen
when predicting. The numbers reported as "measured" are out of sample: two-fold, calibrated on one
half of the held-out photos (every other photo of each class) and counted on the other half, then
the other way round.

numpy only, like dapt_core.deploy.conformal: the ONNX runner on a line PC reads the same structure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from . import conformal
from .pass_fail import DEFAULT_ESCAPE_RATE, OperatingPoint, fit_operating_point, mixes_good_and_defective

DEFAULT_REJECT_RATE = 0.05
REPORTED_COVERAGES = (0.8, 0.9, 0.95, 0.99)
# Below this many held-out photos neither a threshold nor a coverage can be stated usefully.
MIN_HELD_OUT = 20
_INVERSE_TEMPERATURE_RANGE = (0.01, 100.0)


@dataclass
class Calibration:
    """The calibration of one tuned model (JSON-ready through to_dict / from_dict)."""

    temperature: float
    novelty_scores: list[float]  # sorted, one per held-out photo
    conformal_scores: list[float]  # sorted, one per held-out photo
    reject_rate: float = DEFAULT_REJECT_RATE
    novelty: str = ""  # how the novelty score is computed, in words
    measured: dict = field(default_factory=dict)
    operating_point: OperatingPoint | None = None  # None: no class means good, or no defective held-out photo

    @property
    def held_out(self) -> int:
        return len(self.conformal_scores)

    def unknown_threshold(self, reject_rate: float | None = None) -> float:
        """Novelty score above which a photo is unknown, for a false-reject rate (default: the file's)."""
        rate = self.reject_rate if reject_rate is None else reject_rate
        check_reject_rate(rate)
        return conformal.cut_for(self.novelty_scores, 1.0 - rate)

    def set_cut(self, coverage: float) -> float:
        return conformal.cut_for(self.conformal_scores, coverage)

    def count_on(self, logits: np.ndarray, labels: np.ndarray, novelty_scores: np.ndarray) -> dict:
        """This calibration's threshold and set cuts counted on labelled photos of the known classes (`dapt
        eval` on a folder): the share flagged unknown, and the coverage and mean size of the sets at each
        reported coverage. Counted on the photos it was fitted on, the numbers are in-sample."""
        labels = np.asarray(labels, dtype=np.int64)
        probabilities = softmax(np.asarray(logits, dtype=np.float64) / self.temperature)
        flagged = np.asarray(novelty_scores, dtype=np.float64) > self.unknown_threshold()
        return {"photos": len(labels), "false_reject_rate": float(flagged.mean()),
                "coverage": {str(c): conformal.measure(probabilities, labels, self.set_cut(c))
                             for c in REPORTED_COVERAGES}}

    def to_dict(self) -> dict:
        return {"temperature": self.temperature, "reject_rate": self.reject_rate,
                "unknown_threshold": _finite_or_none(self.unknown_threshold()), "novelty": self.novelty,
                "held_out_photos": self.held_out, "measured": self.measured,
                "novelty_scores": self.novelty_scores, "conformal_scores": self.conformal_scores,
                "pass_fail": None if self.operating_point is None else self.operating_point.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        return cls(temperature=float(data["temperature"]),
                   novelty_scores=[float(v) for v in data["novelty_scores"]],
                   conformal_scores=[float(v) for v in data["conformal_scores"]],
                   reject_rate=float(data.get("reject_rate", DEFAULT_REJECT_RATE)),
                   novelty=str(data.get("novelty", "")), measured=dict(data.get("measured") or {}),
                   operating_point=OperatingPoint.from_dict(data["pass_fail"]) if data.get("pass_fail") else None)


def calibrate(logits: np.ndarray, labels: np.ndarray, novelty_scores: np.ndarray, *, novelty: str = "",
              reject_rate: float = DEFAULT_REJECT_RATE, good_class: str | None = None,
              classnames: list[str] | None = None, escape_rate: float = DEFAULT_ESCAPE_RATE) -> Calibration | None:
    """Fit the calibration on held-out photos (logits (N, C), labels (N,), novelty scores (N,)).

    None when there are fewer than MIN_HELD_OUT photos: predictions then carry no unknown flag and
    no set, rather than ones resting on a handful of photos. `good_class` (one of `classnames`) adds
    the operating point for `escape_rate`, when the held-out photos hold both good and defective parts.
    """
    check_reject_rate(reject_rate)
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    novelty_scores = np.asarray(novelty_scores, dtype=np.float64)
    if len(labels) < MIN_HELD_OUT:
        return None
    temperature = fit_temperature(logits, labels)
    scores = conformal.nonconformity(softmax(logits / temperature), labels)
    return Calibration(temperature=temperature, novelty_scores=sorted(novelty_scores.tolist()),
                       conformal_scores=sorted(scores.tolist()), reject_rate=reject_rate, novelty=novelty,
                       measured=_two_fold(logits, labels, novelty_scores, reject_rate),
                       operating_point=_operating_point(logits / temperature, labels, good_class, classnames,
                                                        escape_rate))


def _operating_point(logits, labels, good_class, classnames, escape_rate) -> OperatingPoint | None:
    if good_class is None or classnames is None or good_class not in classnames:
        return None
    good = classnames.index(good_class)
    if not mixes_good_and_defective(labels, good):
        return None
    first = _every_other_per_class(labels)
    return fit_operating_point(softmax(logits), labels, good, good_class, escape_rate,
                               folds=[(first, ~first), (~first, first)])


def _two_fold(logits, labels, novelty_scores, reject_rate) -> dict:
    """Out-of-sample false-reject rate, coverage and set size: calibrate on one half, count on the other."""
    first = _every_other_per_class(labels)
    rejected, covered, sizes = [], {c: [] for c in REPORTED_COVERAGES}, {c: [] for c in REPORTED_COVERAGES}
    nll_raw, nll_calibrated = [], []
    for fit, check in ((first, ~first), (~first, first)):
        temperature = fit_temperature(logits[fit], labels[fit])
        fit_probs = softmax(logits[fit] / temperature)
        check_probs = softmax(logits[check] / temperature)
        threshold = conformal.cut_for(novelty_scores[fit], 1.0 - reject_rate)
        rejected.extend((novelty_scores[check] > threshold).tolist())
        fit_scores = conformal.nonconformity(fit_probs, labels[fit])
        for coverage in REPORTED_COVERAGES:
            inside = (1.0 - check_probs) <= conformal.cut_for(fit_scores, coverage)
            covered[coverage].extend(inside[np.arange(check.sum()), labels[check]].tolist())
            sizes[coverage].extend(inside.sum(axis=1).tolist())
        nll_raw.append(_nll(logits[check], labels[check]) * check.sum())
        nll_calibrated.append(_nll(logits[check] / temperature, labels[check]) * check.sum())
    n = len(labels)
    return {
        "photos": n,
        "how": "two-fold on the held-out photos: calibrated on every other photo of each class, counted on the rest, "
               "and the other way round",
        "false_reject_rate": float(np.mean(rejected)),
        "coverage": {str(c): {"coverage": float(np.mean(covered[c])), "mean_set_size": float(np.mean(sizes[c]))}
                     for c in REPORTED_COVERAGES},
        "nll": {"uncalibrated": float(sum(nll_raw) / n), "calibrated": float(sum(nll_calibrated) / n)},
    }


def _every_other_per_class(labels: np.ndarray) -> np.ndarray:
    first = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        first[np.flatnonzero(labels == label)[::2]] = True
    return first


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising the held-out negative log-likelihood of softmax(logits / T).

    The NLL is convex in the inverse temperature, so a golden-section search over it finds the
    minimum without an optimiser library.
    """
    low, high = (math.log(v) for v in _INVERSE_TEMPERATURE_RANGE)
    ratio = (math.sqrt(5) - 1) / 2

    def loss(log_beta: float) -> float:
        return _nll(logits * math.exp(log_beta), labels)

    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = loss(a), loss(b)
    for _ in range(80):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = loss(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = loss(b)
    return float(1.0 / math.exp((low + high) / 2))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _nll(logits: np.ndarray, labels: np.ndarray) -> float:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    return float(np.mean(log_norm - shifted[np.arange(len(labels)), labels]))


def check_reject_rate(rate: float) -> None:
    if not 0.0 < rate < 1.0:
        raise ConfigError(f"The false-reject rate must be between 0 and 1 (for example 0.05), not {rate}.")


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
