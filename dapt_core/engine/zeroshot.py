"""Zero-shot CLIP: class embeddings from prompt templates, no training.

A class's embedding is the normalised mean over the template set of its normalised text features.
The text transformer stops at the longest sequence's EOS (exact: it is causal) instead of running
all 77 positions, and the result is kept on disk, keyed by the backbone, its weights, the class
names and the templates: CLIP's 80 templates over 1,000 classes are 80,000 sequences, worth
computing once. The template set is the user's choice ("photo": one template, "openai": CLIP's 80)
and is reported with every result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES
from safetensors.torch import load_file, save

from .. import atomic
from ..errors import ConfigError
from .backbone import Backbone
from .cache_folder import default_cache_dir
from .methods import TEMPLATE_SET_NAMES
from .text_encoder import encode_embedded, feature_positions, is_causal

log = logging.getLogger(__name__)

TEMPLATE_SETS = {
    "auto": None,                         # the backbone's own templates if it names some, else "openai"
    "openai": OPENAI_IMAGENET_TEMPLATES,  # CLIP's 80-template ensemble
    "simple": SIMPLE_IMAGENET_TEMPLATES,  # the 7-template subset open_clip recommends
    "photo": ("a photo of a {}.",),       # the single template of CoOp's baseline tables
}
DEFAULT_TEMPLATES = "auto"
assert tuple(TEMPLATE_SETS) == TEMPLATE_SET_NAMES  # the names the CLI and the config offer
SEQUENCES_PER_BATCH = 1024
_CACHE_FORMAT = 1  # bump when the computation changes, so that old entries are not reused


def resolve_templates(backbone: Backbone, templates: str = DEFAULT_TEMPLATES):
    """The prompt templates of a template-set name; "auto" prefers the backbone's own (the demo
    model was trained on inspection captions, not on the web captions CLIP's 80 templates imitate)."""
    if templates not in TEMPLATE_SETS:
        raise ConfigError(f"Unknown template set '{templates}'. Choose one of: {', '.join(TEMPLATE_SETS)}.")
    if templates == "auto":
        return backbone.zero_shot_templates or OPENAI_IMAGENET_TEMPLATES
    return TEMPLATE_SETS[templates]


def describe_templates(backbone: Backbone, templates: str = DEFAULT_TEMPLATES) -> dict:
    """What a report says about the zero-shot classifier: the set's name, its size, an example."""
    resolved = resolve_templates(backbone, templates)
    return {"set": templates, "count": len(resolved), "example": template_text(resolved[0])}


def template_text(template) -> str:
    """A template as text with "{}" for the class name (open_clip's are functions of the name)."""
    return template("{}") if callable(template) else str(template)


def zero_shot_text_features(backbone: Backbone, classnames: list[str], templates: str = DEFAULT_TEMPLATES,
                            cache_dir: str | os.PathLike | None = None) -> torch.Tensor:
    """(C, D) L2-normalised class embeddings: each class's mean over the template set.

    Read from `cache_dir` (default: default_cache_dir()) when this backbone, class list and
    template set were computed before; computed and stored otherwise.
    """
    resolved = resolve_templates(backbone, templates)
    path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "zero-shot" / (
        _cache_key(backbone, classnames, resolved) + ".safetensors")
    cached = _read(path, len(classnames), backbone.embed_dim)
    if cached is not None:
        return cached.to(backbone.device)
    features = encode_templates(backbone, classnames, resolved)
    try:
        atomic.write_bytes(path, save({"class_embeddings": features.cpu().contiguous()},
                                      metadata={"classes": str(len(classnames)), "templates": str(len(resolved))}))
    except OSError as error:  # a read-only or full disk costs the next run time, not this result
        log.warning("could not cache zero-shot class embeddings in %s: %s", path.parent, error)
    return features


@torch.no_grad()
def encode_templates(backbone: Backbone, classnames: list[str], templates) -> torch.Tensor:
    """(C, D) normalised mean over `templates` of each class's normalised text features."""
    tower, device = backbone.text_tower, backbone.device
    texts = [template_text(template).format(name) for name in classnames for template in templates]
    features = []
    for start in range(0, len(texts), SEQUENCES_PER_BATCH):
        ids = backbone.tokenizer(texts[start:start + SEQUENCES_PER_BATCH]).to(device)
        with backbone.autocast():
            if is_causal(tower):  # nothing after the last EOS can reach a feature: stop there
                ids = ids[:, :int(feature_positions(tower, ids).max()) + 1]
                encoded = encode_embedded(tower, tower.token_embedding(ids), ids)
            else:
                encoded = backbone.model.encode_text(ids)
        features.append(F.normalize(encoded.float(), dim=-1))
    per_template = torch.cat(features).view(len(classnames), len(templates), -1)
    return F.normalize(per_template.mean(dim=1), dim=-1).contiguous()


def _cache_key(backbone: Backbone, classnames: list[str], templates) -> str:
    identity = {"format": _CACHE_FORMAT, "backbone": backbone.describe(), "classnames": list(classnames),
                "templates": [template_text(t) for t in templates], "precision": str(backbone.precision)}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def _read(path: Path, classes: int, width: int) -> torch.Tensor | None:
    if not path.is_file():
        return None
    try:
        features = load_file(str(path))["class_embeddings"]
    except Exception as error:  # a damaged entry is recomputed, never fatal
        log.warning("ignoring unreadable zero-shot cache entry %s: %s", path, error)
        return None
    return features.float() if features.shape == (classes, width) else None
