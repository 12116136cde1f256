import math

import pytest
import torch
import torch.nn.functional as F

from dapt_core.engine.prompts import CPU_ENCODE_CHUNK, PromptedCLIP
from dapt_core.errors import ConfigError


def make(backbone, **kwargs):
    options = dict(text_prompt=True, visual_prompt=True, generator=torch.Generator().manual_seed(0))
    options.update(kwargs)
    return PromptedCLIP(backbone, ["red", "green apple"], **options)


def test_text_context_replaces_the_tokens_after_sos(tiny_backbone):
    """With the context set to the embeddings of real words, the prompted encoder must give
    exactly CLIP's own encoding of the written sentence: proves the placement
    [SOS] ctx [name] . [EOS], the EOS read-out and that shortening the sequence is exact."""
    words = "a photo of a"
    tokenizer = tiny_backbone.tokenizer
    word_ids = tokenizer([words])[0][1:5]
    model = make(tiny_backbone, n_ctx=4, visual_prompt=False, fixed_text_features=None)
    with torch.no_grad():
        model.text_ctx.copy_(tiny_backbone.model.token_embedding(word_ids))
        ours = model.text_features()
        reference = tiny_backbone.model.encode_text(tokenizer([f"{words} red.", f"{words} green apple."]))
    assert torch.allclose(ours, F.normalize(reference, dim=-1), atol=1e-5)
    assert model.token_ids.shape[1] < tiny_backbone.context_length  # padding was cut off


def test_visual_prompt_sits_between_cls_and_patches_without_position(tiny_backbone):
    model = make(tiny_backbone, n_vis=5)
    seen = {}
    # a block's input is its first layer norm's input, whichever way the block is run
    hook = tiny_backbone.visual.transformer.resblocks[0].ln_1.register_forward_pre_hook(
        lambda module, args: seen.setdefault("x", args[0].detach().clone()))
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        model.image_features(images)
        embeds = tiny_backbone.visual._embeds(images)
    hook.remove()
    x = seen["x"]
    assert x.shape[1] == embeds.shape[1] + 5
    assert torch.equal(x[:, 0], embeds[:, 0])  # CLS first
    assert torch.equal(x[:, 1:6], model.visual_prompt[0].expand(2, -1, -1))  # prompts, untouched
    assert torch.equal(x[:, 6:], embeds[:, 1:])  # then the patches


def test_visual_prompt_changes_features_and_order_of_tokens_does_not(tiny_backbone):
    model = make(tiny_backbone, n_vis=4)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        prompted = model.image_features(images)
        frozen = model.image_features(images, prompted=False)
        model.visual_prompt.copy_(model.visual_prompt[:, [3, 1, 0, 2]])
        permuted = model.image_features(images)
    assert not torch.allclose(prompted, frozen)
    # no positional embedding on prompts: attention cannot tell their order
    assert torch.allclose(prompted, permuted, atol=1e-5)



@pytest.mark.parametrize("prompted", [True, False])
def test_a_large_batch_on_the_cpu_gives_each_image_the_features_it_has_alone(tiny_backbone, prompted):
    """Passes without gradients encode a large batch in chunks on the CPU (faster there); every image's
    features must be what it gets on its own, and the order must be kept."""
    model = make(tiny_backbone, n_vis=4)
    images = torch.randn(2 * CPU_ENCODE_CHUNK + 5, 3, 32, 32)
    with torch.no_grad():
        batched = model.image_features(images, prompted=prompted)
        alone = torch.cat([model.image_features(image[None], prompted=prompted) for image in images])
    assert batched.shape == alone.shape
    assert torch.allclose(batched, alone, atol=1e-5)
    if prompted:  # with gradients (a training step) the prompt still gets its gradient
        model.image_features(images, prompted=True).sum().backward()
        assert model.visual_prompt.grad is not None and model.visual_prompt.grad.abs().sum() > 0

def test_deep_prompt_gives_fresh_tokens_to_every_layer(tiny_backbone):
    model = make(tiny_backbone, n_vis=3, deep_visual=True)
    assert model.visual_prompt.shape[0] == len(tiny_backbone.visual.transformer.resblocks)
    seen = {}
    hook = tiny_backbone.visual.transformer.resblocks[1].ln_1.register_forward_pre_hook(
        lambda module, args: seen.setdefault("x", args[0].detach().clone()))
    with torch.no_grad():
        model.image_features(torch.randn(1, 3, 32, 32))
    hook.remove()
    assert torch.equal(seen["x"][0, 1:4], model.visual_prompt[1])


def test_initialisation_follows_the_recipe(tiny_backbone):
    model = PromptedCLIP(tiny_backbone, [f"class {i}" for i in range(3)], text_prompt=True, visual_prompt=True,
                         n_ctx=16, n_vis=16, generator=torch.Generator().manual_seed(0))
    assert model.text_ctx.shape == (16, tiny_backbone.text_width)
    assert 0.01 < model.text_ctx.std().item() < 0.03
    bound = math.sqrt(6.0 / (3 * 8 * 8 + 32))
    assert model.visual_prompt.abs().max().item() <= bound
    assert model.visual_prompt.abs().max().item() > 0.8 * bound


