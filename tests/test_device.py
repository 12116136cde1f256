"""Which precision the frozen backbone runs in, and that the reduced-precision CPU path trains."""

import pytest
import torch

from dapt_core.engine import device as device_module
from dapt_core.engine.device import PRECISION_ENV, autocast_dtype
from dapt_core.errors import ConfigError

CPU = torch.device("cpu")


@pytest.fixture
def amx_cpu(monkeypatch):
    """A CPU with AMX tiles, precision left to the default."""
    monkeypatch.setattr(device_module, "cpu_has_amx", lambda: True)
    monkeypatch.setenv(PRECISION_ENV, "auto")


def test_bf16_only_for_wide_towers_on_cpus_with_amx(amx_cpu, monkeypatch):
    assert autocast_dtype(CPU, 768) is torch.bfloat16  # ViT-B: the matrix products dominate
    assert autocast_dtype(CPU, 192) is None  # the demo model: casts would cost what bf16 saves
    assert autocast_dtype(CPU) is None
    monkeypatch.setattr(device_module, "cpu_has_amx", lambda: False)
    assert autocast_dtype(CPU, 768) is None


def test_fp32_can_be_forced_and_a_wrong_setting_says_what_to_use(amx_cpu, monkeypatch):
    monkeypatch.setenv(PRECISION_ENV, "fp32")
    assert autocast_dtype(CPU, 768) is None
    monkeypatch.setenv(PRECISION_ENV, "half")
    with pytest.raises(ConfigError, match="auto, fp32"):
        autocast_dtype(CPU, 768)


def test_a_bf16_step_on_the_cpu_gives_the_fp32_losses_closely_and_trains_the_prompts(
        tiny_backbone, amx_cpu, monkeypatch):
    from dapt_core.engine.methods import TuningConfig
    from dapt_core.engine.training import build_model, step_losses

    config = TuningConfig(method="dapt", beta_v=10.0, beta_t=0.01)
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 0, 1])
    prototypes = torch.nn.functional.normalize(
        torch.randn(2, tiny_backbone.embed_dim, generator=torch.Generator().manual_seed(1)), dim=-1)
    results = {}
    for precision, min_width in (("fp32", 512), ("auto", 0)):  # the tiny tower is narrow: lower the bar
        monkeypatch.setenv(PRECISION_ENV, precision)
        monkeypatch.setattr(device_module, "CPU_BF16_MIN_WIDTH", min_width)
        model = build_model(tiny_backbone, ["red", "green"], config)
        assert tiny_backbone.precision is (None if precision == "fp32" else torch.bfloat16)
        terms = step_losses(model, model, images, labels, prototypes, config)
        terms["objective"].backward()
        results[precision] = (terms, model.visual_prompt.grad.clone(), model.text_ctx.grad.clone())
    (fp32, visual32, text32), (bf16, visual16, text16) = results["fp32"], results["auto"]
    assert not torch.equal(bf16["ce"], fp32["ce"])  # the step did run in bf16
    for key in ("ce", "intra", "inter"):
        torch.testing.assert_close(bf16[key], fp32[key], rtol=0.03, atol=1e-4)
    for ours, theirs in ((visual16, visual32), (text16, text32)):
        assert ours.dtype is torch.float32 and ours.abs().sum() > 0  # the prompts stay fp32 and learn
        assert torch.nn.functional.cosine_similarity(ours.flatten(), theirs.flatten(), dim=0) > 0.95
