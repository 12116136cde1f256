"""Frozen image features kept on disk, per backbone and image content.

The frozen model's features of a test photo never change, so the zero-shot ("before") side of an
evaluation, and every later evaluation of the same photos with the same backbone, reads them from
here instead of decoding and encoding the photos again. Entries are keyed by the photo's SHA-256,
so a renamed or moved file still hits and an edited one does not.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from .. import atomic
from .backbone import Backbone

log = logging.getLogger(__name__)


def backbone_identity(backbone: Backbone) -> dict:
    """What decides a frozen feature: the model, its weights, its input transform and precision."""
    return {"backbone": backbone.describe(), "preprocessing": backbone.preprocessing.to_dict(),
            "precision": str(backbone.precision)}


class FrozenFeatureCache:
    """Normalised frozen image features (test view) of one backbone, by photo SHA-256.

    Each store() writes one file (a shard) holding a batch of photos, so an evaluation of 1,000
    photos costs one write; lookup() reads only the shards' headers to find the photos it needs.
    """

    def __init__(self, root: str | Path, backbone: Backbone):
        key = hashlib.sha256(json.dumps(backbone_identity(backbone), sort_keys=True).encode("utf-8")).hexdigest()
        self.folder = Path(root) / "image-features" / key[:32]
        self.width = backbone.embed_dim

    def lookup(self, shas: list[str]) -> dict[str, torch.Tensor]:
        """The cached features among `shas`, by SHA-256."""
        wanted, found = set(shas), {}
        for shard in sorted(self.folder.glob("*.safetensors")) if self.folder.is_dir() else []:
            try:
                with safe_open(str(shard), framework="pt") as tensors:
                    for sha in wanted.intersection(tensors.keys()).difference(found):
                        found[sha] = tensors.get_tensor(sha).float()
            except Exception as error:  # a damaged shard is recomputed, never fatal
                log.warning("ignoring unreadable image feature cache file %s: %s", shard, error)
        return {sha: feature for sha, feature in found.items() if feature.shape == (self.width,)}

    def cached(self, shas: list[str]) -> set[str]:
        """Which of `shas` are kept, from the shards' headers alone (no feature is read)."""
        wanted, found = set(shas), set()
        for shard in sorted(self.folder.glob("*.safetensors")) if self.folder.is_dir() else []:
            try:
                with safe_open(str(shard), framework="pt") as tensors:
                    found.update(wanted.intersection(tensors.keys()))
            except Exception as error:  # a damaged shard is recomputed, never fatal
                log.warning("ignoring unreadable image feature cache file %s: %s", shard, error)
        return found

    def store(self, features: dict[str, torch.Tensor]) -> None:
        if not features:
            return
        name = hashlib.sha256("".join(sorted(features)).encode("ascii")).hexdigest()[:32]
        tensors = {sha: feature.detach().float().cpu().contiguous() for sha, feature in features.items()}
        try:
            atomic.write_bytes(self.folder / f"{name}.safetensors", save(tensors))
        except OSError as error:  # a read-only or full disk costs a later run time, not this result
            log.warning("could not cache image features in %s: %s", self.folder, error)
