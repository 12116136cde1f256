"""DAPT's two dispersion losses, as the authors' code computes them (the names of the loss's terms, as
histories and metrics key them, are in engine.loss_terms)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def inter_dispersion(text_features: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Mean over unordered class pairs i < j of exp(-t * ||g_i - g_j||^2).

    Args:
        text_features: (C, D) class text embeddings (the caller passes them L2-normalised).
        t: temperature of the Gaussian potential; the recipe uses 2.0.

    Minimising it spreads the class embeddings apart (a uniformity loss). Computed in float32
    because in bf16 exp() of small distances rounds every pair to the same value.
    """
    features = text_features.float()
    n_classes = features.shape[0]
    if n_classes < 2:
        return features.new_zeros(())
    # ||g_i - g_j||^2 from the Gram matrix: O(C^2) memory rather than O(C^2 D), and, unlike
    # pdist, a finite gradient when two classes coincide.
    norms = features.pow(2).sum(dim=1)
    squared = (norms[:, None] + norms[None, :] - 2.0 * features @ features.t()).clamp_min(0.0)
    i, j = torch.triu_indices(n_classes, n_classes, offset=1, device=features.device)
    return torch.exp(-t * squared[i, j]).mean()


def intra_dispersion(image_features: torch.Tensor, prototypes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over all B x D elements of (f_i - p_{y_i})^2: each image pulled toward its class prototype.

    Args:
        image_features: (B, D) L2-normalised image features with visual prompts.
        prototypes: (C, D) per-class mean of the frozen model's normalised features (not re-normalised).
        labels: (B,) class indices.
    """
    return F.mse_loss(image_features.float(), prototypes[labels].float(), reduction="mean")
