"""Classifying images with a prompt file, from plain Python:

    from dapt_core import Classifier
    classifier = Classifier.load("prompts.safetensors")
    print(classifier.predict(["part-0001.jpg", "part-0002.jpg"]))
    classifier.predict("part.jpg", coverage=0.95)  # adds the set of classes holding the true one

Each Prediction carries the class, its calibrated probability and `unknown` (True when the photo is
unlike the training photos); see dapt_core.deploy.prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data.images import load_image
from ..data.records import LabeledImage
from ..deploy.calibration import Calibration, softmax
from ..deploy.heatmaps import NO_TILES_NO_HEATMAPS
from ..deploy.heatmaps import attach as attach_heatmaps
from ..deploy.pass_fail import at_operating_point, mixes_good_and_defective
from ..deploy.prediction import Decision, Prediction
from ..errors import ConfigError
from . import prompt_file
from .backbone import Backbone, load_backbone
from .cache_folder import default_cache_dir
from .evaluation import Evaluation, evaluate_before_after
from .novelty import NoveltyReference
from .prompts import PromptedCLIP
from .tiled import VIEW_CHUNK, photo_logits, photo_views
from .tiling import Tiling
from .transforms import Preprocessing, test_view
from .zeroshot import zero_shot_text_features

__all__ = ["Classifier", "Prediction"]


class Classifier:
    """A tuned classifier: the frozen backbone, the visual prompt and the tuned class embeddings.

    The class embeddings are stored in the file, so predicting runs only the image encoder and
    reproduces the logits of the tuned model exactly. A calibrated file (format 1.1) also gives
    calibrated probabilities, the unknown flag and prediction sets; an older one gives neither.
    """

    def __init__(self, model: PromptedCLIP, file: prompt_file.PromptFile):
        self.model = model
        self.file = file
        self.classnames = file.classnames
        self.preprocessing = Preprocessing.from_dict(file.header["preprocessing"])
        calibration = file.header.get("calibration")
        self.calibration = Calibration.from_dict(calibration) if calibration else None
        self.tiling = Tiling.from_dict(file.header["config"])
        means = file.tensors.get(prompt_file.NOVELTY_CLASS_MEANS)
        self.novelty = NoveltyReference(means).to(model.backbone.device) if means is not None else None

    @classmethod
    def load(cls, path: str | Path | bytes, backbone: str | Backbone | None = None,
             device: str | None = None) -> Classifier:
        """Load a prompt file and the backbone it names (or `backbone`, which must be the same model)."""
        file = prompt_file.load(path)
        return cls.from_prompt_file(file, backbone, device)

    @classmethod
    def from_prompt_file(cls, file: prompt_file.PromptFile, backbone: str | Backbone | None = None,
                         device: str | None = None) -> Classifier:
        if not isinstance(backbone, Backbone):
            backbone = load_backbone(backbone or file.backbone_spec, device)
        return cls(prompted_model(file, backbone), file)

    def evaluate(self, items: list[LabeledImage], *, batch_size: int = 100, num_workers: int = 0, cancel=None,
                 on_batch: Callable[[int, int], None] | None = None,
                 cache_dir: str | Path | None = None) -> tuple[Evaluation, Evaluation]:
        """Zero-shot ("before", with the template set the file was tuned with) and this file ("after") on
        labelled images, as `dapt eval` and the app's imported-file check score them. The zero-shot class
        embeddings and frozen image features are kept in `cache_dir` (default: cache_folder.default_cache_dir())."""
        cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        zero_shot = zero_shot_text_features(self.model.backbone, self.classnames, self.templates, cache_dir)
        return evaluate_before_after(self.model, zero_shot, items, batch_size=batch_size, num_workers=num_workers,
                                     cancel=cancel, on_batch=on_batch, cache_dir=cache_dir, tiling=self.tiling,
                                     good=self.good_index)

    @property
    def templates(self) -> str:
        """The zero-shot template set the file was tuned with (its "before" side)."""
        return self.file.header["config"].get("templates", "auto")

    def logits(self, images: list, batch_size: int = 100) -> torch.Tensor:
        """(N, C) logits for PIL images or image paths, with the file's preprocessing."""
        return self.outputs(images, batch_size)[0]

    def outputs(self, images: list, batch_size: int = 100) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(N, C) logits and (N,) novelty scores (None for a file without calibration). A tiled file's
        logits are the photos' pooled ones (engine/tiling.py); the novelty is the whole photo's."""
        if self.tiling.on:
            return _stacked([self.look(image) for image in images], len(self.classnames))
        device = self.model.backbone.device
        logits, novelty = [], []
        for start in range(0, len(images), batch_size):
            chunk = [_as_image(item) for item in images[start:start + batch_size]]
            batch_logits, batch_novelty = self.forward_batch(
                torch.stack([test_view(image, self.preprocessing) for image in chunk]).to(device))
            logits.append(batch_logits.cpu())
            if batch_novelty is not None:
                novelty.append(batch_novelty.cpu())
        if not logits:
            return torch.empty(0, len(self.classnames)), None
        return torch.cat(logits), torch.cat(novelty) if novelty else None

    @torch.no_grad()
    def image_features(self, images: list) -> tuple[np.ndarray, np.ndarray | None]:
        """The tuned image features (N, D) of whole photos (PIL images; their test view, as their novelty is
        computed) and their novelty (N,; None for a file without calibration), for the drift check; the ONNX
        runner gives the same (deploy/onnx_runner.py)."""
        batch = torch.stack([test_view(image, self.preprocessing) for image in images])
        with self.model.backbone.autocast():
            features = self.model.image_features(batch.to(self.model.backbone.device)).float()
        novelty = None if self.novelty is None else self.novelty.score(features).cpu().numpy()
        return features.cpu().numpy(), novelty

    @torch.no_grad()
    def forward_batch(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits and novelty of a preprocessed (N, 3, S, S) batch on the model's device."""
        with self.model.backbone.autocast():
            features = self.model.image_features(batch).float()
        logits = (self.model.logit_scale * features @ self.model.text_features().t()).float()
        return logits, None if self.novelty is None else self.novelty.score(features)

    def look(self, image) -> TiledLook:
        """One photo through the tiles: the photo's logits and novelty, and every view's logits with
        the tile boxes (the whole photo first), from which its heatmaps are drawn."""
        image = _as_image(image)
        views, boxes = photo_views(image, self.tiling, self.preprocessing)
        view_logits, novelty = [], []
        for chunk in views.split(VIEW_CHUNK):
            chunk_logits, chunk_novelty = self.forward_batch(chunk.to(self.model.backbone.device))
            view_logits.append(chunk_logits.cpu())
            novelty.append(None if chunk_novelty is None else chunk_novelty[:1].cpu())
        view_logits = torch.cat(view_logits)
        return TiledLook(photo_logits(view_logits, self.good_index), None if novelty[0] is None else novelty[0][0],
                         view_logits, boxes, image.size, image)

    @property
    def good_index(self) -> int | None:
        good = self.good_class
        return self.classnames.index(good) if good in self.classnames else None

    @property
    def good_class(self) -> str | None:
        """The class that means a good part (recorded when the file was tuned), or None."""
        return (self.file.header.get("metrics") or {}).get("good_class") or (
            self.calibration.operating_point.good_class if self.calibration and self.calibration.operating_point
            else None)

    def count_at_operating_point(self, evaluation: Evaluation, novelty) -> dict | None:
        """Escapes and overkill on labelled photos at this file's pass threshold, unknown photos failing;
        None for a file without an operating point or photos that are not a mix of good and defective."""
        point = self.calibration.operating_point if self.calibration is not None else None
        labels = evaluation.labels.numpy()
        if point is None or len(labels) == 0 or point.good_class not in self.classnames:
            return None
        if not mixes_good_and_defective(labels, self.classnames.index(point.good_class)):
            return None
        probabilities = softmax(evaluation.logits.double().numpy() / self.calibration.temperature)
        unknown = None if novelty is None else novelty > self.calibration.unknown_threshold()
        return at_operating_point(point, probabilities, labels, self.classnames, unknown)

    def decision(self, *, coverage: float | None = None, unknown_threshold: float | None = None,
                 reject_rate: float | None = None, escape_rate: float | None = None) -> Decision:
        """How outputs become answers: this file's calibration and the caller's choices."""
        return Decision(self.classnames, self.calibration, coverage, unknown_threshold, reject_rate, escape_rate)

    def predict(self, images: list | str | Path | Image.Image, decision: Decision | None = None, *,
                coverage: float | None = None, unknown_threshold: float | None = None,
                reject_rate: float | None = None, escape_rate: float | None = None,
                heatmaps: bool = False) -> list[Prediction]:
        """One Prediction per image (a single image may be given without a list).

        coverage: also give the set of classes that holds the true class with this probability.
        unknown_threshold: flag photos whose novelty is above this instead of the file's threshold.
        reject_rate: choose the threshold for this false-reject rate instead of the file's.
        escape_rate: place the pass threshold for this share of defective parts let through instead of
            the file's (`verdict` is "pass" or "fail" for files whose task has a good class).
        heatmaps: give each prediction its heatmap (`heatmap`, deploy/heatmaps.py); a file tuned with tiles only.
        """
        if isinstance(images, (str, Path, Image.Image)):
            images = [images]
        decision = decision or self.decision(coverage=coverage, unknown_threshold=unknown_threshold,
                                             reject_rate=reject_rate, escape_rate=escape_rate)
        if not self.tiling.on:
            if heatmaps:
                raise ConfigError(NO_TILES_NO_HEATMAPS)
            logits, novelty = self.outputs(list(images))
            return decision.decide(logits.numpy(), None if novelty is None else novelty.numpy())
        looks = [self.look(image) for image in images]
        if not looks:
            return []
        logits, novelty = _stacked(looks, len(self.classnames))
        predictions = decision.decide(logits.numpy(), None if novelty is None else novelty.numpy())
        if heatmaps:
            attach_heatmaps(predictions, [self._with_detail(look, prediction.label)
                                          for look, prediction in zip(looks, predictions)],
                            self.classnames, self.good_index)
        return predictions

    def _with_detail(self, look: TiledLook, label: str) -> tuple:
        """A look and the function that scores crops of its photo, for its heatmap (deploy/heatmaps.py)."""
        def score(boxes):
            views = torch.stack([test_view(look.image.crop(box), self.preprocessing) for box in boxes])
            return torch.cat([self.forward_batch(chunk.to(self.model.backbone.device))[0].cpu()
                              for chunk in views.split(VIEW_CHUNK)]).numpy()

        return look.view_logits.numpy(), look.boxes, look.size, score


