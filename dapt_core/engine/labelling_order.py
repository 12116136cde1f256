"""What to label next: a folder of unlabelled photos (a shift's worth) ranked by how much labelling each
would teach, read from the frozen image features (test view, no prompts, L2-normalised) through the same
on-disk cache as the check before tuning and the label review.

Two rankings, after what the active-learning literature measured at small budgets (TypiClust, Hacohen et
al. 2022; ProbCover, Yehuda et al. 2022): with few labels, typical and diverse photos teach most, and
uncertainty pays only once a model exists and labels are no longer few.

- "typical" (no model needed): the unlabelled photos, and the labelled ones if any, are clustered by a
  seeded k-means (k-means++ start, a few restarts, cosine geometry) into as many clusters as the labelled
  photos plus the photos asked for. A cluster that holds a labelled photo is covered. Then, largest
  uncovered cluster first, each cluster gives its most typical photo: typicality = 1 / the mean Euclidean
  distance to its K nearest photos in the cluster (K = min(20, cluster size - 1)). Once every cluster has
  given one, the next photos come from the clusters with most photos per pick so far, again the most
  typical left, so the ranking can go on as long as there are photos.
- "uncertain" (a tuned prompt file, or any classifier's class probabilities): the photos are clustered into
  as many clusters as asked for, and each cluster gives its most doubtful photo: one the model calls
  unknown (its unknown score above the file's limit), else the one with the smallest margin between the
  two most likely classes. Clustering keeps ten near-identical doubtful photos from taking ten places.
  Unknown photos come first (highest score first), then by margin, smallest first.

Each pick carries a reason in plain English ("typical of a group of 23 photos nobody has labelled yet",
"the model hesitates between 'scratch' (41%) and 'dent' (38%)").

The arithmetic works on plain arrays (`rank_typical`, `rank_uncertain`), so it is tested on synthetic
features; `rank_photos` adds the feature extraction (and, with a prompt file's Classifier, its answers).
How much it saves is measured on the demo task by benchmarks/labelling_order.py (README "What to label
next"). There, tuned with the recipe's epochs, the typical ranking taught no more than a random choice of as many
photos: the demo model's frozen features group the photos by what they look like overall, not by their defect,
so its groups are not the classes and its picks come out uneven across them (one class got 13-18 of 50 picks).
The typical photos of each class, taken evenly (which needs the labels first), did best of all. From a pool of
mostly good parts, though, where a random choice seldom meets a defect, the ranking's one-photo-per-group picks
found more of the rare defects and more of their kinds, though one or two photos of each kind were too few to tune
a usable line model from. So the ranking says under it what it was measured to do (MEASURED_TYPICAL), and the
app shows the classes' balance beside it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError

FORMAT = 1
MODES = ("typical", "uncertain")
KINDS = ("typical", "typical_more", "unknown", "uncertain")
MAX_NEIGHBOURS = 20  # TypiClust's K for typicality
KMEANS_RESTARTS = 3
KMEANS_ITERATIONS = 60
DEFAULT_COUNT = 20
HESITATION_MARGIN = 0.5  # below it, the reason says the model hesitates between two classes
# What the typical ranking was measured to do (benchmarks/labelling_order.py, README "What to label next"),
# printed under it so that nobody takes it for more.
MEASURED_TYPICAL = ("Measured on the demo task with the demo model: from a balanced set of photos, this ranking's "
                    "picks taught DAPT no more than as many photos picked at random (its groups were not the classes, "
                    "and its picks came out uneven across them). From a shift of mostly good parts (88-94% good) it "
                    "found 1.2 to 2.3 times as many defect photos as random among the first 20 to 50 picks, and more "
                    "kinds of defect (at 78% good, the gain was small and uneven); yet one or two photos of each kind "
                    "were too few to tune a usable line model. Collect more photos of each defect kind, and keep the "
                    "classes even as you label.")


@dataclass
class Pick:
    """One photo worth labelling: `index` into the ranked photos, `kind` (KINDS), `reason` in plain
    English, `score` (typicality, margin or unknown score, per kind), the photo's `cluster` and that
    cluster's `group` size (its unlabelled photos)."""

    index: int
    kind: str
    reason: str
    score: float
    cluster: int
    group: int
    details: dict = field(default_factory=dict)

    def to_dict(self, names: Sequence[str] | None = None, paths: Sequence[str] | None = None) -> dict:
        data = {"index": self.index, "kind": self.kind, "reason": self.reason,
                "score": float(self.score) if math.isfinite(self.score) else None,
                "cluster": self.cluster, "group": self.group, "details": self.details}
        if names is not None:
            data["name"] = str(names[self.index])
        if paths is not None:
            data["path"] = str(paths[self.index])
        return data


