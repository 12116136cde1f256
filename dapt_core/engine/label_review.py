"""Label review: photos whose label looks wrong, duplicates and leaks, outliers. It only reports.

Everything is read from the frozen image features (test view, no prompts, L2-normalised) of the labelled
photos, the same features the check before tuning uses (feasibility.py), read through the same on-disk
cache (feature_cache.py). Nothing is trained and nothing is changed: the caller shows the findings and the
user decides.

- suspect label: each photo is scored out of sample, so that it cannot vouch for itself:
    * a k-nearest-neighbour vote in the frozen feature space, the photo itself left out, k =
      min(10, photos per class - 1) (the median class's count);
    * the leave-one-out nearest-class-mean probability: a softmax over the cosine similarities to the
      class means, the photo left out of its own class's mean, at the temperature that best explains
      the labels (fitted on the same leave-one-out scores, from a fixed grid).
  Their mean is the photo's out-of-sample probability of each class. A photo whose own class gets at most
  SUSPECT_OWN_MAX while another class gets at least SUSPECT_OTHER_MIN is suspect; the findings are ranked
  by how much more likely the other class is (its probability over the own class's).
- duplicates: photos with the same content hash (exact), and pairs whose cosine distance is below
  NEAR_DUPLICATE_FACTOR x the median nearest-neighbour distance (near: a resized, re-encoded or slightly
  brighter copy). A pair is "within_class", "across_classes" (the same picture with two labels) or
  "train_test_leak" (one trains, one measures: the test photo flatters accuracy).
- outlier: a photo whose nearest other photo (its duplicates not counted) is further than
  Q3 + OUTLIER_IQR x IQR of every photo's nearest-neighbour distance, on a log scale (the distances are
  skewed): a wrong picture, a different camera, a blank frame.

The thresholds are calibrated on the demo tasks (benchmarks/label_review.py; README "Review the labels").
The arithmetic works on plain arrays (`review`), so it is tested on synthetic features; `review_photos`
adds the feature extraction and the hashing around it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..deploy.pass_fail import wilson_interval
from ..errors import DataError
from .feasibility import leave_one_out_predictions, level_of

FORMAT = 1
KINDS = ("suspect_label", "duplicate", "near_duplicate", "outlier")
SCOPES = ("within_class", "across_classes", "train_test_leak")
TRAIN, TEST = "train", "test"
HELD_OUT = frozenset({TEST, "val"})  # parts a photo is measured or selected on, never trained on

MAX_NEIGHBOURS = 10
# A suspect: its own class at most this likely out of sample, another class at least this likely.
# Calibrated on the demo tasks (6 seeds, 4-16 shots, 10 % flips): at 0.2 / 0.5 a third of the flags at 4
# shots were wrong with no flip among them; at 0.1 / 0.6 one in 120 photos, while every planted flip of a task
# the features separate (the colour control) is still flagged.
SUSPECT_OWN_MAX = 0.1
SUSPECT_OTHER_MIN = 0.6
# Near duplicate: cosine distance below this many times the median nearest-neighbour distance
# (cleanlab uses 0.13; calibrated on the demo tasks, see the module docstring).
NEAR_DUPLICATE_FACTOR = 0.13
OUTLIER_IQR = 1.7
MIN_PHOTOS_FOR_OUTLIERS = 8  # quartiles of fewer distances say little
TEMPERATURES = tuple(float(t) for t in np.geomspace(0.002, 0.5, 25))


@dataclass
class Finding:
    """One thing worth a look. `photos` are indices into the reviewed photos; `score` orders findings of
    one kind, higher first; `reason` is plain English. `suggested` is the class a suspect looks like;
    `scope` says where a duplicate pair lies (SCOPES)."""

    kind: str
    photos: tuple[int, ...]
    score: float
    reason: str
    suggested: str | None = None
    scope: str | None = None
    details: dict = field(default_factory=dict)

    def key(self, ids: Sequence[str]) -> str:
        """A stable name for this finding given the photos' ids (content hashes): the same finding on the
        next review has the same key, so a dismissed one can stay dismissed."""
        names = sorted(str(ids[i]) for i in self.photos)
        return ":".join([self.kind, *names] + ([self.suggested] if self.suggested else []))

    def to_dict(self, names: Sequence[str] | None = None) -> dict:
        data = {"kind": self.kind, "photos": list(self.photos), "score": _finite(self.score), "reason": self.reason,
                "suggested": self.suggested, "scope": self.scope, "details": self.details}
        if names is not None:
            data["names"] = [str(names[i]) for i in self.photos]
        return data


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


# ------------------------------------------------------------------------------ the arithmetic
def _normalised(features) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def neighbour_count(labels: np.ndarray, n_classes: int) -> int:
    """k of the vote: min(10, photos per class - 1), counting the median class (at least 1)."""
    counts = np.bincount(labels, minlength=n_classes)
    counts = counts[counts > 0]
    return int(max(1, min(MAX_NEIGHBOURS, int(np.median(counts)) - 1, len(labels) - 1)))


def knn_vote(similarity: np.ndarray, labels: np.ndarray, n_classes: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) share of each photo's k most similar other photos in each class, and (N, k) their indices."""
    sim = similarity.copy()
    np.fill_diagonal(sim, -np.inf)
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    votes = np.zeros((len(labels), n_classes))
    np.add.at(votes, (np.repeat(np.arange(len(labels)), k), labels[order].ravel()), 1.0)
    return votes / k, order


