"""The plain reference DAPT of benchmarks/ and the engine compute the same losses and gradients.

benchmarks/vs_reference.py times `dapt tune` against benchmarks/reference_dapt.py; the ratio only
means something if both optimise the same objective. Same weights, same initial prompts, same
batch, fp32: the engine's loss terms and prompt gradients must equal the reference's, although the
engine stops the text sequence at EOS and the reference runs all 77 positions.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import register_tiny

from dapt_core.engine.backbone import load_backbone
from dapt_core.engine.methods import TuningConfig
from dapt_core.engine.training import build_model, step_losses

ROOT = Path(__file__).resolve().parent.parent
# CLS-token pooling and the full 77-token context, as the authors' CLIP has.
CLS_POOLED = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def _load_reference():
    spec = importlib.util.spec_from_file_location("reference_dapt", ROOT / "benchmarks" / "reference_dapt.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference():
    return _load_reference()


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    name = register_tiny(tmp_path_factory.mktemp("configs"), "dapt-tiny-cls", CLS_POOLED)
    return load_backbone(f"{name}:random", "cpu")


CLASSES = ["scratch", "dent on the left edge", "no defect", "rust"]


def test_same_initial_prompts_losses_and_gradients_as_the_reference(reference, backbone):
    config = TuningConfig(method="dapt", lr=0.002, beta_v=10.0, beta_t=0.01, seed=3)
    ours = build_model(backbone, CLASSES, config)
    plain = reference.ReferenceDAPT(backbone.model, backbone.tokenizer, CLASSES, seed=3)
    assert torch.equal(plain.prompt_learner.ctx.detach(), ours.text_ctx.detach())
    assert torch.equal(plain.image_encoder.prompt.detach(), ours.visual_prompt.detach())
    assert ours.token_ids.shape[1] < plain.prompt_learner.tokenized_prompts.shape[1] == 77

    generator = torch.Generator().manual_seed(0)
    images = torch.randn(6, 3, 32, 32, generator=generator)
    labels = torch.tensor([0, 1, 2, 3, 0, 2])
    prototypes = F.normalize(torch.randn(len(CLASSES), 32, generator=generator), dim=-1) * 0.9

    expected = reference.dapt_losses(plain, images, labels, prototypes, beta_v=10.0, beta_t=0.01)
    expected["total"].backward()
    terms = step_losses(ours, ours, images, labels, prototypes, config)
    terms["objective"].backward()

    for name, theirs in (("ce", "ce"), ("intra", "intra"), ("inter", "inter"), ("loss", "total")):
        assert terms[name].item() == pytest.approx(expected[theirs].item(), rel=1e-5, abs=1e-7), name
    assert terms["objective"].item() == pytest.approx(expected["total"].item(), rel=1e-5)
    assert int(terms["correct"]) == int((expected["logits"].argmax(1) == labels).sum())
    for mine, theirs in ((ours.text_ctx.grad, plain.prompt_learner.ctx.grad),
                         (ours.visual_prompt.grad, plain.image_encoder.prompt.grad)):
        # fp32 sums in another order: equal to a few parts in 1e5 of the gradient's size
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5 * float(theirs.abs().max()))
    assert ours.text_ctx.grad.abs().sum() > 0 and ours.visual_prompt.grad.abs().sum() > 0


def test_the_end_to_end_benchmark_runs_both_sides_on_the_same_task(tmp_path, monkeypatch):
    """benchmarks/vs_reference.py on a tiny task: the reference and `dapt tune` both accept the
    shared settings and finish (a setting one side does not know once broke the benchmark)."""
    import json
    import os
    import sys

    spec = importlib.util.spec_from_file_location("vs_reference", ROOT / "benchmarks" / "vs_reference.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "vs_reference", bench)  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    config = tmp_path / "dapt-reference-tiny.json"
    config.write_text(json.dumps(CLS_POOLED))
    data = bench.write_task(tmp_path / "task", classes=3, shots=2, test_per_class=1, size=32)
    preset = bench.Preset(config.stem, shots=2, epochs=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "DAPT_MODEL_CONFIGS": str(config),
           "PYTHONPATH": str(ROOT)}
    runs = [bench.run_reference(data, preset, env, config), bench.run_ours(data, preset, env, tmp_path)]
    for run in runs:
        assert 0 < run.train <= run.wall and run.train_cpu > 0 and run.peak_rss_mib > 0
