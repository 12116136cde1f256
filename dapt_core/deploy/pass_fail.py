"""Pass or fail: the numbers an inspection line lives by.

A line first decides whether a part passes; the defect type comes second. With one class that means
"good" (no defect, OK, 良品, ...) every other class is a defect, and two mistakes matter, at very
different prices:

- an escape: a defective part called good, which reaches the customer;
- overkill: a good part called defective, which is thrown away or checked again by hand.

Everything here works on class probabilities and labels as numpy arrays, so the torch engine, the
ONNX runner on a line PC and the app's reports count the same way.

The operating point: a part passes when its (calibrated) probability of the good class is above a
threshold, chosen on held-out photos for an allowed escape rate a. The rule is conformal risk
control (Angelopoulos et al. 2022) for the escape loss of defective parts: with n held-out defective
photos, the smallest threshold whose count k of passing held-out defects satisfies
(k + 1) / (n + 1) <= a. For new defective parts exchangeable with the held-out ones (same line, same
camera, same kinds of defect), the expected escape rate is then at most a. Below 1 / a - 1 held-out
defective photos no threshold can promise that, and nothing passes: the honest answer is "collect
more defective photos", not a number that only looks safe.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError

DEFAULT_ESCAPE_RATE = 0.02
NO_GOOD_CLASS = ""  # a project's explicit answer "no class means good"

# Whole class names (compared case- and punctuation-insensitively) that mean a part without defect.
_GOOD_NAMES = {
    "good", "ok", "okay", "pass", "passed", "normal", "nodefect", "nodefects", "defectfree", "nondefective",
    "notdefective", "withoutdefect", "flawless", "nonflawed", "clean", "intact", "accept", "accepted",
    "acceptable", "conforming", "nominal", "healthy", "fine", "none",
    "良品", "正常", "合格", "ok品", "問題なし", "欠陥なし", "不良なし", "良",
}
# Words inside longer names ("good part", "OK_sample", "normal surface") that mean the same.
_GOOD_WORDS = {"good", "ok", "normal", "nodefect", "defectfree", "nondefective", "flawless", "intact", "pass",
               "良品", "正常", "合格"}
# ...unless the name also says the opposite ("not ok", "NG", "bad").
_NOT_GOOD_WORDS = {"not", "no", "ng", "nok", "bad", "fail", "failed", "defect", "defects", "defective", "reject",
                   "不良", "不良品", "異常", "不合格"}


def _fold(name: str) -> str:
    return re.sub(r"[\s_\-./()]+", "", unicodedata.normalize("NFKC", name).casefold())


def _words(name: str) -> list[str]:
    text = unicodedata.normalize("NFKC", name).casefold()
    text = re.sub(r"\bno[\s_\-]+defects?\b", "nodefect", text)
    text = re.sub(r"\bdefect[\s_\-]+free\b", "defectfree", text)
    text = re.sub(r"\bnon[\s_\-]+defective\b", "nondefective", text)
    return [w for w in re.split(r"[\s_\-./()]+", text) if w]


def guess_good_class(classnames: list[str]) -> str | None:
    """The class that most likely means "good" (no defect), or None when no name says so, or when
    several do (then the user has to say which)."""
    exact = [name for name in classnames if _fold(name) in _GOOD_NAMES]
    if len(exact) == 1:
        return exact[0]
    if exact:
        return None
    partial = [name for name in classnames if any(word in _GOOD_WORDS for word in _words(name))
               and not any(word in _NOT_GOOD_WORDS for word in _words(name))]
    return partial[0] if len(partial) == 1 else None


def check_escape_rate(rate: float) -> None:
    if not 0.0 < rate < 1.0:
        raise ConfigError(f"The allowed escape rate must be between 0 and 1 (for example 0.02), not {rate}.")


def good_index(classnames: list[str], good_class: str | None) -> int | None:
    """Index of `good_class` in `classnames` (None for None); a name the task does not have is an error."""
    if good_class is None or good_class == NO_GOOD_CLASS:
        return None
    if good_class not in classnames:
        raise ConfigError(f"'{good_class}' is not one of the classes ({', '.join(classnames)}); name the class "
                          f"that means a good part, or 'none' if no class does.")
    return classnames.index(good_class)


def mixes_good_and_defective(labels: np.ndarray, good: int) -> bool:
    """Whether labelled photos show both kinds of part: only then can escapes and overkill both be counted
    and a pass threshold be placed between them."""
    is_good = np.asarray(labels) == good
    return bool(is_good.any() and not is_good.all())


# ---------------------------------------------------------------------------------- counting
def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % interval of a rate k / n (Wilson score interval: sensible at 0 of n and with few photos)."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate(k: int, n: int) -> dict:
    """A count as the JSON the reports read: count, of, rate and its 95 % interval."""
    low, high = wilson_interval(k, n)
    return {"count": int(k), "of": int(n), "rate": (k / n) if n else None,
            "interval": [low, high] if n else None}


def counts(passed: np.ndarray, labels: np.ndarray, predictions: np.ndarray, classnames: list[str],
           good: int) -> dict:
    """Escapes, overkill and the defect-type accuracy of one set of answers.

    passed: (N,) True where the part was let through; labels, predictions: (N,) class indices (the
    predicted defect type is read only for parts that were stopped)."""
    passed, labels, predictions = (np.asarray(a) for a in (passed, labels, predictions))
    defective = labels != good
    caught = defective & ~passed
    typed = caught & (predictions == labels)
    by_class = {classnames[c]: int((passed & (labels == c)).sum()) for c in range(len(classnames)) if c != good}
    return {
        "escapes": rate(int((defective & passed).sum()), int(defective.sum())),
        "overkill": rate(int((~defective & ~passed).sum()), int((~defective).sum())),
        "escapes_by_class": by_class,
        "defect_type_accuracy": rate(int(typed.sum()), int(caught.sum())),
    }


def argmax_counts(probabilities: np.ndarray, labels: np.ndarray, classnames: list[str], good: int) -> dict:
    """counts() when a part passes exactly when "good" is its most probable class."""
    predictions = np.asarray(probabilities).argmax(axis=1)
    return counts(predictions == good, labels, predictions, classnames, good)


def tradeoff_curve(good_probability: np.ndarray, labels: np.ndarray, good: int, points: int = 101) -> list[dict]:
    """Escape rate against overkill rate as the pass threshold on P(good) moves, one row per distinct
    operating point: {"threshold", "escape_rate", "overkill_rate"} (passes when P(good) > threshold)."""
    p, labels = np.asarray(good_probability, dtype=np.float64), np.asarray(labels)
    if not mixes_good_and_defective(labels, good):
        return []
    defective = labels != good
    cuts = np.unique(np.concatenate([[-np.inf], p]))
    rows = []
    for cut in cuts:
        passed = p > cut
        rows.append({"threshold": float(max(cut, 0.0)),
                     "escape_rate": float((passed & defective).sum() / defective.sum()),
                     "overkill_rate": float((~passed & ~defective).sum() / (~defective).sum())})
    if len(rows) > points:  # keep the shape, drop near-duplicates
        keep = np.unique(np.linspace(0, len(rows) - 1, points).round().astype(int))
        rows = [rows[i] for i in keep]
    return rows


# ---------------------------------------------------------------------------------- operating point
def pass_cut(defect_scores, escape_rate: float) -> float:
    """The P(good) a part must exceed to pass, so that the expected escape rate of parts like the held-out
    defective ones is at most `escape_rate` (conformal risk control; see the module docstring).
    inf when too few defective photos were held out to promise the rate: then nothing passes. Otherwise
    one of the scores, a probability: never below 0 (a rate under 1 never allows all n to pass)."""
    check_escape_rate(escape_rate)
    scores = np.sort(np.asarray(defect_scores, dtype=np.float64))[::-1]  # most "good-looking" defects first
    n = len(scores)
    allowed = math.floor(escape_rate * (n + 1) - 1 + 1e-12)  # largest k with (k + 1) / (n + 1) <= rate
    if allowed < 0:
        return math.inf
    return float(scores[allowed])  # pass only above the (allowed + 1)-th best-looking defect


@dataclass
class OperatingPoint:
    """Where the line's pass threshold sits: the good class, the allowed escape rate and the held-out
    evidence it rests on (JSON-ready through to_dict / from_dict)."""

    good_class: str
    escape_rate: float
    defect_scores: list[float]  # sorted P(good) of the held-out defective photos
    good_scores: list[float]  # sorted P(good) of the held-out good photos (to state the overkill)
    measured: dict = field(default_factory=dict)

    def cut(self, escape_rate: float | None = None) -> float:
        return pass_cut(self.defect_scores, self.escape_rate if escape_rate is None else escape_rate)

    def overkill_on_held_out(self, escape_rate: float | None = None) -> float | None:
        """Share of the held-out good photos this threshold would stop (in-sample)."""
        if not self.good_scores:
            return None
        return float(np.mean(np.asarray(self.good_scores) <= self.cut(escape_rate)))

    def passes(self, good_probability: np.ndarray, unknown: np.ndarray | None = None,
               escape_rate: float | None = None) -> np.ndarray:
        """True where a part passes: P(good) above the cut and, where the unknown flag is known, not unknown
        (a part unlike anything seen in training is never waved through; stopping more parts only lowers
        the escape rate)."""
        passed = np.asarray(good_probability, dtype=np.float64) > self.cut(escape_rate)
        if unknown is not None:
            passed &= ~np.asarray(unknown, dtype=bool)
        return passed

    def to_dict(self) -> dict:
        cut = self.cut()
        return {"good_class": self.good_class, "escape_rate": self.escape_rate,
                "threshold": cut if math.isfinite(cut) else None, "feasible": cut != math.inf,
                "held_out_defective": len(self.defect_scores), "held_out_good": len(self.good_scores),
                "measured": self.measured, "defect_scores": self.defect_scores, "good_scores": self.good_scores}

    @classmethod
    def from_dict(cls, data: dict) -> OperatingPoint:
        return cls(good_class=str(data["good_class"]), escape_rate=float(data["escape_rate"]),
                   defect_scores=[float(v) for v in data["defect_scores"]],
                   good_scores=[float(v) for v in data.get("good_scores", [])],
                   measured=dict(data.get("measured") or {}))


def fit_operating_point(probabilities: np.ndarray, labels: np.ndarray, good: int, good_class: str,
                        escape_rate: float = DEFAULT_ESCAPE_RATE,
                        folds: list[tuple[np.ndarray, np.ndarray]] | None = None) -> OperatingPoint:
    """The operating point from held-out photos' calibrated probabilities (N, C) and labels (N,).

    `folds`: (fit, check) boolean masks for the out-of-sample measurement (the threshold chosen on one
    part, escapes and overkill counted on the other); without them nothing is "measured"."""
    check_escape_rate(escape_rate)
    probabilities, labels = np.asarray(probabilities, dtype=np.float64), np.asarray(labels)
    p_good = probabilities[:, good]
    defective = labels != good
    point = OperatingPoint(good_class, escape_rate, sorted(p_good[defective].tolist()),
                           sorted(p_good[~defective].tolist()))
    if folds:
        escaped = defects = stopped = goods = 0
        for fit, check in folds:
            cut = pass_cut(p_good[fit & defective], escape_rate)
            passed = p_good[check] > cut
            escaped += int((passed & defective[check]).sum())
            defects += int(defective[check].sum())
            stopped += int((~passed & ~defective[check]).sum())
            goods += int((~defective[check]).sum())
        point.measured = {"how": "two-fold on the held-out photos: threshold chosen on one half, counted on the "
                                 "other, and the other way round",
                          "escapes": rate(escaped, defects), "overkill": rate(stopped, goods)}
    return point


# What the overkill at the operating point means for a line, in three bands (a good part in two thrown
# away is no inspection; one in ten still needs a person beside the line). Plain guides, not standards:
# the numbers themselves are always shown beside the word.
NOT_READY_OVERKILL = 0.5
COSTLY_OVERKILL = 0.1
READINESS = ("no_threshold", "not_ready", "costly", "workable")


def readiness(operating_point: dict | None) -> str | None:
    """One word for a manager from an operating point's to_dict(): can the line run at the allowed escape
    rate, and at what cost in good parts stopped (the two-fold measured overkill where there is one)?"""
    if not operating_point:
        return None
    if not operating_point.get("feasible", True):
        return "no_threshold"
    overkill = (operating_point.get("measured") or {}).get("overkill") or {}
    value = overkill.get("rate")
    if value is None:
        return None
    if value >= NOT_READY_OVERKILL:
        return "not_ready"
    return "costly" if value >= COSTLY_OVERKILL else "workable"


def at_operating_point(point: OperatingPoint, probabilities: np.ndarray, labels: np.ndarray,
                       classnames: list[str], unknown: np.ndarray | None = None,
                       escape_rate: float | None = None) -> dict:
    """counts() on labelled photos (`dapt eval`) with the file's pass threshold (and unknown flags)."""
    good = classnames.index(point.good_class)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    passed = point.passes(probabilities[:, good], unknown, escape_rate)
    return {"escape_rate": point.escape_rate if escape_rate is None else escape_rate,
            **counts(passed, labels, probabilities.argmax(axis=1), classnames, good)}
