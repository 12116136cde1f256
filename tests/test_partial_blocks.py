import pytest
import torch
from open_clip.transformer import ResidualAttentionBlock

from dapt_core.engine.partial_blocks import block_forward, is_plain_block


def _block_and_input(seed: int = 0):
    torch.manual_seed(seed)
    block = ResidualAttentionBlock(d_model=32, n_head=4, batch_first=True)
    for parameter in block.parameters():  # frozen, as in tuning: only the input gets a gradient
        parameter.requires_grad_(False)
    x = torch.randn(3, 7, 32, requires_grad=True)
    return block, x


@pytest.mark.parametrize("causal", [False, True])
def test_block_forward_equals_open_clips_block_in_value_and_gradient(causal):
    """block_forward skips nn.MultiheadAttention's layout copies; the text tower's causal mask and
    the gradient reaching the prompts must come out as open_clip's own block computes them."""
    block, x = _block_and_input()
    assert is_plain_block(block)
    mask = torch.full((7, 7), float("-inf")).triu(1) if causal else None
    results = []
    for ours in (True, False):
        x.grad = None
        y = block_forward(block, x, mask) if ours else block(x, attn_mask=mask)
        y.pow(2).sum().backward()
        results.append((y.detach(), x.grad.clone()))
    (y_a, grad_a), (y_b, grad_b) = results
    torch.testing.assert_close(y_a, y_b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_a, grad_b, rtol=1e-4, atol=1e-5 * float(grad_b.abs().max()))
    if causal:  # the mask was applied: the first position cannot see the later ones
        changed = x.detach().clone()
        changed[:, 1:] += 1.0
        with torch.no_grad():
            torch.testing.assert_close(block_forward(block, changed, mask)[:, 0], y_a[:, 0])


def test_block_forward_first_only_is_the_first_row_of_the_whole_block():
    block, x = _block_and_input(1)
    first = block_forward(block, x, first_only=True)
    assert first.shape == (3, 1, 32)
    torch.testing.assert_close(first, block(x)[:, :1], rtol=1e-5, atol=1e-5)
