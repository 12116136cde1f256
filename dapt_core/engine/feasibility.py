"""Can the frozen model tell these classes apart at all? A check to run before tuning.

Prompt tuning learns a few prompt vectors around a frozen CLIP; it starts from what the frozen image tower
already sees. Where the frozen features of two classes lie on top of each other, every method tends to stay
near chance, and without this check a user learns that only after the training. The check answers in
seconds, from the training photos alone:

- the frozen image features (test view, no prompts) of the training photos, read through the on-disk
  feature cache (feature_cache.py), so checking the same photos again encodes nothing;
- a leave-one-out nearest-class-mean probe on the L2-normalised features: each photo goes to the class
  whose mean feature is most cosine-similar, with the photo itself left out of its own class's mean. It has
  no settings to fit, and it is cross-validated, so it cannot flatter itself by remembering the photos;
- its accuracy with a 95 % Wilson interval, against the chance level: the share of the largest class (what
  answering that class every time scores), which is 1 / C when the classes have equally many photos;
- a level, from where the interval sits against chance (LEVEL RULE):
    "near_chance"  the interval's lower end is at or below chance: these photos do not show the probe
                   doing better than guessing;
    "clear"        the lower end is at least halfway from chance to 100 %;
    "partial"      in between: better than chance, far from clean;
- the pairs of classes it mixes up most, per-class accuracy, and the zero-shot accuracy on the same photos;
- with a good class (a part without defect), the same probe's answers read as pass/fail: defective photos
  called good (escapes) and good photos called defective (overkill), their balanced accuracy (chance 50 %)
  and the same level rule for it;
- advice codes with their parameters (ADVICE holds the English; the app translates them).

The counting (probe, summarise) works on plain arrays, so it is tested on synthetic features; check_feasibility
adds the feature extraction around it.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..deploy.pass_fail import good_index, rate, wilson_interval
from ..errors import DataError
from .tiling import AUTO_FACTOR

FORMAT = 1  # bump when the numbers change meaning, so that results kept by the app are recomputed
METHOD = "leave-one-out nearest class mean (cosine) on the frozen image features of the training photos"
LEVELS = ("clear", "partial", "near_chance")
MIN_PHOTOS_PER_CLASS = 2  # leaving one out must leave a class mean to compare with
MAX_PAIRS = 3
WIDE_INTERVAL = 0.3  # wider than this (in accuracy), the verdict rests on too few photos: say "label more"
# A pair mixed up in this share of its photos, and holding half of all mix-ups, is worth a look at its labels.
MIXED_UP_SHARE = 0.25

# The English of every advice code; the app's translations are in ui/locales/*.json under "feas.advice.<code>".
ADVICE = {
    "start": "The frozen features already separate the classes well: tuning starts from a good place.",
    "pass_fail_only": "Good and defective parts are told apart ({pass_fail_accuracy}) even where the defect "
                      "types are mixed up: if the line only needs pass/fail, that is within reach.",
    "not_tuning_yet": "Change the photos or the backbone before tuning: when the frozen model cannot see the "
                      "difference, every tuning method tends to stay near chance.",
    "closer_photos": "Photograph the defect closer, larger in the frame or sharper: this model sees each photo "
                     "at {size}×{size} pixels, where a small defect can vanish.",
    "try_tiles": "Turn tiles on (Tiles on the Tune page, or dapt tune --tiles auto): your photos are up to "
                 "{width}×{height} pixels and are shrunk to {size}×{size}; tiles also look at them at nearly "
                 "their own size. This check looks at the whole photo only.",
    "other_backbone": "Try another backbone: a larger CLIP (for example ViT-B-16:openai) or one trained on "
                      "photos like yours.",
    "more_shots": "Label more photos per class (the smallest class, '{name}', has {count}): with so few the "
                  "95% interval is {width} points wide.",
    "check_labels": "Check the labels of '{first}' and '{second}': the probe mixes them up {count} times in "
                    "{photos} photos. If they really look alike, show the difference more clearly in the photos, "
                    "or merge them.",
}


# ------------------------------------------------------------------------------- the probe
def leave_one_out_predictions(features: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(N,) predicted class of each photo by the nearest class mean (cosine), its own photo left out of
    its class's mean. `features` (N, D) are L2-normalised here; every class needs two or more photos."""
    x = np.asarray(features, dtype=np.float64)
    x = x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
    labels = np.asarray(labels, dtype=np.int64)
    sums = np.zeros((n_classes, x.shape[1]))
    np.add.at(sums, labels, x)
    dots = x @ sums.T  # (N, C): photo against the sum of each class's features
    norms = np.linalg.norm(sums, axis=1)
    # The cosine to a mean is the cosine to the sum, so the counts cancel. For a photo's own class the sum
    # loses the photo itself: dot - |x|^2 = dot - 1, and |S - x|^2 = |S|^2 - 2 dot + 1.
    rows = np.arange(len(x))
    own_dot = dots[rows, labels]
    own_norm = np.sqrt(np.clip(norms[labels] ** 2 - 2 * own_dot + 1, 0.0, None))
    similarity = dots / np.clip(norms, 1e-12, None)
    similarity[:, norms <= 1e-12] = -np.inf  # a class without photos is never the answer
    similarity[rows, labels] = np.where(own_norm > 1e-9, (own_dot - 1) / np.clip(own_norm, 1e-12, None), -np.inf)
    return similarity.argmax(axis=1)