def class_mean_similarities(x: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(N, C) cosine similarity of each photo to each class mean, the photo left out of its own class's
    (as feasibility.leave_one_out_predictions); -inf where a class has no other photo."""
    sums = np.zeros((n_classes, x.shape[1]))
    np.add.at(sums, labels, x)
    dots = x @ sums.T
    norms = np.linalg.norm(sums, axis=1)
    rows = np.arange(len(x))
    own_dot = dots[rows, labels]
    own_norm = np.sqrt(np.clip(norms[labels] ** 2 - 2 * own_dot + 1, 0.0, None))
    similarity = dots / np.clip(norms, 1e-12, None)
    similarity[:, norms <= 1e-12] = -np.inf
    similarity[rows, labels] = np.where(own_norm > 1e-9, (own_dot - 1) / np.clip(own_norm, 1e-12, None), -np.inf)
    return similarity


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def class_mean_probabilities(x: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, float]:
    """(N, C) leave-one-out nearest-class-mean probabilities and the temperature: of TEMPERATURES, the one
    whose softmax gives the given labels the highest mean log-probability."""
    similarity = class_mean_similarities(x, labels, n_classes)
    finite = np.where(np.isfinite(similarity), similarity, -1e9)
    rows = np.arange(len(labels))
    best, best_t = None, TEMPERATURES[-1]
    for temperature in TEMPERATURES:
        p = _softmax(finite / temperature)
        score = float(np.mean(np.log(np.clip(p[rows, labels], 1e-12, None))))
        if best is None or score > best:
            best, best_t = score, temperature
    return _softmax(finite / best_t), best_t


def nearest_distances(distance: np.ndarray, excluded: np.ndarray | None = None) -> np.ndarray:
    """(N,) cosine distance of each photo to its nearest other photo; `excluded` (N, N) pairs do not count."""
    d = distance.copy()
    np.fill_diagonal(d, np.inf)
    if excluded is not None:
        d[excluded] = np.inf
    return d.min(axis=1)


def review(features, labels, classnames: Sequence[str], *, parts: Sequence[str] | None = None,
           hashes: Sequence[str] | None = None, names: Sequence[str] | None = None) -> dict:
    """Findings for photos with frozen `features` (N, D) and `labels` (N,) indices into `classnames`.

    `parts`: "train", "test" ("val" counts as test) or "" (not decided yet: a draw will decide) per photo,
    for leaks; `hashes`:
    content hashes, for exact duplicates; `names`: how photos are named in the reasons (default
    "photo 3"). Returns {"findings": [Finding, ...] (suspects first, then duplicates, near duplicates and
    outliers, each by score), "thresholds": {...}, "photos": N, "k": k, "temperature": t}."""
    x = _normalised(features)
    labels = np.asarray(labels, dtype=np.int64)
    n, n_classes = len(labels), len(classnames)
    if len(x) != n:
        raise DataError(f"{len(x)} feature rows for {n} labels")
    names = list(names) if names is not None else [f"photo {i + 1}" for i in range(n)]
    parts = list(parts) if parts is not None else [""] * n
    similarity = x @ x.T
    distance = np.clip(1.0 - similarity, 0.0, 2.0)

    findings: list[Finding] = []
    thresholds: dict = {"suspect_own_max": SUSPECT_OWN_MAX, "suspect_other_min": SUSPECT_OTHER_MIN,
                        "near_duplicate_factor": NEAR_DUPLICATE_FACTOR, "outlier_iqr": OUTLIER_IQR}
    k, temperature, separation = None, None, None
    if n >= 3 and len(np.unique(labels)) >= 2:
        k = neighbour_count(labels, n_classes)
        found, temperature = suspects(x, similarity, labels, classnames, k, names)
        findings += found
        separation = separation_of(x, labels, n_classes)

    exact_groups = _exact_groups(hashes) if hashes is not None else []
    same_content = np.zeros((n, n), dtype=bool)
    for group in exact_groups:
        same_content[np.ix_(group, group)] = True
    np.fill_diagonal(same_content, False)
    for group in exact_groups:
        findings.append(_duplicate(group, labels, parts, classnames, names))

    near, cutoff, median = near_duplicate_pairs(distance, same_content)
    thresholds.update(near_duplicate_distance=_finite(cutoff), median_nearest_distance=_finite(median))
    close = same_content.copy()
    for i, j in near:
        close[i, j] = close[j, i] = True
        findings.append(_near_duplicate(i, j, distance[i, j], median, labels, parts, classnames, names))

    outlying, fence = outliers(distance, close)
    thresholds["outlier_distance"] = _finite(fence)
    for i, nearest in outlying:
        findings.append(Finding("outlier", (i,), float(nearest / fence) if fence > 0 else math.inf,
                                f"{names[i]} ('{classnames[labels[i]]}') is unlike every other photo: its nearest "
                                f"photo is {nearest:.3f} away (cosine distance), where most are "
                                f"{median:.3f} and the outlier limit is {fence:.3f}. A wrong picture, another "
                                f"camera or a blank frame?", details={"distance": float(nearest)}))
    order = {kind: i for i, kind in enumerate(KINDS)}
    findings.sort(key=lambda f: (order[f.kind], -f.score if math.isfinite(f.score) else -math.inf))
    return {"format": FORMAT, "findings": findings, "thresholds": thresholds, "photos": n, "k": k,
            "temperature": temperature, "separation": separation}


def separation_of(x: np.ndarray, labels: np.ndarray, n_classes: int) -> dict:
    """How well the frozen features separate the labelled classes: the check before tuning's leave-one-out
    nearest-class-mean accuracy, its chance level and level (feasibility.level_of). Where it is near chance,
    a label that looks wrong may only be a hard photo: the review says so."""
    counts = np.bincount(labels, minlength=n_classes)
    if counts[counts > 0].min() < 2:
        return {"accuracy": None, "chance": None, "level": None}
    correct = int(np.sum(leave_one_out_predictions(x, labels, n_classes) == labels))
    chance = float(counts.max() / len(labels))
    low, _ = wilson_interval(correct, len(labels))
    return {"accuracy": correct / len(labels), "chance": chance, "level": level_of(low, chance)}


def out_of_sample_probabilities(x: np.ndarray, similarity: np.ndarray, labels: np.ndarray, n_classes: int,
                                k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(N, C) mean of the kNN vote and the leave-one-out class-mean probability, then each apart, and
    the class means' temperature."""
    votes, _ = knn_vote(similarity, labels, n_classes, k)
    means, temperature = class_mean_probabilities(x, labels, n_classes)
    return (votes + means) / 2, votes, means, temperature


def suspects(x: np.ndarray, similarity: np.ndarray, labels: np.ndarray, classnames: Sequence[str], k: int,
             names: Sequence[str]) -> tuple[list[Finding], float]:
    """The photos whose label looks wrong (module docstring), and the class means' temperature."""
    n_classes = len(classnames)
    probs, votes, means, temperature = out_of_sample_probabilities(x, similarity, labels, n_classes, k)
    rows = np.arange(len(labels))
    own = probs[rows, labels]
    others = probs.copy()
    others[rows, labels] = -1.0
    best = others.argmax(axis=1)
    found = []
    for i in np.flatnonzero((own <= SUSPECT_OWN_MAX) & (others[rows, best] >= SUSPECT_OTHER_MIN)):
        other, mine = classnames[best[i]], classnames[labels[i]]
        count = int(round(votes[i, best[i]] * k))
        ratio = float(probs[i, best[i]] / max(own[i], 1e-3))
        found.append(Finding(
            "suspect_label", (int(i),), ratio,
            f"{names[i]} is labelled '{mine}' but looks like '{other}': {count} of its {k} nearest photos are "
            f"'{other}', and the class means make '{other}' {100 * means[i, best[i]]:.0f}% likely against "
            f"{100 * means[i, labels[i]]:.0f}% for '{mine}'.",
            suggested=other,
            details={"own_probability": float(own[i]), "other_probability": float(probs[i, best[i]]),
                     "neighbours_other": count, "neighbours": k,
                     "class_mean_other": float(means[i, best[i]]), "class_mean_own": float(means[i, labels[i]])}))
    return found, temperature


def suspect_scores(features, labels, n_classes: int) -> np.ndarray:
    """(N,) how much more likely each photo's most likely other class is than its own (out of sample):
    the ranking of suspects, for every photo, flagged or not."""
    x = _normalised(features)
    labels = np.asarray(labels, dtype=np.int64)
    probs, *_ = out_of_sample_probabilities(x, x @ x.T, labels, n_classes, neighbour_count(labels, n_classes))
    rows = np.arange(len(labels))
    own = probs[rows, labels].copy()
    probs[rows, labels] = -1.0
    return probs.max(axis=1) / np.clip(own, 1e-3, None)


def near_duplicate_pairs(distance: np.ndarray, same_content: np.ndarray | None = None
                         ) -> tuple[list[tuple[int, int]], float, float]:
    """Pairs (i < j) closer than NEAR_DUPLICATE_FACTOR x the median nearest-neighbour distance, exact
    duplicates (`same_content`) left out; also that cutoff and the median."""
    n = len(distance)
    if n < 2:
        return [], math.nan, math.nan
    nearest = nearest_distances(distance, same_content)
    nearest = nearest[np.isfinite(nearest)]
    median = float(np.median(nearest)) if len(nearest) else math.nan
    if not median > 0:
        return [], math.nan, median
    cutoff = NEAR_DUPLICATE_FACTOR * median
    upper = np.triu(distance < cutoff, k=1)
    if same_content is not None:
        upper &= ~same_content
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(upper))], cutoff, median


