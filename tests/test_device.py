"""Which precision the frozen backbone runs in, and that the reduced-precision CPU path trains."""

import pytest
import torch

from dapt_core.engine.device import PRECISION_ENV, autocast_dtype
from dapt_core.errors import ConfigError

CPU = torch.device("cpu")


def pays():
    return True


def does_not_pay():
    return False


@pytest.fixture
def auto_precision(monkeypatch):
    """Precision left to the product's default (the tests run in fp32)."""
    monkeypatch.setenv(PRECISION_ENV, "auto")


def test_bf16_only_for_wide_towers_where_the_cpu_check_says_it_pays(auto_precision):
    assert autocast_dtype(CPU, 768, pays) is torch.bfloat16  # ViT-B: the matrix products dominate
    assert autocast_dtype(CPU, 768, does_not_pay) is None  # measured slower or no faster on this CPU
    assert autocast_dtype(CPU, 768) is None  # nothing measured: fp32
    asked = []
    assert autocast_dtype(CPU, 192, lambda: asked.append(1) or True) is None  # the demo model: never asked
    assert not asked


def test_fp32_can_be_forced_and_a_wrong_setting_says_what_to_use(auto_precision, monkeypatch):
    monkeypatch.setenv(PRECISION_ENV, "fp32")
    assert autocast_dtype(CPU, 768, pays) is None
    monkeypatch.setenv(PRECISION_ENV, "bf16")
    assert autocast_dtype(CPU, 192, does_not_pay) is torch.bfloat16
    monkeypatch.setenv(PRECISION_ENV, "half")
    with pytest.raises(ConfigError, match="auto, fp32, bf16"):
        autocast_dtype(CPU, 768)


def test_the_cpu_check_measures_once_keeps_the_answer_and_uses_bf16_only_when_it_is_faster(
        tmp_path, monkeypatch):
    from dapt_core.engine import cpu_bf16_check
    from dapt_core.engine.backbone import load_backbone

    visual = load_backbone("demo", "cpu").visual
    measured = []
    monkeypatch.setattr(cpu_bf16_check, "_known", {})
    for speedup, expected in ((2.4, True), (1.1, False)):
        monkeypatch.setattr(cpu_bf16_check, "measure_block_speedup",
                            lambda *args, speedup=speedup: measured.append(speedup) or speedup)
        cache = tmp_path / f"cache-{speedup}"
        assert cpu_bf16_check.bf16_pays(visual, 128, f"a CPU {speedup}", cache) is expected
        assert cpu_bf16_check.bf16_pays(visual, 128, f"a CPU {speedup}", cache) is expected  # from memory
        cpu_bf16_check._known.clear()
        assert cpu_bf16_check.bf16_pays(visual, 128, f"a CPU {speedup}", cache) is expected  # from the file
    assert measured == [2.4, 1.1]


def test_the_block_measurement_times_both_precisions_and_leaves_the_block_as_it_was():
    from dapt_core.engine.backbone import load_backbone
    from dapt_core.engine.cpu_bf16_check import measure_block_speedup

    visual = load_backbone("demo", "cpu").visual
    block = visual.transformer.resblocks[0]
    before = [p.requires_grad for p in block.parameters()]
    speedup = measure_block_speedup(block, 65, visual.transformer.width)
    assert 0.05 < speedup < 20
    assert [p.requires_grad for p in block.parameters()] == before


def test_a_bf16_step_on_the_cpu_gives_the_fp32_losses_closely_and_trains_the_prompts(
        tiny_backbone, monkeypatch):
    from dapt_core.engine.methods import TuningConfig
    from dapt_core.engine.training import build_model, step_losses

    config = TuningConfig(method="dapt", beta_v=10.0, beta_t=0.01)
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 0, 1])
    prototypes = torch.nn.functional.normalize(
        torch.randn(2, tiny_backbone.embed_dim, generator=torch.Generator().manual_seed(1)), dim=-1)
    results = {}
    for precision in ("fp32", "bf16"):
        monkeypatch.setenv(PRECISION_ENV, precision)
        model = build_model(tiny_backbone, ["red", "green"], config)
        assert tiny_backbone.precision is (None if precision == "fp32" else torch.bfloat16)
        terms = step_losses(model, model, images, labels, prototypes, config)
        terms["objective"].backward()
        results[precision] = (terms, model.visual_prompt.grad.clone(), model.text_ctx.grad.clone())
    (fp32, visual32, text32), (bf16, visual16, text16) = results["fp32"], results["bf16"]
    assert not torch.equal(bf16["ce"], fp32["ce"])  # the step did run in bf16
    for key in ("ce", "intra", "inter"):
        torch.testing.assert_close(bf16[key], fp32[key], rtol=0.03, atol=1e-4)
    for ours, theirs in ((visual16, visual32), (text16, text32)):
        assert ours.dtype is torch.float32 and ours.abs().sum() > 0  # the prompts stay fp32 and learn
        assert torch.nn.functional.cosine_similarity(ours.flatten(), theirs.flatten(), dim=0) > 0.95
