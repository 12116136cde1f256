"""Classifying images with a prompt file, from plain Python:

    from dapt_core import Classifier
    classifier = Classifier.load("prompts.safetensors")
    print(classifier.predict(["part-0001.jpg", "part-0002.jpg"]))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from . import prompt_file
from .backbone import Backbone, load_backbone
from .device import autocast
from ..errors import ConfigError
from ..data.images import load_image
from .prompts import PromptedCLIP
from .transforms import Preprocessing, test_view


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
             device: str | None = None) -> "Classifier":
        """Load a prompt file and the backbone it names (or `backbone`, which must be the same model)."""
        file = prompt_file.load(path)
        return cls.from_prompt_file(file, backbone, device)

    @classmethod
    def from_prompt_file(cls, file: prompt_file.PromptFile, backbone: str | Backbone | None = None,
                         device: str | None = None) -> "Classifier":
        if not isinstance(backbone, Backbone):
            backbone = load_backbone(backbone or file.backbone_spec, device)
        file.check_backbone(backbone)
        config = file.header["config"]
        visual = file.tensors.get(prompt_file.VISUAL_PROMPT)
        if visual is not None and not backbone.supports_visual_prompt:
            raise ConfigError(f"'{backbone.spec}' cannot take the visual prompt stored in this file.")
        model = PromptedCLIP(
            backbone, file.classnames, text_prompt=False, visual_prompt=visual is not None,
            n_vis=visual.shape[1] if visual is not None else config.get("n_vis", 16),
            deep_visual=visual is not None and visual.shape[0] > 1,
            fixed_text_features=file.tensors[prompt_file.CLASS_EMBEDDINGS])
        if visual is not None:
            with torch.no_grad():
                model.visual_prompt.copy_(visual.to(model.visual_prompt))
        return cls(model, file)

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


def _as_image(item) -> Image.Image:
    if isinstance(item, Image.Image):
        return item.convert("RGB")
    return load_image(item)
