"""Transformer blocks run the way tuning needs them: in batch-first layout, and only at the
positions whose output is read.

open_clip's block calls nn.MultiheadAttention, which works in (length, batch, width) layout: a
batch-first input is transposed on the way in and out, and the packed query/key/value projection
is copied apart into separate tensors, in the forward and again in the backward pass. `block_forward`
computes the same block from the packed projection directly, as views, with the same attention
kernel (scaled_dot_product_attention): the same numbers with fewer copies, about 15-20 % less time
for a CPU forward and backward pass of a ViT-B or a small tower.

A CLIP tower reads one position of its last block's output: the image tower the CLS token (or the
mean of all tokens, for some backbones), the text tower EOS. Attention mixes positions, so every
earlier block must run on every token; the last block, though, only needs its keys and values from
every token, while its queries, attention output projection and MLP (about five sixths of the
block's arithmetic) are needed at the read position alone. Running it that way is exact: layer norm
and the MLP act on each position separately, and a query's attention does not depend on the other
queries.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock
from torch import nn


def is_plain_block(block: nn.Module) -> bool:
    """open_clip's standard self-attention block, whose parts the functions here call."""
    attention = getattr(block, "attn", None)
    return (type(block) is ResidualAttentionBlock and not hasattr(block, "ln_1_kv")
            and isinstance(attention, nn.MultiheadAttention) and attention.batch_first
            and attention._qkv_same_embed_dim and attention.bias_k is None and not attention.add_zero_attn
            and attention.dropout == 0.0)


def has_plain_blocks(transformer: nn.Module) -> bool:
    """Whether an open_clip Transformer is batch-first with plain blocks only (block_forward applies)."""
    blocks = getattr(transformer, "resblocks", None)
    return (blocks is not None and getattr(transformer, "batch_first", False)
            and all(is_plain_block(block) for block in blocks))


def run_blocks(transformer: nn.Module, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
    """transformer(x, attn_mask) (open_clip's Transformer takes `x` batch-first either way), through
    block_forward where it applies."""
    if not has_plain_blocks(transformer) or getattr(transformer, "grad_checkpointing", False):
        return transformer(x, attn_mask=attn_mask)
    for block in transformer.resblocks:
        x = block_forward(block, x, attn_mask)
    return x


def reads_first_token(visual: nn.Module) -> bool:
    """Whether an open_clip VisionTransformer's feature is its last block's first (CLS) token, through
    plain blocks: then that block can run for the CLS query alone."""
    transformer = getattr(visual, "transformer", None)
    return (transformer is not None and len(getattr(transformer, "resblocks", ())) > 0
            and has_plain_blocks(transformer)
            and getattr(visual, "attn_pool", None) is None and getattr(visual, "pool_type", None) == "tok")


def block_forward(block: ResidualAttentionBlock, x: torch.Tensor, attn_mask: torch.Tensor | None = None,
                  first_only: bool = False) -> torch.Tensor:
    """block(x, attn_mask) of a plain block (see is_plain_block) on a batch-first `x` (B, L, width).

    With `first_only`, the output at position 0 alone, (B, 1, width), equal to block(x)[:, :1]:
    keys and values still come from every position (no mask then)."""
    attention = block.attn
    batch, length, width = x.shape
    heads = attention.num_heads
    weight, bias = attention.in_proj_weight, attention.in_proj_bias
    normed = block.ln_1(x)
    if first_only:
        q = F.linear(normed[:, :1], weight[:width], None if bias is None else bias[:width])
        k, v = F.linear(normed, weight[width:], None if bias is None else bias[width:]).chunk(2, dim=-1)
        q, k, v = (split_heads(t, heads) for t in (q, k, v))
        x, length = x[:, :1], 1
    else:
        qkv = F.linear(normed, weight, bias).view(batch, length, 3, heads, width // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, L, head_width), views
    if attn_mask is not None:
        attn_mask = attn_mask.to(q.dtype)
    mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    mixed = mixed.transpose(1, 2).reshape(batch, length, width)
    x = x + block.ls_1(attention.out_proj(mixed))
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def split_heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    """(..., L, width) -> (..., heads, L, head_width), a view."""
    return t.unflatten(-1, (heads, t.shape[-1] // heads)).transpose(-3, -2)
