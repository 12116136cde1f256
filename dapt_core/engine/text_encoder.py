"""CLIP's text transformer run only where it has to: up to EOS, and a shared prompt prefix once.

CLIP's text transformer is causal: position i attends to positions <= i only. Two exact savings
follow, and dapt_core uses both:

  - The feature is read at EOS, so nothing after the longest sequence's EOS can change it: the
    sequence stops there instead of at the 77th token (zero-shot templates and learned prompts).
  - With one learned context shared by all classes, [SOS] ctx_1..ctx_n is the same for every
    class, and so are its hidden states at every layer. They are computed once (batch 1); each
    class then runs only its own suffix (name tokens, ".", EOS), whose attention reads the shared
    prefix's keys and values. The context still gets its gradient, through the prefix.

At 1,000 classes that is about 6 suffix tokens per class instead of 77 positions. Where the
suffix activations of many classes would not fit comfortably in memory, they are computed in
chunks of classes with gradient checkpointing (recomputed in the backward pass), so memory
stays bounded whatever the class count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock, text_global_pool
from torch import nn
from torch.utils.checkpoint import checkpoint

from .partial_blocks import block_forward, has_plain_blocks, run_blocks, split_heads

# Above this estimate of the suffixes' saved activations, classes are encoded in checkpointed
# chunks: a 1,000-class ViT-B text tower stays near this instead of growing with the class count.
ACTIVATION_BUDGET_BYTES = 1 << 30
# Floats saved per token, layer and unit of width in a block's backward (ln, qkv, attention
# output, residuals, the 4x-wide MLP before and after GELU): an estimate, used only for chunking.
SAVED_FLOATS_PER_TOKEN_WIDTH = 16


def pooling(tower: nn.Module) -> tuple[str, int | None]:
    """The tower's (pool type, EOS id): where its text feature is read."""
    pool_type = getattr(tower, "pool_type", None) or getattr(tower, "text_pool_type", "argmax")
    eos_id = getattr(tower, "eos_id", None) or getattr(tower, "text_eos_id", None)
    return pool_type, eos_id


def feature_positions(tower: nn.Module, ids: torch.Tensor) -> torch.Tensor | None:
    """(N,) position of each sequence's text feature, or None if the tower pools otherwise."""
    pool_type, eos_id = pooling(tower)
    if pool_type == "argmax":
        return ids.argmax(dim=-1)
    if pool_type == "eos":
        return (ids == eos_id).int().argmax(dim=-1)
    return None


def is_causal(tower: nn.Module) -> bool:
    """Whether the tower's attention is causal and its feature is read at one known position
    (then stopping at EOS and sharing a prefix are exact)."""
    return (getattr(tower, "attn_mask", None) is not None and getattr(tower, "cls_emb", None) is None
            and pooling(tower)[0] in ("argmax", "eos"))


def supports_shared_prefix(tower: nn.Module) -> bool:
    """Shared-prefix encoding needs open_clip's standard blocks (self-attention, no custom norms)."""
    return is_causal(tower) and has_plain_blocks(tower.transformer)


def project(tower: nn.Module, pooled: torch.Tensor) -> torch.Tensor:
    projection = tower.text_projection
    if isinstance(projection, nn.Linear):
        return projection(pooled)
    if projection is not None:
        return pooled @ projection
    return pooled


