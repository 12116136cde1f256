"""Prediction sets with a coverage guarantee: split conformal prediction.

The score of a held-out photo is 1 - (calibrated probability of its true class). For a wanted
coverage 1 - a, the cut is the ceil((n + 1)(1 - a))-th smallest of the n held-out scores; the set
of a new photo holds every class whose score is at or below the cut. If new photos are
exchangeable with the held-out ones (same line, same camera, same kinds of part), the set holds the
true class with probability at least 1 - a (Vovk et al. 2005; this score is the one of Sadinle et
al. 2019, which gives the smallest sets on average). The sorted scores are kept rather than one cut,
so the coverage can be chosen when predicting.

numpy only: the ONNX runner on a line PC uses it without torch.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError


def nonconformity(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) scores of labelled photos: 1 - probability of the true class."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    return 1.0 - probabilities[np.arange(len(labels)), labels]


def cut_for(scores, coverage: float) -> float:
    """The score cut for `coverage` from calibration scores.

    With n scores a coverage above n / (n + 1) cannot be promised by any finite cut, so every class
    is then in the set (cut inf): the guarantee stays honest and the user sees why the sets are full.
    """
    check_coverage(coverage)
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    rank = math.ceil((len(scores) + 1) * coverage)
    return math.inf if rank > len(scores) else float(scores[rank - 1])


def prediction_set(probabilities: np.ndarray, cut: float) -> list[int]:
    """Class indices of one photo whose score 1 - p is at or below `cut`, most probable first."""
    order = np.argsort(-np.asarray(probabilities), kind="stable")
    return [int(c) for c in order if 1.0 - probabilities[c] <= cut]


def measure(probabilities: np.ndarray, labels: np.ndarray, cut: float) -> dict:
    """Share of photos whose set holds the true class, and the mean set size."""
    inside = (1.0 - np.asarray(probabilities)) <= cut
    covered = inside[np.arange(len(labels)), np.asarray(labels)]
    return {"coverage": float(covered.mean()), "mean_set_size": float(inside.sum(axis=1).mean())}


def check_coverage(coverage: float) -> None:
    if not 0.0 < coverage < 1.0:
        raise ConfigError(f"Coverage must be between 0 and 1 (for example 0.95), not {coverage}.")
