"""Transformer blocks run only at the positions whose output is read.

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
from open_clip.transformer import ResidualAttentionBlock
from torch import nn


def is_plain_block(block: nn.Module) -> bool:
    """open_clip's standard self-attention block, whose parts the functions here call."""
    attention = getattr(block, "attn", None)
    return (type(block) is ResidualAttentionBlock and not hasattr(block, "ln_1_kv")
            and isinstance(attention, nn.MultiheadAttention) and attention.batch_first
            and attention._qkv_same_embed_dim and attention.bias_k is None and not attention.add_zero_attn)


def reads_first_token(visual: nn.Module) -> bool:
    """Whether an open_clip VisionTransformer's feature is its last block's first (CLS) token, through
    plain blocks: then that block can run for the CLS query alone."""
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    return (blocks is not None and len(blocks) > 0 and getattr(visual.transformer, "batch_first", False)
            and getattr(visual, "attn_pool", None) is None and getattr(visual, "pool_type", None) == "tok"
            and all(is_plain_block(block) for block in blocks))


def first_token_output(block: ResidualAttentionBlock, x: torch.Tensor) -> torch.Tensor:
    """The block's output at position 0 only, (B, 1, width), of the input `x` (B, L, width) with no
    attention mask: equal to block(x)[:, :1]."""
    normed = block.ln_1(x)
    query = normed[:, :1]
    y = x[:, :1] + block.ls_1(block.attention(q_x=query, k_x=normed, v_x=normed))
    return y + block.ls_2(block.mlp(block.ln_2(y)))
