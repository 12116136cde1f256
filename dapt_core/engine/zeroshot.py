"""Zero-shot CLIP: class embeddings from open_clip's prompt templates, no training."""

from __future__ import annotations

import torch
from open_clip import build_zero_shot_classifier
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES

from ..errors import ConfigError
from .backbone import Backbone
from .device import autocast
from .methods import TEMPLATE_SET_NAMES

TEMPLATE_SETS = {
    "auto": None,                         # the backbone's own templates if it names some, else "openai"
    "openai": OPENAI_IMAGENET_TEMPLATES,  # CLIP's 80-template ensemble
    "simple": SIMPLE_IMAGENET_TEMPLATES,  # the 7-template subset open_clip recommends
    "photo": ("a photo of a {}.",),       # the single template of CoOp's baseline tables
}
DEFAULT_TEMPLATES = "auto"
assert tuple(TEMPLATE_SETS) == TEMPLATE_SET_NAMES  # the names the CLI and the config offer


def resolve_templates(backbone: Backbone, templates: str = DEFAULT_TEMPLATES):
    """The prompt templates of a template-set name; "auto" prefers the backbone's own (the demo
    model was trained on inspection captions, not on the web captions CLIP's 80 templates imitate)."""
    if templates not in TEMPLATE_SETS:
        raise ConfigError(f"Unknown template set '{templates}'. Choose one of: {', '.join(TEMPLATE_SETS)}.")
    if templates == "auto":
        return backbone.zero_shot_templates or OPENAI_IMAGENET_TEMPLATES
    return TEMPLATE_SETS[templates]


def zero_shot_text_features(backbone: Backbone, classnames: list[str],
                            templates: str = DEFAULT_TEMPLATES) -> torch.Tensor:
    """(C, D) L2-normalised class embeddings: each class's mean over the template set."""
    with autocast(backbone.device):
        weights = build_zero_shot_classifier(
            backbone.model, backbone.tokenizer, classnames, resolve_templates(backbone, templates),
            num_classes_per_batch=10, device=backbone.device)
    return weights.t().float().contiguous()