def encode_embedded(tower: nn.Module, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Text features (not normalised) of embedded sequences `x` (N, L, width) with token ids
    `ids` (N, L); L may stop short of the context length where the tower is causal."""
    length = x.shape[1]
    cast = tower.transformer.get_cast_dtype()
    x = x.to(cast) + tower.positional_embedding[:length].to(cast)
    mask = tower.attn_mask[:length, :length] if tower.attn_mask is not None else None
    x = tower.ln_final(run_blocks(tower.transformer, x, mask))
    pool_type, eos_id = pooling(tower)
    return project(tower, text_global_pool(x, ids, pool_type, eos_token_id=eos_id))


def encode_with_shared_prefix(tower: nn.Module, prefix: torch.Tensor, suffix: torch.Tensor,
                              positions: torch.Tensor) -> torch.Tensor:
    """Text features (not normalised) of the sequences [prefix, suffix_c] for every class c.

    Args:
        tower: a causal open_clip text tower (see supports_shared_prefix).
        prefix: (P, width) embedded tokens shared by every sequence ([SOS] and the context).
        suffix: (C, S, width) each class's embedded tokens after the prefix, padded to S.
        positions: (C,) index of each class's feature (EOS) within its suffix.
    """
    cast = tower.transformer.get_cast_dtype()
    n_prefix, n_suffix = prefix.shape[0], suffix.shape[1]
    position = tower.positional_embedding.to(cast)
    x = (prefix.to(cast) + position[:n_prefix]).unsqueeze(0)
    # The prefix alone, once; each block's input is kept: the suffixes attend to its keys/values.
    prefix_inputs = []
    for block in tower.transformer.resblocks:
        prefix_inputs.append(x[0])
        x = block_forward(block, x, tower.attn_mask[:n_prefix, :n_prefix])
    suffix = suffix.to(cast) + position[n_prefix:n_prefix + n_suffix]

    def run(chunk: torch.Tensor, chunk_positions: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
        blocks = tower.transformer.resblocks
        for index, (block, block_prefix) in enumerate(zip(blocks, inputs)):
            # The last block only at each class's EOS, the one output that is read (see partial_blocks).
            read = chunk_positions if index == len(blocks) - 1 else None
            chunk = _suffix_block(block, chunk, block_prefix, read)
        return project(tower, tower.ln_final(chunk[:, 0]))

    classes = suffix.shape[0]
    chunk_size = _chunk_size(classes, n_suffix, tower.transformer.width, len(prefix_inputs))
    if chunk_size >= classes or not torch.is_grad_enabled():
        return run(suffix, positions, *prefix_inputs)
    outputs = [checkpoint(run, suffix[start:start + chunk_size], positions[start:start + chunk_size],
                          *prefix_inputs, use_reentrant=False)
               for start in range(0, classes, chunk_size)]
    return torch.cat(outputs)


def _chunk_size(classes: int, tokens: int, width: int, layers: int) -> int:
    per_class = tokens * width * layers * SAVED_FLOATS_PER_TOKEN_WIDTH * 4
    return max(1, min(classes, ACTIVATION_BUDGET_BYTES // max(1, per_class)))


def _suffix_block(block: ResidualAttentionBlock, x: torch.Tensor, prefix: torch.Tensor,
                  read: torch.Tensor | None = None) -> torch.Tensor:
    """One residual block for the suffix tokens `x` (C, S, width) of sequences whose first tokens
    (this block's input `prefix`, (P, width)) are shared; equals the block on the whole sequence.
    With `read` ((C,) positions in the suffix), only the output at each class's position is
    computed, (C, 1, width): keys and values still come from every token up to it."""
    attention = block.attn
    width, heads = attention.embed_dim, attention.num_heads
    head_width = width // heads
    classes, n_suffix = x.shape[:2]
    weight, bias = attention.in_proj_weight, attention.in_proj_bias
    if read is not None:
        rows = torch.arange(classes, device=x.device)
        residual = x[rows, read].unsqueeze(1)  # (C, 1, width)
        normed = block.ln_1(x)
        q = F.linear(normed[rows, read].unsqueeze(1), weight[:width], None if bias is None else bias[:width])
        k, v = F.linear(normed, weight[width:], None if bias is None else bias[width:]).chunk(2, dim=-1)
        later = torch.arange(n_suffix, device=x.device)[None, :] > read[:, None]  # (C, S)
        later = later[:, None, None, :]  # against the one query of each class
    else:
        residual = x
        q, k, v = F.linear(block.ln_1(x), weight, bias).chunk(3, dim=-1)
        later = torch.ones(n_suffix, n_suffix, dtype=torch.bool, device=x.device).triu(1)
    prefix_k, prefix_v = F.linear(block.ln_1(prefix), weight[width:],
                                  None if bias is None else bias[width:]).chunk(2, dim=-1)

    q = split_heads(q, heads) * head_width ** -0.5
    k, v = split_heads(k, heads), split_heads(v, heads)
    prefix_k, prefix_v = split_heads(prefix_k, heads), split_heads(prefix_v, heads)  # (heads, P, head_width)
    # Scores against the shared prefix (every suffix token sees all of it) and, causally, against
    # the suffix; one softmax over both. The prefix keys are broadcast, never copied per class.
    to_prefix = q @ prefix_k.transpose(-1, -2)
    to_suffix = (q @ k.transpose(-1, -2)).masked_fill(later, float("-inf"))
    weights = torch.softmax(torch.cat([to_prefix, to_suffix], dim=-1), dim=-1)
    n_prefix = prefix.shape[0]
    mixed = weights[..., :n_prefix] @ prefix_v + weights[..., n_prefix:] @ v
    mixed = mixed.transpose(-3, -2).reshape(classes, q.shape[-2], width)
    x = residual + block.ls_1(attention.out_proj(mixed))
    return x + block.ls_2(block.mlp(block.ln_2(x)))