def outliers(distance: np.ndarray, close: np.ndarray | None = None) -> tuple[list[tuple[int, float]], float]:
    """Photos whose nearest other photo (their duplicates, `close`, left out) is further than
    Q3 + OUTLIER_IQR x IQR of those distances' logarithms, with that distance; also the limit."""
    if len(distance) < MIN_PHOTOS_FOR_OUTLIERS:
        return [], math.nan
    nearest = nearest_distances(distance, close)
    finite = nearest[np.isfinite(nearest)]
    if len(finite) < MIN_PHOTOS_FOR_OUTLIERS:
        return [], math.nan
    # On the log of the distances: they are skewed to the right (a few photos sit in sparse corners), and
    # on the distances themselves the rule flags 4-11 % of the demo tasks' ordinary photos (1-6 % on logs).
    q1, q3 = np.percentile(np.log(np.clip(finite, 1e-12, None)), [25, 75])
    fence = float(np.exp(q3 + OUTLIER_IQR * (q3 - q1)))
    return [(int(i), float(nearest[i])) for i in np.flatnonzero(np.isfinite(nearest) & (nearest > fence))], fence


def _exact_groups(hashes: Sequence[str]) -> list[list[int]]:
    by_hash: dict[str, list[int]] = {}
    for i, digest in enumerate(hashes):
        if digest:
            by_hash.setdefault(str(digest), []).append(i)
    return [group for group in by_hash.values() if len(group) > 1]