def test_only_prompts_receive_gradients(tiny_backbone):
    model = make(tiny_backbone)
    logits, image, text = model(torch.randn(4, 3, 32, 32))
    F.cross_entropy(logits, torch.tensor([0, 1, 0, 1])).backward()
    assert model.text_ctx.grad is not None and model.text_ctx.grad.abs().sum() > 0
    assert model.visual_prompt.grad is not None and model.visual_prompt.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in tiny_backbone.model.parameters())
    assert set(model.prompt_tensors()) == {"text_ctx", "visual_prompt"}


def test_class_name_too_long_for_the_context_is_refused(tiny_backbone):
    with pytest.raises(ConfigError, match="too long"):
        PromptedCLIP(tiny_backbone, ["ok", "word " * 20], text_prompt=True, visual_prompt=False, n_ctx=16)


CLASSES = ["red", "green apple", "a very long and winding class name", "x"]


@pytest.mark.parametrize("budget", [None, 1])  # 1 byte: every class its own checkpointed chunk
def test_shared_prefix_equals_the_full_length_sequence_forward_and_gradient(tiny_backbone, monkeypatch, budget):
    """[SOS] + context is encoded once and each class runs only its suffix against the prefix's
    keys/values; logits, text features and the context's gradient must match running every class
    over every context position (and the chunked, checkpointed path must match too)."""
    from dapt_core.engine import text_encoder
    if budget is not None:
        monkeypatch.setattr(text_encoder, "ACTIVATION_BUDGET_BYTES", budget)
    shared = PromptedCLIP(tiny_backbone, CLASSES, text_prompt=True, visual_prompt=True,
                          generator=torch.Generator().manual_seed(5))
    full = PromptedCLIP(tiny_backbone, CLASSES, text_prompt=True, visual_prompt=True,
                        generator=torch.Generator().manual_seed(5), trim_text_padding=False, share_text_prefix=False)
    assert shared.shares_text_prefix and not full.shares_text_prefix
    assert shared.token_suffix.shape[1] < full.token_ids.shape[1] - 1 - shared.n_ctx
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    results = []
    for model in (shared, full):
        logits, _, text = model(images)
        (logits.logsumexp(dim=1).sum() + text[:, :5].pow(3).sum()).backward()
        results.append((logits.detach(), text.detach(), model.text_ctx.grad.clone()))
    (logits_a, text_a, grad_a), (logits_b, text_b, grad_b) = results
    torch.testing.assert_close(text_a, text_b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits_a, logits_b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_a, grad_b, rtol=1e-4, atol=1e-5 * float(grad_b.abs().max()))
    assert grad_a.abs().sum() > 0


def test_a_mean_pooled_image_tower_keeps_its_whole_last_block(tiny_backbone):
    from dapt_core.engine.prompts import reads_first_token

    assert not reads_first_token(tiny_backbone.visual)  # mean pooling reads every patch's output


def test_shared_prefix_is_not_used_where_it_would_be_wrong(tiny_backbone):
    full = PromptedCLIP(tiny_backbone, CLASSES, text_prompt=True, visual_prompt=False,
                        generator=torch.Generator().manual_seed(0), trim_text_padding=False)
    assert not full.shares_text_prefix  # the reference's 77-token mode stays the plain computation
    assert full.token_ids.shape[1] == tiny_backbone.context_length


@pytest.mark.parametrize("deep", [False, True])
def test_last_image_block_at_cls_only_equals_the_whole_block_forward_and_gradient(tmp_path, monkeypatch, deep):
    """The last vision block runs for the CLS query alone (its only output that is read): image
    features and the visual prompt's gradient must match running it on every token, and the
    unprompted path must match the tower's own forward."""
    from conftest import TINY_CONFIG, register_tiny

    from dapt_core.engine import prompts
    from dapt_core.engine.backbone import load_backbone

    config = {**TINY_CONFIG, "vision_cfg": {**TINY_CONFIG["vision_cfg"], "pool_type": "tok"}}  # CLIP's own pooling
    tiny_backbone = load_backbone(f"{register_tiny(tmp_path, 'dapt-tiny-cls', config)}:random", "cpu")
    assert prompts.reads_first_token(tiny_backbone.visual)
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    results = []
    for trimmed in (True, False):
        if not trimmed:
            monkeypatch.setattr(prompts, "reads_first_token", lambda visual: False)
        model = make(tiny_backbone, n_vis=4, deep_visual=deep, text_prompt=False,
                     fixed_text_features=torch.randn(2, tiny_backbone.embed_dim))
        features = model.image_features(images)
        features[:, :3].pow(3).sum().backward()
        with torch.no_grad():
            frozen = model.image_features(images, prompted=False)
        results.append((features.detach(), model.visual_prompt.grad.clone(), frozen))
    (features_a, grad_a, frozen_a), (features_b, grad_b, frozen_b) = results
    torch.testing.assert_close(features_a, features_b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_a, grad_b, rtol=1e-4, atol=1e-5 * float(grad_b.abs().max()))
    assert grad_a.abs().sum() > 0
    with torch.no_grad():
        own = F.normalize(tiny_backbone.visual(images).float(), dim=-1)
    torch.testing.assert_close(frozen_a, own, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(frozen_b, own, rtol=1e-5, atol=1e-5)
