"""CLIP with learnable prompts: a text context shared by all classes and visual prompt tokens.

Text prompt (CoOp): the token sequence is [SOS] ctx_1..ctx_n [class-name tokens] "." [EOS]; the n
context vectors replace the embeddings of n placeholder tokens and the feature is read at EOS.
Visual prompt (VPT): n tokens inserted after the patch embedding, positional embedding and
ln_pre, between the CLS token and the patch tokens, without positional embedding; "shallow"
feeds them to the first layer only, "deep" replaces them with fresh tokens before every layer.
Every backbone weight stays frozen; only `text_ctx` and `visual_prompt` are parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .backbone import Backbone
from .partial_blocks import block_forward, has_plain_blocks, reads_first_token
from .text_encoder import (
    encode_embedded,
    encode_with_shared_prefix,
    feature_positions,
    is_causal,
    supports_shared_prefix,
)

PLACEHOLDER = "X"  # one BPE token in CLIP's vocabulary; its embedding is replaced by a context vector


# Encoding passes without gradients (prototypes, evaluation, the unknown check) take batches of 100, the
# recipe's test batch. On a CPU a batch that large needs activation buffers beyond malloc's largest
# reusable size, so every batch maps them afresh: a ViT-B-32 forward of 96 images took 3.36 s in one
# batch (560,000 page faults) and 2.91 s in three of 32 (none). The features are the same either way.
CPU_ENCODE_CHUNK = 32


class PromptedCLIP(nn.Module):
    """A frozen CLIP whose text and/or image encoders read learnable prompt vectors.

    Args:
        backbone: the frozen CLIP (see dapt_core.engine.backbone).
        classnames: class names in label order, as they should appear in the prompt.
        text_prompt: learn a text context; otherwise `fixed_text_features` are the classifier.
        visual_prompt: learn visual prompt tokens (vision-transformer backbones only).
        n_ctx / n_vis: number of text context vectors / visual prompt tokens.
        deep_visual: fresh visual prompt tokens before every vision layer instead of the first only.
        fixed_text_features: (C, D) class embeddings used when there is no text prompt.
        generator: randomness for the initial prompt values (seeded by the caller).
        trim_text_padding: stop the text sequence after the longest prompt's EOS (exact with a
            causal mask); False runs all context positions, as the reference code does.
        share_text_prefix: encode [SOS] + context once for all classes and only each class's
            suffix per class (exact with a causal mask; see dapt_core.text_encoder).
    """

    def __init__(self, backbone: Backbone, classnames: list[str], *, text_prompt: bool, visual_prompt: bool,
                 n_ctx: int = 16, n_vis: int = 16, deep_visual: bool = False,
                 fixed_text_features: torch.Tensor | None = None, generator: torch.Generator | None = None,
                 trim_text_padding: bool = True, share_text_prefix: bool = True):
        super().__init__()
        self.backbone = backbone
        self.clip = backbone.model  # registered so .to() and DDP see it; its weights stay frozen
        self.classnames = list(classnames)
        self.n_ctx, self.n_vis, self.deep_visual = n_ctx, n_vis, deep_visual
        device = backbone.device

        if visual_prompt and not backbone.supports_visual_prompt:
            raise ConfigError(
                f"Backbone '{backbone.spec}' has no vision transformer (e.g. a ResNet image tower), so it "
                f"cannot take visual prompts. Use the text-prompt method 'coop' or a ViT backbone.")
        if text_prompt and not backbone.supports_text_prompt:
            raise ConfigError(f"Backbone '{backbone.spec}' has a text tower that cannot take a learned context; "
                              f"use the visual-prompt method 'vpt'.")

        if text_prompt:
            ctx = torch.empty(n_ctx, backbone.text_width).normal_(0.0, 0.02, generator=generator)
            self.text_ctx = nn.Parameter(ctx.to(device))
            self._prepare_text_tokens(classnames, trim_text_padding, share_text_prefix)
        else:
            self.text_ctx = None
            self.shares_text_prefix = False
            if fixed_text_features is None:
                raise ConfigError("Without a text prompt, class text features must be given.")
            self.register_buffer("fixed_text_features", F.normalize(fixed_text_features.float(), dim=-1).to(device))

        if visual_prompt:
            width = backbone.vision_width
            bound = visual_prompt_bound(backbone.patch_size, width)
            layers = len(backbone.visual.transformer.resblocks) if deep_visual else 1
            tokens = torch.empty(layers, n_vis, width).uniform_(-bound, bound, generator=generator)
            self.visual_prompt = nn.Parameter(tokens.to(device))
        else:
            self.visual_prompt = None

    # ----------------------------------------------------------------- text
    def _prepare_text_tokens(self, classnames: list[str], trim_padding: bool = True, share_prefix: bool = True) -> None:
        tower, tokenizer = self.backbone.text_tower, self.backbone.tokenizer
        context = self.backbone.context_length
        placeholder = " ".join([PLACEHOLDER] * self.n_ctx)
        for name in classnames:
            needed = 1 + self.n_ctx + _token_count(tokenizer, name + ".") + 1
            if needed > context:
                raise ConfigError(
                    f"Class name '{name}' is too long for this backbone: {self.n_ctx} context tokens plus the "
                    f"name need {needed} tokens but the text encoder takes {context}. Shorten the name or "
                    f"use fewer context tokens.")
        ids = tokenizer([f"{placeholder} {name}." for name in classnames]).to(self.backbone.device)
        positions = feature_positions(tower, ids)
        # With a causal mask the feature at EOS never sees later (padding) tokens, so the sequence
        # can stop after the longest prompt's EOS: an exact result at a fraction of 77 tokens.
        trim = trim_padding and is_causal(tower)
        length = int(positions.max()) + 1 if trim else ids.shape[1]
        ids = ids[:, :length]
        with torch.no_grad():
            embedded = tower.token_embedding(ids)
        n_prefix = 1 + self.n_ctx
        self.shares_text_prefix = trim and share_prefix and supports_shared_prefix(tower)
        self.register_buffer("token_ids", ids, persistent=False)
        self.register_buffer("token_prefix", embedded[:, :1].clone(), persistent=False)
        self.register_buffer("token_suffix", embedded[:, n_prefix:].clone(), persistent=False)
        if self.shares_text_prefix:
            self.register_buffer("suffix_positions", positions - n_prefix, persistent=False)

    def text_features(self) -> torch.Tensor:
        """L2-normalised class text features, (C, D)."""
        if self.text_ctx is None:
            return self.fixed_text_features
        tower = self.backbone.text_tower
        ctx = self.text_ctx.to(self.token_prefix.dtype)
        if self.shares_text_prefix:  # [SOS] is the same token for every class
            prefix = torch.cat([self.token_prefix[0], ctx])
            features = encode_with_shared_prefix(tower, prefix, self.token_suffix, self.suffix_positions)
        else:
            n_classes = self.token_prefix.shape[0]
            x = torch.cat([self.token_prefix, ctx.unsqueeze(0).expand(n_classes, -1, -1), self.token_suffix], dim=1)
            features = encode_embedded(tower, x, self.token_ids)
        return F.normalize(features.float(), dim=-1)

    # ---------------------------------------------------------------- image
    def image_features(self, images: torch.Tensor, prompted: bool = True) -> torch.Tensor:
        """L2-normalised image features, (B, D); `prompted=False` gives the frozen CLIP's."""
        if images.device.type == "cpu" and len(images) > CPU_ENCODE_CHUNK and not torch.is_grad_enabled():
            return torch.cat([self.image_features(chunk, prompted) for chunk in images.split(CPU_ENCODE_CHUNK)])
        visual = self.backbone.visual
        if self.visual_prompt is None or not prompted:
            if reads_first_token(visual):  # the same as visual(images), its last block at CLS only
                return F.normalize(encode_image_with_prompts(visual, images, None).float(), dim=-1)
            return F.normalize(visual(images).float(), dim=-1)
        prompted = encode_image_with_prompts(visual, images, self.visual_prompt, self.deep_visual)
        return F.normalize(prompted.float(), dim=-1)

    # -------------------------------------------------------------- logits
    @property
    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale.exp().float()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits (B, C), image features (B, D) and text features (C, D), features normalised."""
        text = self.text_features()
        image = self.image_features(images)
        return self.logit_scale * image @ text.t(), image, text

    def prompt_tensors(self) -> dict[str, torch.Tensor]:
        """The learned tensors by name, detached, on the CPU."""
        tensors = {}
        if self.text_ctx is not None:
            tensors["text_ctx"] = self.text_ctx.detach().float().cpu().contiguous()
        if self.visual_prompt is not None:
            tensors["visual_prompt"] = self.visual_prompt.detach().float().cpu().contiguous()
        return tensors

    def load_prompt_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            if self.text_ctx is not None:
                self.text_ctx.copy_(tensors["text_ctx"].to(self.text_ctx))
            if self.visual_prompt is not None:
                self.visual_prompt.copy_(tensors["visual_prompt"].to(self.visual_prompt))

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in (self.text_ctx, self.visual_prompt) if p is not None]


def visual_prompt_bound(patch_size: int, width: int) -> float:
    """Visual prompt tokens start uniform in +-this (the recipe's init: sqrt(6 / (3 p^2 + d)))."""
    return math.sqrt(6.0 / float(3 * patch_size * patch_size + width))


def encode_image_with_prompts(visual: nn.Module, images: torch.Tensor, prompts: torch.Tensor | None,
                              deep: bool = False) -> torch.Tensor:
    """Image embeddings (not normalised) of an open_clip VisionTransformer reading prompt tokens.

    `prompts` is (layers, n, width): layer 0 is inserted after ln_pre between the CLS token and the
    patches; with `deep`, layer i replaces them before block i. The prompt outputs are dropped before
    pooling, so pooling sees the layout the backbone was trained with. With `prompts` None this is
    the frozen tower's own forward. Where the feature is the CLS token, the last block runs for that
    token alone (exact; see partial_blocks). Also used by the demo model's pretraining, which feeds it
    random tokens so that the model learns to tolerate them.
    """
    x = visual._embeds(images)
    batch = x.shape[0]
    n = 0 if prompts is None else prompts.shape[1]
    if n:
        prompts = prompts.to(x.dtype)
        x = torch.cat([x[:, :1], prompts[0].unsqueeze(0).expand(batch, -1, -1), x[:, 1:]], dim=1)
    batch_first = visual.transformer.batch_first
    blocks = visual.transformer.resblocks
    plain = has_plain_blocks(visual.transformer)
    cls_only = reads_first_token(visual)
    for index, block in enumerate(blocks):
        if index > 0 and deep and n:
            x = torch.cat([x[:, :1], prompts[index].unsqueeze(0).expand(batch, -1, -1), x[:, 1 + n:]], dim=1)
        if cls_only and index == len(blocks) - 1:
            # (B, 1, width): the prompts' and patches' outputs are never read
            x = block_forward(block, x, first_only=True)
        elif plain:
            x = block_forward(block, x)
        else:
            x = block(x) if batch_first else block(x.transpose(0, 1)).transpose(0, 1)
    if cls_only:
        pooled = visual.ln_post(x[:, 0])
    else:
        x = torch.cat([x[:, :1], x[:, 1 + n:]], dim=1)
        pooled, _ = visual._pool(x)
    if visual.proj is not None:
        pooled = pooled @ visual.proj
    return pooled


def _token_count(tokenizer, text: str) -> int:
    """Number of BPE tokens of `text` without SOS/EOS."""
    encode = getattr(tokenizer, "encode", None)
    if callable(encode):
        return len(encode(text))
    ids = tokenizer([text])[0]
    return int((ids != 0).sum()) - 2