def scope_of(group: Sequence[int], labels: np.ndarray, parts: Sequence[str]) -> str:
    """Where a duplicate group lies: a train/test leak first, then two labels, else within a class."""
    group_parts = {parts[i] for i in group}
    if TRAIN in group_parts and group_parts & HELD_OUT:
        return "train_test_leak"
    return "across_classes" if len({int(labels[i]) for i in group}) > 1 else "within_class"


def _where(scope: str, group, labels, parts, classnames) -> str:
    label_names = sorted({classnames[labels[i]] for i in group})
    if scope == "train_test_leak":
        text = ("one trains and one is a test photo: the test photo flatters the accuracy. Remove the test "
                "copy")
        if len(label_names) > 1:
            text += f"; they are also labelled differently ({', '.join(repr(c) for c in label_names)})"
        return text + "."
    if scope == "across_classes":
        return (f"the same picture carries two labels ({', '.join(repr(c) for c in label_names)}): keep the "
                f"right one and remove the other.")
    text = f"both are '{label_names[0]}': one adds nothing"
    if not any(parts[i] for i in group):
        text += ", and if one trains while the other is drawn for testing, the test flatters the accuracy"
    return text + ". Remove one."


def _duplicate(group, labels, parts, classnames, names) -> Finding:
    scope = scope_of(group, labels, parts)
    listed = ", ".join(names[i] for i in group)
    return Finding("duplicate", tuple(group), float(len(group)),
                   f"{listed} are the same file (same content): {_where(scope, group, labels, parts, classnames)}",
                   scope=scope)


def _near_duplicate(i, j, d, median, labels, parts, classnames, names) -> Finding:
    scope = scope_of((i, j), labels, parts)
    return Finding("near_duplicate", (i, j), float(median / max(d, 1e-9)),
                   f"{names[i]} and {names[j]} are nearly the same picture (cosine distance {d:.4f}, where "
                   f"photos' nearest neighbours are typically {median:.3f} away): "
                   f"{_where(scope, (i, j), labels, parts, classnames)}",
                   scope=scope, details={"distance": float(d)})


