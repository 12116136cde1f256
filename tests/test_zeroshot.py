"""Zero-shot class embeddings: stopping at EOS changes nothing, and they are computed once."""

from __future__ import annotations

import pytest
import torch
from open_clip import build_zero_shot_classifier

from dapt_core.engine import zeroshot
from dapt_core.engine.zeroshot import describe_templates, resolve_templates, zero_shot_text_features

CLASSES = ["scratch", "dent on the left edge", "no defect"]


def test_stopping_at_eos_gives_open_clips_full_length_embeddings(tiny_backbone, tmp_path):
    templates = resolve_templates(tiny_backbone, "simple")
    ours = zero_shot_text_features(tiny_backbone, CLASSES, "simple", cache_dir=tmp_path)
    with torch.no_grad():
        full = build_zero_shot_classifier(tiny_backbone.model, tiny_backbone.tokenizer, CLASSES, templates).t()
    assert ours.shape == (3, tiny_backbone.embed_dim)
    torch.testing.assert_close(ours, full.float(), rtol=1e-5, atol=1e-5)


def test_embeddings_are_computed_once_then_read_from_the_cache(tiny_backbone, tmp_path, monkeypatch):
    first = zero_shot_text_features(tiny_backbone, CLASSES, "photo", cache_dir=tmp_path)
    assert len(list((tmp_path / "zero-shot").glob("*.safetensors"))) == 1

    def refuse(*args):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(zeroshot, "encode_templates", refuse)
    assert torch.equal(zero_shot_text_features(tiny_backbone, CLASSES, "photo", cache_dir=tmp_path), first)
    with pytest.raises(AssertionError, match="recomputed"):  # other names, other entry
        zero_shot_text_features(tiny_backbone, CLASSES[:2], "photo", cache_dir=tmp_path)
    with pytest.raises(AssertionError, match="recomputed"):  # other templates, other entry
        zero_shot_text_features(tiny_backbone, CLASSES, "simple", cache_dir=tmp_path)


def test_a_damaged_cache_entry_is_recomputed(tiny_backbone, tmp_path):
    first = zero_shot_text_features(tiny_backbone, CLASSES, "photo", cache_dir=tmp_path)
    entry, = (tmp_path / "zero-shot").glob("*.safetensors")
    entry.write_bytes(b"not a safetensors file")
    again = zero_shot_text_features(tiny_backbone, CLASSES, "photo", cache_dir=tmp_path)
    torch.testing.assert_close(again, first)
    assert entry.stat().st_size > 100  # rewritten


def test_the_template_set_is_described_for_reports(tiny_backbone):
    assert describe_templates(tiny_backbone, "photo") == {"set": "photo", "count": 1, "example": "a photo of a {}."}
    assert describe_templates(tiny_backbone, "openai")["count"] == 80


def test_frozen_test_features_are_encoded_once_and_reused(tiny_backbone, colour_task, tmp_path, monkeypatch):
    """The "before" side of a second evaluation of the same photos reads the cached features:
    same numbers, and only photos not seen before (here: a renamed copy does not count) are encoded."""
    import shutil

    from dapt_core.data.records import LabeledImage
    from dapt_core.engine import evaluation
    from dapt_core.engine.evaluation import evaluate_before_after
    from dapt_core.engine.methods import TuningConfig
    from dapt_core.engine.training import build_model

    model = build_model(tiny_backbone, ["red", "green", "blue"], TuningConfig(method="dapt"))
    items = [LabeledImage(path, label) for label, name in enumerate(["red", "green", "blue"])
             for path in sorted((colour_task / name).iterdir())[:3]]
    zero_shot = zero_shot_text_features(tiny_backbone, ["red", "green", "blue"], "photo", cache_dir=tmp_path)
    first, _ = evaluate_before_after(model, zero_shot, items, cache_dir=tmp_path)

    encoded = []
    real_encode = evaluation.encode_images

    def counting(model, items, **options):
        if not options.get("prompted", True) and options.get("cache") is None:
            encoded.extend(items)
        return real_encode(model, items, **options)

    monkeypatch.setattr(evaluation, "encode_images", counting)
    copy = tmp_path / "renamed.png"
    shutil.copy(items[0].path, copy)
    again, _ = evaluate_before_after(model, zero_shot, items + [LabeledImage(copy, 0)], cache_dir=tmp_path)
    assert encoded == []  # a renamed copy is the same picture: its feature is cached too
    torch.testing.assert_close(again.features[:-1], first.features)
    torch.testing.assert_close(again.features[-1], first.features[0])
    assert again.labels.tolist() == first.labels.tolist() + [0]
    assert again.paths[:-1] == first.paths
