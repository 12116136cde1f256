"""Classifying images with a prompt file, from plain Python:

    from dapt_core import Classifier
    classifier = Classifier.load("prompts.safetensors")
    print(classifier.predict(["part-0001.jpg", "part-0002.jpg"]))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from ..data.images import load_image
from ..data.records import LabeledImage
from ..errors import ConfigError
from . import prompt_file
from .backbone import Backbone, load_backbone
from .device import autocast
from .evaluation import Evaluation, evaluate_before_after
from .prompts import PromptedCLIP
from .transforms import Preprocessing, test_view
from .zeroshot import zero_shot_text_features


@dataclass
class Prediction:
    label: str
    score: float  # softmax probability of `label`
    probabilities: dict[str, float]

    def __repr__(self) -> str:
        return f"Prediction({self.label!r}, {self.score:.3f})"


class Classifier:
    """A tuned classifier: the frozen backbone, the visual prompt and the tuned class embeddings.

    The class embeddings are stored in the file, so predicting runs only the image encoder and
    reproduces the logits of the tuned model exactly.
    """

    def __init__(self, model: PromptedCLIP, file: prompt_file.PromptFile):
        self.model = model
        self.file = file
        self.classnames = file.classnames
        self.preprocessing = Preprocessing.from_dict(file.header["preprocessing"])

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
                 on_batch: Callable[[int, int], None] | None = None) -> tuple[Evaluation, Evaluation]:
        """Zero-shot ("before", with the template set the file was tuned with) and this file ("after") on
        labelled images, as `dapt eval` and the app's imported-file check score them."""
        templates = self.file.header["config"].get("templates", "auto")
        zero_shot = zero_shot_text_features(self.model.backbone, self.classnames, templates)
        return evaluate_before_after(self.model, zero_shot, items, batch_size=batch_size, num_workers=num_workers,
                                     cancel=cancel, on_batch=on_batch)

    @torch.no_grad()
    def logits(self, images: list, batch_size: int = 100) -> torch.Tensor:
        """(N, C) logits for PIL images or image paths, with the file's preprocessing."""
        device = self.model.backbone.device
        rows = []
        for start in range(0, len(images), batch_size):
            chunk = [_as_image(item) for item in images[start:start + batch_size]]
            batch = torch.stack([test_view(image, self.preprocessing) for image in chunk]).to(device)
            with autocast(device):
                features = self.model.image_features(batch)
            rows.append((self.model.logit_scale * features @ self.model.text_features().t()).float().cpu())
        return torch.cat(rows) if rows else torch.empty(0, len(self.classnames))

    def predict(self, images: list | str | Path | Image.Image) -> list[Prediction]:
        """One Prediction per image (a single image may be given without a list)."""
        if isinstance(images, (str, Path, Image.Image)):
            images = [images]
        probabilities = self.logits(list(images)).softmax(dim=1)
        predictions = []
        for row in probabilities:
            best = int(row.argmax())
            predictions.append(Prediction(self.classnames[best], float(row[best]),
                                          {name: float(p) for name, p in zip(self.classnames, row)}))
        return predictions


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