@dataclass
class TiledLook:
    """What `Classifier.look` saw of one photo."""

    logits: torch.Tensor  # (C,) the photo's, by the rule of engine/tiling.py
    novelty: torch.Tensor | None  # the whole photo's novelty score
    view_logits: torch.Tensor  # (1 + T, C): the whole photo, then each tile
    boxes: list  # the T tiles, (left, top, right, bottom) in the photo's pixels
    size: tuple[int, int]  # the photo's width and height
    image: Image.Image | None = None  # the photo itself, for the detail windows of a heatmap


def _stacked(looks: list[TiledLook], n_classes: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The photos' logits (N, C) and novelty (N,) (None for a file without calibration) of their looks."""
    if not looks:
        return torch.empty(0, n_classes), None
    novelty = None if looks[0].novelty is None else torch.stack([look.novelty for look in looks])
    return torch.stack([look.logits for look in looks]), novelty


def prompted_model(file: prompt_file.PromptFile, backbone: Backbone, labels: list[int] | None = None) -> PromptedCLIP:
    """The frozen backbone with a prompt file's visual prompt and tuned class embeddings.

    `labels` keeps only those of the file's classes, in that order (a test set that uses a subset of the
    classes the file was tuned on, as ImageNet-R does of ImageNet's)."""
    file.check_backbone(backbone)
    config = file.header["config"]
    visual = file.tensors.get(prompt_file.VISUAL_PROMPT)
    if visual is not None and not backbone.supports_visual_prompt:
        raise ConfigError(f"'{backbone.spec}' cannot take the visual prompt stored in this file.")
    classnames, class_embeddings = file.classnames, file.tensors[prompt_file.CLASS_EMBEDDINGS]
    if labels is not None:
        classnames = [classnames[i] for i in labels]
        class_embeddings = class_embeddings[torch.as_tensor(labels, dtype=torch.long)]
    model = PromptedCLIP(
        backbone, classnames, text_prompt=False, visual_prompt=visual is not None,
        n_vis=visual.shape[1] if visual is not None else int(config.get("n_vis", 16)),
        deep_visual=visual is not None and visual.shape[0] > 1, fixed_text_features=class_embeddings)
    model.load_prompt_tensors(file.tensors)
    return model


def _as_image(item) -> Image.Image:
    if isinstance(item, Image.Image):
        return item.convert("RGB")
    return load_image(item)