def level_of(low: float, chance: float) -> str:
    """The verdict from the lower end of the accuracy's 95 % interval (see LEVEL RULE in the docstring)."""
    if not low > chance:
        return "near_chance"
    return "clear" if low >= chance + (1 - chance) / 2 else "partial"


def _scored(correct: int, n: int, chance: float) -> dict:
    low, high = wilson_interval(correct, n)
    return {"accuracy": correct / n, "correct": int(correct), "photos": int(n), "interval": [low, high],
            "chance": chance, "level": level_of(low, chance)}


def summarise(predictions: np.ndarray, labels: np.ndarray, classnames: list[str], *,
              good_class: str | None = None, zero_shot_predictions: np.ndarray | None = None,
              image_size: int | None = None, largest_photo: tuple[int, int] | None = None) -> dict:
    """Everything the check reports, JSON-ready, from the probe's answers `predictions` and the true
    `labels` (class indices, (N,) each); `image_size`: the backbone's input size, for the advice."""
    predictions, labels = np.asarray(predictions, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    n, n_classes = len(labels), len(classnames)
    counts = np.bincount(labels, minlength=n_classes)
    balanced = counts.min() == counts.max()
    largest = int(counts.argmax())
    chance = float(counts.max() / n)  # = 1 / C when balanced
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    result = {
        "format": FORMAT,
        "method": METHOD,
        "classnames": list(classnames),
        "photos_per_class": {name: int(c) for name, c in zip(classnames, counts)},
        **_scored(int(np.trace(confusion)), n, chance),
        "chance_rule": "uniform" if balanced else "majority",
        "chance_class": None if balanced else classnames[largest],
        "per_class": {name: (float(confusion[i, i] / counts[i]) if counts[i] else None)
                      for i, name in enumerate(classnames)},
        "confused_pairs": _confused_pairs(confusion, classnames),
        "confusion": confusion.tolist(),
        "zero_shot_accuracy": (None if zero_shot_predictions is None
                               else float(np.mean(np.asarray(zero_shot_predictions) == labels))),
        "good_vs_defective": None,
    }
    good = good_index(classnames, good_class)
    if good is not None:
        result["good_vs_defective"] = _pass_fail(predictions, labels, good, classnames[good])
    result["advice"] = advise(result, image_size, largest_photo)
    return result


def _confused_pairs(confusion: np.ndarray, classnames: list[str]) -> list[dict]:
    """The pairs of classes mixed up most, either way round, most first (at most MAX_PAIRS)."""
    pairs = []
    for i in range(len(classnames)):
        for j in range(i + 1, len(classnames)):
            count = int(confusion[i, j] + confusion[j, i])
            if count:
                pairs.append({"first": classnames[i], "second": classnames[j], "count": count,
                              "first_as_second": int(confusion[i, j]), "second_as_first": int(confusion[j, i]),
                              "photos": int(confusion[i].sum() + confusion[j].sum())})
    pairs.sort(key=lambda pair: (-pair["count"], -pair["count"] / pair["photos"]))
    return pairs[:MAX_PAIRS]


def _pass_fail(predictions: np.ndarray, labels: np.ndarray, good: int, good_class: str) -> dict:
    """The probe's answers read as pass (called good) or fail (called anything else).

    Defective photos usually outnumber good ones here (one good class against several defect classes), and
    plain accuracy would then praise "fail everything". So pass/fail is scored by the balanced accuracy: the
    mean of the share of defective photos stopped and the share of good photos passed, whose chance level
    is 50 % whatever the proportions. Its 95 % interval combines the two rates' Wilson intervals as independent
    errors: each side's half-widths added in quadrature, halved (the rates are averaged)."""
    is_good, called_good = labels == good, predictions == good
    escapes = rate(int((~is_good & called_good).sum()), int((~is_good).sum()))
    overkill = rate(int((is_good & ~called_good).sum()), int(is_good.sum()))
    accuracy = 1 - (escapes["rate"] + overkill["rate"]) / 2
    (e_low, e_high), (o_low, o_high) = escapes["interval"], overkill["interval"]
    low = max(0.0, accuracy - math.hypot(e_high - escapes["rate"], o_high - overkill["rate"]) / 2)
    high = min(1.0, accuracy + math.hypot(escapes["rate"] - e_low, overkill["rate"] - o_low) / 2)
    return {"good_class": good_class, "accuracy": accuracy, "balanced": True, "photos": len(labels),
            "interval": [low, high], "chance": 0.5, "level": level_of(low, 0.5),
            "defective_called_good": escapes, "good_called_defective": overkill}


def advise(result: dict, image_size: int | None = None, largest_photo: tuple[int, int] | None = None) -> list[dict]:
    """What to try, as {"code", "params"} (ADVICE has the English), most useful first. `largest_photo`:
    the largest training photo's (width, height), for the advice on tiles."""
    advice = []
    level = result["level"]
    pass_fail = result.get("good_vs_defective")
    if level == "clear":
        advice.append({"code": "start", "params": {}})
    elif pass_fail is not None and pass_fail["level"] == "clear":
        advice.append({"code": "pass_fail_only", "params": {"pass_fail_accuracy": _pct(pass_fail["accuracy"])}})
    if level == "near_chance":
        advice.append({"code": "not_tuning_yet", "params": {}})
    if level != "clear":
        if image_size and largest_photo and min(largest_photo) > AUTO_FACTOR * image_size:
            advice.append({"code": "try_tiles", "params": {"width": int(largest_photo[0]),
                                                           "height": int(largest_photo[1]), "size": int(image_size)}})
        if image_size:
            advice.append({"code": "closer_photos", "params": {"size": int(image_size)}})
        advice.append({"code": "other_backbone", "params": {}})
    pairs, errors = result["confused_pairs"], result["photos"] - result["correct"]
    if (pairs and level != "clear" and pairs[0]["count"] >= max(2, MIXED_UP_SHARE * pairs[0]["photos"])
            and 2 * pairs[0]["count"] >= errors):  # one pair stands out, not the mix-ups of a model that guesses
        top = pairs[0]
        advice.append({"code": "check_labels", "params": {"first": top["first"], "second": top["second"],
                                                           "count": top["count"], "photos": top["photos"]}})
    low, high = result["interval"]
    if high - low > WIDE_INTERVAL:
        smallest = min(result["photos_per_class"], key=result["photos_per_class"].get)
        advice.append({"code": "more_shots", "params": {"name": smallest,
                                                         "count": result["photos_per_class"][smallest],
                                                         "width": round(100 * (high - low))}})
    return advice


def probe(features: np.ndarray, labels: np.ndarray, classnames: list[str], *, good_class: str | None = None,
          zero_shot_predictions: np.ndarray | None = None, image_size: int | None = None,
          largest_photo: tuple[int, int] | None = None) -> dict:
    """The whole check on given features (N, D) and labels (N,): leave-one-out probe, then summarise()."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=len(classnames))
    if len(classnames) < 2:
        raise DataError("The check needs at least two classes.")
    too_few = [name for name, count in zip(classnames, counts) if count < MIN_PHOTOS_PER_CLASS]
    if too_few:
        raise DataError(f"The check needs at least {MIN_PHOTOS_PER_CLASS} usable training photos of every class "
                        f"(one is left out, the others make its class mean); {', '.join(repr(n) for n in too_few)} "
                        f"{'has' if len(too_few) == 1 else 'have'} fewer. Label more photos or raise --shots.")
    predictions = leave_one_out_predictions(features, labels, len(classnames))
    return summarise(predictions, labels, classnames, good_class=good_class,
                     zero_shot_predictions=zero_shot_predictions, image_size=image_size, largest_photo=largest_photo)


# ---------------------------------------------------------------- features from a backbone
def check_feasibility(backbone, classnames: list[str], items: list, *, good_class: str | None = None,
                      cache_dir: str | Path | None = None, templates: str = "auto", batch_size: int = 100,
                      cancel=None, on_batch: Callable[[int, int], None] | None = None) -> dict:
    """The check for labelled photos `items` (dapt_core.data.records.LabeledImage) with a loaded backbone.

    The frozen features (and the zero-shot class embeddings) are kept in `cache_dir` (default:
    cache_folder.default_cache_dir(), as run_experiment), so a second check of the same photos is instant.
    `on_batch(done, total)` is called per encoded batch; photos that cannot be read are left out and listed.
    """
    import torch

    from ..data.images import largest_size
    from .cache_folder import default_cache_dir
    from .evaluation import encode_images
    from .feature_cache import FrozenFeatureCache
    from .prompts import PromptedCLIP
    from .zeroshot import zero_shot_text_features

    started = time.perf_counter()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    text = zero_shot_text_features(backbone, classnames, templates, cache_dir).float()
    model = PromptedCLIP(backbone, classnames, text_prompt=False, visual_prompt=False, fixed_text_features=text)
    features, labels, _, skipped = encode_images(model, items, prompted=False, batch_size=batch_size,
                                                 cancel=cancel, on_batch=on_batch,
                                                 cache=FrozenFeatureCache(cache_dir, backbone))
    features = features.float().cpu()
    with torch.no_grad():
        zero_shot = (features @ text.cpu().t()).argmax(dim=1).numpy()
    result = probe(features.numpy(), labels.numpy(), classnames, good_class=good_class,
                   zero_shot_predictions=zero_shot, image_size=backbone.preprocessing.size,
                   largest_photo=largest_size(item.path for item in items))
    result.update(backbone=backbone.spec, templates=templates,
                  skipped=[{"path": s.path, "reason": s.reason} for s in skipped],
                  seconds=time.perf_counter() - started)
    return result


def result_key(backbone_identity: dict, classnames: list[str], photos: list[tuple[str, int]],
               good_class: str | None, templates: str = "auto") -> str:
    """What decides a check's result, hashed: the backbone, the class names, the photos (content hash and
    label) and the good class. A caller that keeps results (the app) files them under this key."""
    identity = {"format": FORMAT, "backbone": backbone_identity, "classnames": list(classnames),
                "photos": sorted([str(sha), int(label)] for sha, label in photos), "good_class": good_class,
                "templates": templates}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------ in words
LEVEL_WORDS = {"clear": "clearly", "partial": "partly", "near_chance": "hardly better than guessing"}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _interval(scored: dict) -> str:
    low, high = scored["interval"]
    return f"{100 * low:.0f}-{100 * high:.0f}%"


def describe(result: dict) -> list[str]:
    """The check in plain English, a few lines (what `dapt check` and `dapt tune` print)."""
    chance = (f"chance {_pct(result['chance'])}" if result["chance_rule"] == "uniform"
              else f"chance {_pct(result['chance'])}, always answering '{result['chance_class']}'")
    lines = [f"The frozen model tells these classes apart {_pct(result['accuracy'])} of the time ({chance}, 95% "
             f"interval {_interval(result)}): {LEVEL_WORDS[result['level']]} (leave-one-out over "
             f"{result['photos']} training photos, frozen features, nearest class mean)."]
    lines.append("Per class: " + ", ".join(f"{name} {_pct(value)}" for name, value in result["per_class"].items())
                 + ".")
    pairs = result["confused_pairs"]
    if pairs:
        first, *others = pairs
        line = f"It confuses '{first['first']}' with '{first['second']}' most ({_times(first['count'])})"
        if others:
            line += ", then " + ", ".join(f"'{p['first']}' with '{p['second']}' ({_times(p['count'])})"
                                           for p in others)
        lines.append(line + ".")
    pass_fail = result.get("good_vs_defective")
    if pass_fail is not None:
        escapes, overkill = pass_fail["defective_called_good"], pass_fail["good_called_defective"]
        lines.append(f"Good ('{pass_fail['good_class']}') vs defective: told apart {_pct(pass_fail['accuracy'])} "
                     f"(balanced accuracy, chance 50%, 95% interval {_interval(pass_fail)}): "
                     f"{LEVEL_WORDS[pass_fail['level']]}; {escapes['count']} of {escapes['of']} defective photos "
                     f"called good, {overkill['count']} of {overkill['of']} good photos called defective.")
    if result.get("zero_shot_accuracy") is not None:
        lines.append(f"Zero-shot (no tuning) on the same photos: {_pct(result['zero_shot_accuracy'])}.")
    advice = [ADVICE[a["code"]].format(**a["params"]) for a in result.get("advice", [])]
    if advice:
        lines.append("Try:" if any(a["code"] != "start" for a in result["advice"]) else "Next:")
        lines.extend(f"  - {text}" for text in advice)
    return lines


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"
