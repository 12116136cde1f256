"""Scoring a classifier on test images: predictions, accuracy, confusion, embedding dispersion.

"Before" is zero-shot CLIP (no prompts, template class embeddings); "after" is the tuned model,
on the same test images, so the two can be compared image by image.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from ..data.images import sha256_of
from ..data.records import LabeledImage, Skipped
from ..deploy import pass_fail
from ..deploy.calibration import fit_temperature, softmax
from ..errors import Cancelled
from .feature_cache import FrozenFeatureCache
from .metrics import accuracy, confusion_matrix, dispersion, json_safe, per_class_accuracy, text_spread
from .prompts import PromptedCLIP
from .tiled import any_tiles, encode_tiled
from .tiling import Tiling
from .views import ImageViews, epoch_batches, loader, skipped_records


@dataclass
class Evaluation:
    """Scores of one classifier on a set of test images (rows follow `paths`)."""

    classnames: list[str]
    paths: list[str]
    labels: torch.Tensor
    logits: torch.Tensor
    features: torch.Tensor  # L2-normalised image embeddings
    text_features: torch.Tensor  # L2-normalised class embeddings
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def predictions(self) -> torch.Tensor:
        return self.logits.argmax(dim=1)

    @property
    def accuracy(self) -> float:
        return accuracy(self.predictions, self.labels)

    @property
    def confusion(self) -> torch.Tensor:
        return confusion_matrix(self.predictions, self.labels, len(self.classnames))

    @property
    def per_class(self) -> dict[str, float]:
        """Accuracy by class name; a repeated name (ImageNet has two "missile" classes) gets " #2"."""
        return dict(zip(unique_names(self.classnames), per_class_accuracy(self.confusion)))

    @property
    def dispersion(self) -> dict[str, float]:
        if len(self.labels) == 0:
            return {"intra": float("nan"), "inter": float("nan"), "ratio": float("nan")}
        return {**dispersion(self.features, self.labels), "text_inter": text_spread(self.text_features)}


def unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return unique


@torch.no_grad()
def encode_images(model: PromptedCLIP, items: list[LabeledImage], *, prompted: bool, batch_size: int = 100,
                  num_workers: int = 0, cancel=None, on_batch: Callable[[int, int], None] | None = None,
                  cache: FrozenFeatureCache | None = None, decoded: ImageViews | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, list[int], list[Skipped]]:
    """Normalised features of `items` (test view). Returns features, labels, the indices of the
    images that loaded, and the skipped ones. Under torch.distributed each rank encodes a share
    and the results are gathered, so every rank returns all of them in order. Frozen features
    (`prompted=False`) are read from and added to `cache` if one is given (single process).
    `decoded`: training views of the same `items` whose kept photos need no second decode."""
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)
    if cache is not None and not prompted and world == 1:
        return _encode_frozen_with_cache(model, items, cache, batch_size=batch_size, num_workers=num_workers,
                                         cancel=cancel, on_batch=on_batch)
    views = ImageViews(items, model.backbone.preprocessing, train=False, decoded=decoded)
    batches = epoch_batches(len(items), batch_size, 0, 0, shuffle=False)
    device = model.backbone.device
    features, labels, indices, skipped = [], [], [], []
    mine = batches[rank::world]
    for done, batch in enumerate(loader(views, mine, num_workers), start=1):
        if cancel is not None and cancel.is_set():
            raise Cancelled("Evaluation was cancelled.")
        skipped.extend(batch.skipped)
        if len(batch.labels):
            with model.backbone.autocast():
                features.append(model.image_features(batch.images.to(device), prompted=prompted).float().cpu())
            labels.append(batch.labels)
            indices.extend(batch.indices.tolist())
        if on_batch is not None:
            on_batch(done, len(mine))
    width = model.backbone.embed_dim
    features = torch.cat(features) if features else torch.empty(0, width)
    labels = torch.cat(labels) if labels else torch.empty(0, dtype=torch.long)
    if world > 1:
        features, labels, indices, skipped = _gather(features, labels, indices, skipped)
    return features, labels, indices, skipped_records(views, skipped)


def _encode_frozen_with_cache(model: PromptedCLIP, items: list[LabeledImage], cache: FrozenFeatureCache,
                              **options) -> tuple[torch.Tensor, torch.Tensor, list[int], list[Skipped]]:
    """encode_images(prompted=False) that encodes only the photos `cache` does not hold."""
    shas = []
    for item in items:
        try:
            shas.append(sha256_of(item.path))
        except OSError:
            shas.append(None)  # unreadable: encoding reports it as skipped
    known = cache.lookup([sha for sha in shas if sha])
    missing = [i for i, sha in enumerate(shas) if sha not in known]
    features, labels, indices, skipped = encode_images(model, [items[i] for i in missing], prompted=False, **options)
    indices = [missing[j] for j in indices]
    cache.store({shas[i]: feature for i, feature in zip(indices, features) if shas[i]})
    rows = sorted([(i, known[shas[i]], items[i].label) for i in range(len(items)) if shas[i] in known]
                  + [(i, feature, int(label)) for i, feature, label in zip(indices, features, labels)],
                  key=lambda row: row[0])
    if not rows:
        return features, labels, indices, skipped
    return (torch.stack([row[1] for row in rows]), torch.tensor([row[2] for row in rows]),
            [row[0] for row in rows], skipped)


def _gather(features, labels, indices, skipped):
    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, (features, labels, indices, skipped))
    features = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts])
    indices = [i for p in parts for i in p[2]]
    skipped = sorted(s for p in parts for s in p[3])
    order = torch.tensor(indices).argsort()
    return features[order], labels[order], sorted(indices), skipped


def score(model: PromptedCLIP, items: list[LabeledImage], features: torch.Tensor, labels: torch.Tensor,
          indices: list[int], skipped: list[Skipped], text_features: torch.Tensor) -> Evaluation:
    text_features = text_features.float().cpu()
    logits = model.logit_scale.cpu() * features @ text_features.t()
    return Evaluation(model.classnames, [str(items[i].path) for i in indices], labels, logits, features,
                      text_features, skipped)


def evaluate_before_after(model: PromptedCLIP, zero_shot_text: torch.Tensor, items: list[LabeledImage], *,
                          batch_size: int = 100, num_workers: int = 0, cancel=None,
                          on_batch: Callable[[int, int], None] | None = None,
                          cache_dir: Path | None = None, tiling: Tiling | None = None,
                          good: int | None = None) -> tuple[Evaluation, Evaluation]:
    """Zero-shot ("before") and tuned ("after") scores on the same test images; the frozen
    features of the "before" side are kept in `cache_dir` for later evaluations, if given.
    With `tiling` on, both sides look at the photos in tiles and answer by the photo's rule
    (engine/tiling.py; `good`: the good class's index); the features are the whole photos'."""
    if tiling is not None and any_tiles(items, tiling, model.backbone.preprocessing.size):
        return _evaluate_tiled(model, zero_shot_text, items, tiling, good, batch_size=batch_size, cancel=cancel,
                               on_batch=on_batch)
    cache = FrozenFeatureCache(cache_dir, model.backbone) if cache_dir is not None else None
    before_features = encode_images(model, items, prompted=False, batch_size=batch_size,
                                    num_workers=num_workers, cancel=cancel, on_batch=on_batch, cache=cache)
    before = score(model, items, *before_features, zero_shot_text)
    if model.visual_prompt is None:
        after_features = before_features  # no visual prompt: the tuned image features are the frozen ones
    else:
        after_features = encode_images(model, items, prompted=True, batch_size=batch_size,
                                       num_workers=num_workers, cancel=cancel, on_batch=on_batch)
    with torch.no_grad(), model.backbone.autocast():
        tuned_text = model.text_features().float()
    return before, score(model, items, *after_features, tuned_text)


def _evaluate_tiled(model: PromptedCLIP, zero_shot_text: torch.Tensor, items: list[LabeledImage], tiling: Tiling,
                    good: int | None, **options) -> tuple[Evaluation, Evaluation]:
    with torch.no_grad(), model.backbone.autocast():
        tuned_text = model.text_features().float()
    sides = []
    for prompted, text in ((False, zero_shot_text), (True, tuned_text)):
        features, logits, labels, indices, skipped = encode_tiled(model, items, tiling, text, good,
                                                                  prompted=prompted, **options)
        sides.append(Evaluation(model.classnames, [str(items[i].path) for i in indices], labels, logits, features,
                                text.float().cpu(), [Skipped(str(items[i].path), why) for i, why in skipped]))
    return sides[0], sides[1]


def evaluation_batches(model: PromptedCLIP, n_items: int, batch_size: int = 100) -> int:
    """How many batches `evaluate_before_after` runs: frozen features, then prompted ones if any."""
    passes = 2 if model.visual_prompt is not None else 1
    return passes * math.ceil(n_items / batch_size)


def comparison_metrics(before: Evaluation, after: Evaluation, good_class: str | None = None) -> dict:
    """Zero-shot against tuned on the same test images, JSON-ready: the numbers `dapt tune`, `dapt eval`,
    the app and the benchmark runner report (each adds what is its own). With `good_class` (the class that
    means a good part) the pass/fail counts lead: see pass_fail_metrics."""
    return json_safe({
        "n_test": len(after.labels),
        "good_class": good_class,
        "pass_fail": pass_fail_metrics(before, after, good_class),
        "accuracy": after.accuracy,
        "chance": chance_level(after.labels, len(after.classnames)),
        "zero_shot_accuracy": before.accuracy,
        "per_class": after.per_class,
        "zero_shot_per_class": before.per_class,
        "confusion": {"before": before.confusion.tolist(), "after": after.confusion.tolist()},
        "dispersion": {"before": before.dispersion, "after": after.dispersion},
    })


def chance_level(labels: torch.Tensor, n_classes: int) -> float:
    """The accuracy of always answering the most common test class (1 / C when the classes are balanced):
    what an accuracy has to beat to mean anything."""
    if len(labels) == 0:
        return 1.0 / max(1, n_classes)
    return float(torch.bincount(labels, minlength=n_classes).max()) / len(labels)


def pass_fail_metrics(before: Evaluation, after: Evaluation, good_class: str | None) -> dict | None:
    """Escapes (defective parts called good) and overkill (good parts called defective), zero-shot and
    tuned, a part passing when "good" is its most probable class; the defect-type accuracy among the
    caught defects; and the escape/overkill trade-off curves as the pass threshold on P(good) moves
    (each model's probabilities temperature-scaled on these photos, so the curves compare fairly).
    None without a good class or when the photos are not a mix of good and defective parts."""
    if good_class is None or good_class not in after.classnames or len(after.labels) == 0:
        return None
    good = after.classnames.index(good_class)
    labels = after.labels.numpy()
    if not pass_fail.mixes_good_and_defective(labels, good):
        return None
    result = {"good_class": good_class}
    for side, evaluation in (("before", before), ("after", after)):
        logits = evaluation.logits.double().numpy()
        probabilities = softmax(logits / fit_temperature(logits, labels))
        result[side] = pass_fail.argmax_counts(probabilities, labels, evaluation.classnames, good)
        result[f"curve_{side}"] = pass_fail.tradeoff_curve(probabilities[:, good], labels, good)
    return result