# ------------------------------------------------------------------------------ the arithmetic
def _normalised(features) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    if x.ndim != 2:
        raise DataError("Features must be a 2-D array (photos x dimensions).")
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def kmeans(x: torch.Tensor, k: int, *, seed: int = 0, restarts: int = KMEANS_RESTARTS,
           iterations: int = KMEANS_ITERATIONS) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded k-means of the rows of `x` (N, D) into `k` clusters (k-means++ start, Lloyd's iterations,
    the best of `restarts` by inertia). Returns (N,) cluster indices and (k, D) centres; no cluster is
    left empty (an emptied one takes the point furthest from its centre)."""
    n = len(x)
    k = max(1, min(int(k), n))
    generator = torch.Generator().manual_seed(int(seed))
    x = x.double()
    squared = (x * x).sum(1)
    best = None
    for _ in range(max(1, restarts)):
        centres = _plus_plus(x, squared, k, generator)
        assign = None
        for _ in range(iterations):
            distances = (squared[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)[None, :]).clamp_min(0)
            new = distances.argmin(1)
            if assign is not None and torch.equal(new, assign):
                break
            assign = new
            centres = _centres(x, assign, k, distances)
        distances = (squared[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)[None, :]).clamp_min(0)
        inertia = float(distances.gather(1, assign[:, None]).sum())
        if best is None or inertia < best[0] - 1e-12:
            best = (inertia, assign.clone(), centres.clone())
    return best[1], best[2].float()


def _plus_plus(x: torch.Tensor, squared: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    n = len(x)
    chosen = [int(torch.randint(n, (1,), generator=generator))]
    nearest = (squared - 2 * x @ x[chosen[0]] + squared[chosen[0]]).clamp_min(0)
    for _ in range(1, k):
        total = float(nearest.sum())
        if total <= 0:  # every point sits on a centre: take any not yet chosen
            rest = [i for i in range(n) if i not in set(chosen)]
            chosen.append(rest[int(torch.randint(len(rest), (1,), generator=generator))])
        else:
            chosen.append(int(torch.multinomial(nearest / total, 1, generator=generator)))
        nearest = torch.minimum(nearest, (squared - 2 * x @ x[chosen[-1]] + squared[chosen[-1]]).clamp_min(0))
    return x[chosen].clone()


def _centres(x: torch.Tensor, assign: torch.Tensor, k: int, distances: torch.Tensor) -> torch.Tensor:
    sums = torch.zeros(k, x.shape[1], dtype=x.dtype).index_add_(0, assign, x)
    counts = torch.bincount(assign, minlength=k)
    own = distances.gather(1, assign[:, None]).squeeze(1).clone()
    for c in torch.nonzero(counts == 0).flatten().tolist():
        far = int(own.argmax())
        counts[assign[far]] -= 1
        sums[assign[far]] -= x[far]
        assign[far] = c
        sums[c] = x[far]
        counts[c] = 1
        own[far] = -1.0
    return sums / counts.clamp_min(1)[:, None].to(x.dtype)


def typicality(x: torch.Tensor, neighbours: int = MAX_NEIGHBOURS) -> torch.Tensor:
    """(N,) 1 / mean Euclidean distance of each row to its K nearest other rows, K = min(neighbours,
    N - 1); a lone row gets 1 / 1e-6 (nothing to be untypical of)."""
    n = len(x)
    if n < 2:
        return torch.full((n,), 1e6)
    k = min(neighbours, n - 1)
    distance = torch.cdist(x.double(), x.double())
    distance.fill_diagonal_(math.inf)
    nearest = distance.topk(k, dim=1, largest=False).values
    return (1.0 / nearest.mean(1).clamp_min(1e-6)).float()


def rank_typical(features, *, labelled=None, count: int = DEFAULT_COUNT, seed: int = 0,
                 names: Sequence[str] | None = None) -> list[Pick]:
    """The unlabelled photos (`features`, N x D) ranked TypiClust-style (module docstring): the first
    `count` picks each come from a cluster no labelled photo (`labelled`, M x D) falls in, largest first;
    the rest of the photos follow. Returns every photo once, as Picks."""
    x = _normalised(features)
    n = len(x)
    if n == 0:
        return []
    lab = _normalised(labelled) if labelled is not None and len(labelled) else torch.empty(0, x.shape[1])
    count = max(1, min(int(count), n))
    everything = torch.cat([x, lab])
    k = min(len(everything), len(lab) + count)
    assign, _ = kmeans(everything, k, seed=seed)
    mine, theirs = assign[:n], assign[n:]
    size = torch.bincount(mine, minlength=k)
    labelled_in = torch.bincount(theirs, minlength=k) if len(lab) else torch.zeros(k, dtype=torch.long)
    typical = torch.zeros(n)
    for c in range(k):
        members = torch.nonzero(mine == c).flatten()
        if len(members):
            typical[members] = typicality(x[members])
    picked_in = torch.zeros(k, dtype=torch.long)
    left = torch.ones(n, dtype=torch.bool)
    picks: list[Pick] = []
    while len(picks) < n:
        uncovered = (labelled_in == 0) & (picked_in == 0) & (size > 0)
        if bool(uncovered.any()):
            cluster = int(torch.where(uncovered, size, torch.full_like(size, -1)).argmax())
            fresh = True
        else:
            # every cluster has a label or a pick: the most photos per label-or-pick next
            remaining = torch.bincount(mine[left], minlength=k)
            share = torch.where(remaining > 0, size.double() / (labelled_in + picked_in).clamp_min(1).double(),
                                torch.full((k,), -1.0, dtype=torch.float64))
            cluster = int(share.argmax())
            fresh = False
        members = torch.nonzero((mine == cluster) & left).flatten()
        best = int(members[typical[members].argmax()])
        group, known = int(size[cluster]), int(labelled_in[cluster] + picked_in[cluster])
        if fresh:
            reason = (f"typical of a group of {group} photos nobody has labelled yet" if group > 1 else
                      "unlike every other photo here, and nobody has labelled anything like it yet")
        else:
            reason = (f"another typical photo of a group of {group} photos, {known} of them labelled or "
                      f"picked already")
        picks.append(Pick(best, "typical" if fresh else "typical_more", reason, float(typical[best]), cluster,
                          group, {"labelled_in_group": int(labelled_in[cluster]),
                                  "picked_in_group": int(picked_in[cluster])}))
        picked_in[cluster] += 1
        left[best] = False
    return picks


def margins(probabilities) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N,) margin between the two most likely classes, and (N,) indices of the first and second."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.shape[1] < 2:
        return np.ones(len(p)), np.zeros(len(p), dtype=np.int64), np.zeros(len(p), dtype=np.int64)
    order = np.argsort(-p, axis=1, kind="stable")
    rows = np.arange(len(p))
    return p[rows, order[:, 0]] - p[rows, order[:, 1]], order[:, 0], order[:, 1]


def rank_uncertain(features, probabilities, classnames: Sequence[str], *, novelty=None,
                   unknown_threshold: float | None = None, count: int = DEFAULT_COUNT, seed: int = 0) -> list[Pick]:
    """The unlabelled photos ranked by doubt (module docstring): `probabilities` (N, C) of `classnames`
    from a model, `novelty` (N,) its unknown score and `unknown_threshold` the score above which a photo is
    unknown. The first `count` picks come from `count` clusters of the frozen `features`, one each; the
    rest follow by the same order. Returns every photo once."""
    x = _normalised(features)
    n = len(x)
    p = np.asarray(probabilities, dtype=np.float64)
    if len(p) != n:
        raise DataError(f"{len(p)} rows of probabilities for {n} photos")
    if n == 0:
        return []
    margin, first, second = margins(p)
    score = np.asarray(novelty, dtype=np.float64) if novelty is not None else np.full(n, -np.inf)
    unknown = score > unknown_threshold if unknown_threshold is not None and novelty is not None \
        else np.zeros(n, dtype=bool)
    # one order for all: unknown photos (highest score first), then the smallest margin first
    key = np.where(unknown, -1.0 - np.nan_to_num(score, neginf=0.0), margin)
    count = max(1, min(int(count), n))
    assign, _ = kmeans(x, count, seed=seed)
    assign = assign.numpy()
    size = np.bincount(assign, minlength=count)
    lead = []
    for c in range(count):
        members = np.flatnonzero(assign == c)
        if len(members):
            lead.append(int(members[np.argmin(key[members])]))
    lead.sort(key=lambda i: key[i])
    led = set(lead)
    rest = [int(i) for i in np.argsort(key, kind="stable") if int(i) not in led]
    picks = []
    for i in lead + rest:
        if unknown[i]:
            kind = "unknown"
            reason = (f"unlike the photos the model was tuned on (unknown score {score[i]:.3f}, above its limit "
                      f"{unknown_threshold:.3f}); it would answer '{classnames[first[i]]}' "
                      f"({100 * p[i, first[i]]:.0f}%)")
        else:
            kind = "uncertain"
            both = (f"'{classnames[first[i]]}' ({100 * p[i, first[i]]:.0f}%) and '{classnames[second[i]]}' "
                    f"({100 * p[i, second[i]]:.0f}%)")
            reason = (f"the model hesitates between {both}" if margin[i] < HESITATION_MARGIN else
                      f"the model's least sure answer in a group of {size[assign[i]]} photos: {both}")
        picks.append(Pick(i, kind, reason, float(score[i] if unknown[i] else margin[i]), int(assign[i]),
                          int(size[assign[i]]), {"predicted": classnames[first[i]], "runner_up": classnames[second[i]],
                                                 "probability": float(p[i, first[i]]), "margin": float(margin[i]),
                                                 "unknown_score": float(score[i]) if novelty is not None else None}))
    return picks


def class_mean_probabilities(features, labelled, labels, n_classes: int,
                             temperature: float = 0.02) -> np.ndarray:
    """(N, C) softmax over the cosine similarity of each photo to the labelled photos' class means (a class
    with no labelled photo gets none): a model of sorts before any tuning, for the "uncertain" ranking."""
    x = _normalised(features).double().numpy()
    lab = _normalised(labelled).double().numpy()
    labels = np.asarray(labels, dtype=np.int64)
    sums = np.zeros((n_classes, x.shape[1]))
    np.add.at(sums, labels, lab)
    norms = np.linalg.norm(sums, axis=1)
    similarity = x @ (sums / np.clip(norms, 1e-12, None)[:, None]).T
    similarity[:, norms <= 1e-12] = -1e9
    logits = similarity / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------- photos on disk
def rank_photos(backbone, paths: Sequence[str | Path], *, labelled: list | None = None, classifier=None,
                mode: str | None = None, count: int = DEFAULT_COUNT, seed: int = 0,
                names: Sequence[str] | None = None, cache_dir: str | Path | None = None, cancel=None,
                on_batch: Callable[[int, int], None] | None = None) -> dict:
    """Rank unlabelled photo files `paths` with a loaded `backbone` (the classifier's, when one is given).

    `labelled`: LabeledImage of the photos labelled already (their groups count as covered, and a photo
    with the same content as one of them is left out); `classifier`: a prompt file's Classifier, for the
    "uncertain" ranking; `mode`: "typical" or "uncertain" (default: uncertain with a classifier, else
    typical). Returns {"picks": [Pick, ...] (the first `count`), "mode", "paths", "names", "photos",
    "skipped", "already_labelled", "seconds", ...}."""
    from ..data.images import sha256_of
    from ..data.records import LabeledImage
    from .label_review import frozen_features

    started = time.perf_counter()
    mode = mode or ("uncertain" if classifier is not None else "typical")
    if mode not in MODES:
        raise DataError(f"Unknown ranking {mode!r}: use one of {', '.join(MODES)}.")
    if mode == "uncertain" and classifier is None:
        raise DataError("Ranking by uncertainty needs a tuned prompt file (--from).")
    if count < 1:
        raise DataError("The number of photos to rank must be at least 1.")
    paths = [Path(p) for p in paths]
    names = list(names) if names is not None else [p.name for p in paths]
    labelled = list(labelled or [])
    known = set()
    for item in labelled:
        try:
            known.add(sha256_of(item.path))
        except OSError:
            pass
    keep, already = [], []
    for i, path in enumerate(paths):
        try:
            digest = sha256_of(path)
        except OSError:
            digest = None
        (already if digest is not None and digest in known else keep).append(i)
    if not keep:
        raise DataError("There is no unlabelled photo to rank" + (" (every one is labelled already)." if already
                                                                   else "."))
    items = [LabeledImage(paths[i], 0) for i in keep]
    features, kept, skipped = frozen_features(backbone, items, cache_dir=cache_dir, cancel=cancel, on_batch=on_batch)
    rows = [keep[j] for j in kept]
    labelled_features = None
    if labelled and mode == "typical":
        labelled_features, _, _ = frozen_features(backbone, labelled, cache_dir=cache_dir, cancel=cancel)
    if not rows:
        raise DataError("None of the photos could be read.")
    extra: dict = {}
    if mode == "typical":
        picks = rank_typical(features, labelled=labelled_features, count=count, seed=seed)
    else:
        from ..deploy.calibration import softmax

        logits, novelty = classifier.outputs([str(paths[i]) for i in rows])
        temperature = classifier.calibration.temperature if classifier.calibration is not None else 1.0
        probabilities = softmax(logits.numpy().astype(np.float64) / temperature)
        threshold = classifier.calibration.unknown_threshold() if classifier.calibration is not None else None
        picks = rank_uncertain(features, probabilities, classifier.classnames,
                               novelty=None if novelty is None else novelty.numpy(), unknown_threshold=threshold,
                               count=count, seed=seed)
        extra = {"classnames": list(classifier.classnames), "unknown_threshold": threshold}
    picks = picks[:count]
    return {"format": FORMAT, "mode": mode, "picks": picks, "paths": [str(paths[i]) for i in rows],
            "names": [names[i] for i in rows], "photos": len(rows), "labelled": len(labelled),
            "already_labelled": [str(paths[i]) for i in already],
            "skipped": [{"path": s.path, "reason": s.reason} for s in skipped], "backbone": backbone.spec,
            "seconds": time.perf_counter() - started, **extra}


def ranking_model(prompt_file: str | Path | None, mode: str | None,
                  backbone_for: Callable[[str | None], object]) -> tuple[object | None, object]:
    """(classifier or None, backbone): which model ranks, the one choice `dapt next` and the app's unlabelled
    pool share. A tuned prompt file's Classifier, on the backbone it names (`backbone_for(its spec)`), unless
    the typical ranking is asked for (`mode` "typical"); otherwise the frozen `backbone_for(None)`, the
    caller's default backbone."""
    if prompt_file is None or mode == "typical":
        return None, backbone_for(None)
    from . import prompt_file as prompt_files
    from .inference import Classifier

    if Path(prompt_file).suffix.lower() == ".onnx":
        raise DataError("Ranking reads a prompt file (.safetensors), not an ONNX export.")
    file = prompt_files.load(prompt_file)
    classifier = Classifier.from_prompt_file(file, backbone_for(file.backbone_spec))
    return classifier, classifier.model.backbone


def to_json(result: dict) -> dict:
    """A ranking made JSON-ready: each pick a dict with its photo's name and path."""
    data = dict(result)
    data["picks"] = [pick.to_dict(result.get("names"), result.get("paths")) for pick in result["picks"]]
    return data


def describe(result: dict) -> list[str]:
    """The ranking in plain English (what `dapt next` prints): a line per pick, best first."""
    how = {"typical": "typical photos of groups nobody has labelled yet, largest group first",
           "uncertain": "photos the model calls unknown or hesitates over, one per group"}[result["mode"]]
    lines = [f"{len(result['picks'])} of {result['photos']} photos to label next ({how}):"]
    width = len(str(len(result["picks"])))
    for rank, pick in enumerate(result["picks"], start=1):
        lines.append(f"{rank:>{width}}. {result['names'][pick.index]}: {pick.reason}")
    if result.get("already_labelled"):
        lines.append(f"{len(result['already_labelled'])} photo(s) left out: the same file is labelled already.")
    if result["mode"] == "typical":
        lines.append(MEASURED_TYPICAL)
    return lines
