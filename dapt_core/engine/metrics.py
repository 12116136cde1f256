"""Accuracy, confusion and the measured dispersion of an embedding space."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in [0, 1]; nan for no samples."""
    if labels.numel() == 0:
        return float("nan")
    return float((predictions == labels).float().mean())


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(C, C) counts; row = true class, column = predicted class."""
    index = labels.long() * n_classes + predictions.long()
    return torch.bincount(index, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_accuracy(confusion: torch.Tensor) -> list[float]:
    """Recall of each class from a confusion matrix; nan for a class without test images."""
    totals = confusion.sum(dim=1)
    correct = confusion.diagonal()
    return [float(c) / float(t) if t > 0 else float("nan") for c, t in zip(correct, totals)]


def class_means(features: torch.Tensor, labels: torch.Tensor, n_classes: int | None = None) -> torch.Tensor:
    """(C, D) mean feature per class (zeros for a class without samples)."""
    n_classes = int(labels.max()) + 1 if n_classes is None else n_classes
    sums = torch.zeros(n_classes, features.shape[1], dtype=features.dtype, device=features.device)
    sums.index_add_(0, labels, features)
    counts = torch.bincount(labels, minlength=n_classes).clamp_min(1).to(features.dtype)
    return sums / counts[:, None]


def dispersion(features: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """How tight classes are and how far apart they lie, for L2-normalised features.

    Returns:
        intra: mean squared distance of each feature to its class mean (lower = tighter classes).
        inter: mean squared distance between class means over class pairs (higher = farther apart).
        ratio: inter / intra, one number for "how separable" (higher is better).
    Features are normalised here, so callers may pass raw embeddings.
    """
    features = F.normalize(features.float(), dim=-1)
    labels = labels.long()
    present = torch.unique(labels)
    # Re-index to the classes that have samples: a class with no test image has no mean.
    remap = torch.full((int(labels.max()) + 1,), -1, dtype=torch.long, device=labels.device)
    remap[present] = torch.arange(len(present), device=labels.device)
    labels = remap[labels]
    means = class_means(features, labels, len(present))
    intra = (features - means[labels]).pow(2).sum(dim=1).mean()
    inter = mean_pairwise_squared_distance(means)
    return {"intra": float(intra), "inter": inter, "ratio": inter / float(intra) if float(intra) > 0 else float("inf")}


def mean_pairwise_squared_distance(vectors: torch.Tensor) -> float:
    """Mean of ||v_i - v_j||^2 over unordered pairs i < j (0 for fewer than two vectors)."""
    n = vectors.shape[0]
    if n < 2:
        return 0.0
    vectors = vectors.float()
    norms = vectors.pow(2).sum(dim=1)
    squared = (norms[:, None] + norms[None, :] - 2 * vectors @ vectors.t()).clamp_min(0)
    i, j = torch.triu_indices(n, n, offset=1)
    return float(squared[i, j].mean())


def text_spread(text_features: torch.Tensor) -> float:
    """Inter-dispersion of the class text embeddings: mean squared distance between classes."""
    return mean_pairwise_squared_distance(F.normalize(text_features.float(), dim=-1))


def json_safe(value):
    """NaN/inf become None so the JSON is standard (a class without test images has no accuracy)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
