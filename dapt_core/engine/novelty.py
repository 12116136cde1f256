"""Saying "this photo is not like the training photos": the novelty score.

novelty = 1 - max over classes of cos(image feature, mean feature of that class's training photos),
on the tuned (prompted) image features and the training photos' test view. A photo of the line
sits near one of its class means; a red circle, noise or another material sits far from all of
them, even when the classifier gives it a confident class (a softmax has to pick something).

Chosen by measurement on the demo task (tuned demo CLIP, threshold at a 5 % false-reject rate on
held-out photos), against the same score on the frozen features, Mahalanobis distance with a
shared shrunk covariance, nearest training photo, maximum softmax and maximum text similarity:
the class-mean cosine on the prompted features flagged as many red circles, noise and other
materials as the best of them (softmax confidence flagged almost none), and it needs only the
features the classifier computes anyway, so the check costs nothing at inference. The threshold
is chosen on held-out photos by dapt_core.deploy.calibration.

The score lives in the engine because it is made of the tuned model's features (engine.evaluation);
deploy only thresholds it, as calibration and prediction do with plain numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.records import LabeledImage
from .evaluation import encode_images
from .prompts import PromptedCLIP
from .views import ImageViews

DESCRIPTION = ("1 - max over classes of the cosine between the tuned image feature and the mean tuned feature "
               "of that class's training photos")


class NoveltyReference(nn.Module):
    """The class means of the training photos' features; `score` gives the novelty of new features."""

    def __init__(self, class_means: torch.Tensor):
        super().__init__()
        self.register_buffer("class_means", F.normalize(class_means.float(), dim=-1))

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """(N,) novelty of L2-normalised tuned image features."""
        return 1.0 - (features @ self.class_means.to(features).t()).max(dim=-1).values

    @classmethod
    def from_features(cls, features: torch.Tensor, labels: torch.Tensor, n_classes: int) -> NoveltyReference:
        means = torch.zeros(n_classes, features.shape[1])
        means.index_add_(0, labels, features.float())
        counts = torch.bincount(labels, minlength=n_classes).clamp(min=1).unsqueeze(1)
        return cls(means / counts)

    @classmethod
    def from_training(cls, model: PromptedCLIP, train: list[LabeledImage], *, batch_size: int = 100,
                      cancel=None, decoded: ImageViews | None = None) -> NoveltyReference:
        """Encode the training photos (test view, with the tuned prompts) and take their class means
        (`decoded`: the tuning's views of `train`, whose kept photos need no second decode)."""
        features, labels, _, _ = encode_images(model, train, prompted=True, batch_size=batch_size, cancel=cancel,
                                               decoded=decoded)
        return cls.from_features(features, labels, len(model.classnames))