# ---------------------------------------------------------------- features from a backbone
def frozen_features(backbone, items: list, *, cache_dir: str | Path | None = None, batch_size: int = 100,
                    cancel=None, on_batch: Callable[[int, int], None] | None = None):
    """Frozen image features (N, D), L2-normalised, of labelled photos `items` (LabeledImage), read
    through the feature cache as the check before tuning reads them; returns the features (numpy), the
    indices of the photos that loaded and the skipped ones."""
    import torch

    from .evaluation import encode_images
    from .feature_cache import FrozenFeatureCache
    from .prompts import PromptedCLIP
    from .zeroshot import default_cache_dir

    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    # Only the image tower is used: the text side is a placeholder that no feature reads.
    model = PromptedCLIP(backbone, ["photo"], text_prompt=False, visual_prompt=False,
                         fixed_text_features=torch.zeros(1, backbone.embed_dim))
    features, _, indices, skipped = encode_images(model, items, prompted=False, batch_size=batch_size,
                                                  cancel=cancel, on_batch=on_batch,
                                                  cache=FrozenFeatureCache(cache_dir, backbone))
    return features.float().cpu().numpy(), list(indices), skipped


def review_photos(backbone, classnames: Sequence[str], items: list, *, parts: Sequence[str] | None = None,
                  hashes: Sequence[str] | None = None, names: Sequence[str] | None = None,
                  cache_dir: str | Path | None = None, cancel=None,
                  on_batch: Callable[[int, int], None] | None = None) -> dict:
    """review() of labelled photos `items` (LabeledImage) with a loaded backbone. `hashes` default to the
    SHA-256 of each file; `names` to the file names. Photos that cannot be read are left out and listed
    under "skipped"; the findings' indices and "paths" follow the photos that were read."""
    from ..data.images import sha256_of

    started = time.perf_counter()
    if len(items) < 2:
        raise DataError("The review needs at least two labelled photos.")
    features, kept, skipped = frozen_features(backbone, items, cache_dir=cache_dir, cancel=cancel,
                                              on_batch=on_batch)
    if hashes is None:
        hashes = [sha256_of(item.path) for item in items]
    names = list(names) if names is not None else [Path(item.path).name for item in items]
    parts = list(parts) if parts is not None else [""] * len(items)
    result = review(features, [items[i].label for i in kept], classnames, parts=[parts[i] for i in kept],
                    hashes=[hashes[i] for i in kept], names=[names[i] for i in kept])
    result.update(paths=[str(items[i].path) for i in kept], names=[names[i] for i in kept],
                  hashes=[hashes[i] for i in kept], labels=[int(items[i].label) for i in kept],
                  parts=[parts[i] for i in kept], classnames=list(classnames), backbone=backbone.spec,
                  skipped=[{"path": s.path, "reason": s.reason} for s in skipped],
                  seconds=time.perf_counter() - started)
    return result


def to_json(result: dict) -> dict:
    """A review result made JSON-ready: each finding a dict with its photos' names and paths."""
    data = dict(result)
    paths = result.get("paths")
    findings = []
    for finding in result["findings"]:
        item = finding.to_dict(result.get("names"))
        if paths is not None:
            item["paths"] = [paths[i] for i in finding.photos]
        findings.append(item)
    data["findings"] = findings
    return data


HEADINGS = {"suspect_label": "Labels that look wrong", "duplicate": "Exact duplicates",
            "near_duplicate": "Near duplicates", "outlier": "Outliers"}


def describe(result: dict) -> list[str]:
    """The findings in plain English, grouped by kind (what `dapt review` prints)."""
    findings = result["findings"]
    lines = [f"Reviewed {result['photos']} photos: " + (
        ", ".join(f"{sum(f.kind == kind for f in findings)} {HEADINGS[kind].lower()}" for kind in KINDS)
        if findings else "nothing to look at.")]
    separation = result.get("separation") or {}
    if separation.get("level") == "near_chance":
        lines.append(f"Note: the frozen features tell these classes apart only {100 * separation['accuracy']:.0f}% "
                     f"of the time (chance {100 * separation['chance']:.0f}%), so few wrong labels can be seen, and a "
                     f"photo that looks like another class may only be a hard one.")
    for kind in KINDS:
        mine = [f for f in findings if f.kind == kind]
        if mine:
            lines.append(f"{HEADINGS[kind]} ({len(mine)}):")
            lines.extend(f"  - {f.reason}" for f in mine)
    return lines
