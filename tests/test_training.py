import threading

import pytest
import torch

from dapt_core.data.folders import load_split
from dapt_core.engine.experiment import run_experiment
from dapt_core.engine.methods import TuningConfig, epochs_for_shots, learning_rate
from dapt_core.engine.training import build_model, compute_prototypes, tune
from dapt_core.engine.views import ImageViews, collate, model_input
from dapt_core.errors import Cancelled, ConfigError, DataError


@pytest.fixture
def split(colour_task):
    return load_split(colour_task, shots=4, seed=1)


def test_recipe_schedule_and_epochs():
    assert learning_rate(0, 0.5, 10) == 1e-5  # warm-up epoch at a constant 1e-5
    assert learning_rate(1, 0.5, 10) == pytest.approx(0.5)  # then the cosine starts at the base lr
    assert learning_rate(6, 0.5, 10) == pytest.approx(0.25)  # half way through the cosine
    assert 0 < learning_rate(9, 0.5, 10) < learning_rate(8, 0.5, 10)
    assert [epochs_for_shots(k) for k in (1, 2, 4, 8, 16)] == [50, 100, 100, 200, 200]
    assert epochs_for_shots(16, "ImageNet") == 50


def test_method_settings_are_validated():
    assert TuningConfig(method="coop").beta_v == 0.0
    assert TuningConfig(method="dapt", beta_v=0).beta_v == 0.0  # beta 0 switches a loss off
    with pytest.raises(ConfigError, match="dapt"):
        TuningConfig(method="coop", beta_v=1.0)
    with pytest.raises(ConfigError, match="Unknown method"):
        TuningConfig(method="lora")
    with pytest.raises(ConfigError, match="lr"):
        TuningConfig(lr=-1)


def test_backbone_is_bit_identical_after_tuning(tiny_backbone, split):
    before = {k: v.clone() for k, v in tiny_backbone.model.state_dict().items()}
    result = tune(tiny_backbone, split.classnames, split.train, TuningConfig(method="dapt", epochs=3, lr=1.0))
    after = tiny_backbone.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # ...while the prompts did move away from their initial values
    initial = build_model(tiny_backbone, split.classnames, TuningConfig(method="dapt"))
    assert not torch.equal(initial.visual_prompt, result.prompted.visual_prompt)
    assert not torch.equal(initial.text_ctx, result.prompted.text_ctx)


@pytest.mark.parametrize("method, lr", [("coop", 0.002), ("vpt", 1.0), ("dapt", 0.002)])
def test_loss_falls_on_a_separable_task(tiny_backbone, split, method, lr):
    config = TuningConfig(method=method, epochs=15, lr=lr, batch_size=4)
    result = tune(tiny_backbone, split.classnames, split.train, config)
    first, last = result.history[0]["ce"], result.history[-1]["ce"]
    assert last < 0.8 * first
    assert result.history[-1]["train_accuracy"] > 0.9


def test_same_seed_same_prompts_other_seed_other_prompts(tiny_backbone, split):
    def prompts(seed):
        config = TuningConfig(method="dapt", epochs=3, lr=1.0, seed=seed)
        return tune(tiny_backbone, split.classnames, split.train, config).prompted.prompt_tensors()
    one, again, other = prompts(1), prompts(1), prompts(2)
    assert all(torch.equal(one[k], again[k]) for k in one)
    assert not torch.equal(one["visual_prompt"], other["visual_prompt"])


def test_progress_reports_every_step_with_eta(tiny_backbone, split):
    updates = []
    tune(tiny_backbone, split.classnames, split.train, TuningConfig(method="dapt", epochs=3, lr=0.5),
         on_progress=updates.append)
    assert [u.step for u in updates] == list(range(1, len(updates) + 1))
    assert updates[-1].step == updates[-1].total_steps == 3  # 12 images, batch 32: one step per epoch
    assert updates[-1].epoch == 3 and updates[0].lr == 1e-5
    assert all(u.elapsed >= 0 and u.eta >= 0 for u in updates)
    assert updates[-1].eta == 0
    assert all(u.intra > 0 and u.inter > 0 and u.ce > 0 for u in updates)


def test_cancel_stops_quickly_and_returns_nothing(tiny_backbone, split, tmp_path):
    cancel = threading.Event()
    seen = []

    def on_progress(progress):
        seen.append(progress.step)
        if progress.step == 2:
            cancel.set()

    out = tmp_path / "prompts.safetensors"
    with pytest.raises(Cancelled):
        result = run_experiment(tiny_backbone, split, TuningConfig(method="dapt", epochs=50, lr=0.5),
                                on_progress=on_progress, cancel=cancel)
        result.save_prompt_file(out)
    assert seen == [1, 2]
    assert not out.exists()


def test_prototypes_are_frozen_class_means_of_one_augmented_view(tiny_backbone, split):
    config = TuningConfig(method="dapt", seed=3)
    model = build_model(tiny_backbone, split.classnames, config)
    views = ImageViews(split.train, tiny_backbone.preprocessing, train=True, seed=3)
    prototypes = compute_prototypes(model, views, 3, config, {})
    views.set_epoch(-1)
    images = model_input(collate([views[i] for i in range(len(views))]), tiny_backbone.preprocessing, "cpu")
    labels = torch.tensor([item.label for item in split.train])
    with torch.no_grad():
        features = torch.nn.functional.normalize(tiny_backbone.model.encode_image(images), dim=-1)
    for c in range(3):
        assert torch.allclose(prototypes[c], features[labels == c].mean(0), atol=1e-5)
    assert not torch.allclose(prototypes.norm(dim=1), torch.ones(3))  # means are not re-normalised


def test_experiment_scores_before_and_after_on_the_same_images(tiny_backbone, split):
    result = run_experiment(tiny_backbone, split, TuningConfig(method="dapt", epochs=2, lr=0.5))
    metrics = result.metrics()
    assert result.before.paths == result.after.paths
    assert metrics["n_test"] == len(split.test) == 24
    assert set(metrics["dispersion"]["before"]) >= {"intra", "inter"}
    assert sum(map(sum, metrics["confusion"]["after"])) == 24
    assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["zero_shot_accuracy"] <= 1


def test_fewer_than_two_classes_is_a_clear_error(tiny_backbone, split):
    with pytest.raises(DataError, match="two classes"):
        tune(tiny_backbone, ["only"], split.train[:2], TuningConfig(method="coop", epochs=1))


def _count_decodes(monkeypatch) -> list:
    from dapt_core.engine import views as views_module
    decoded, real = [], views_module.load_image
    monkeypatch.setattr(views_module, "load_image", lambda path: decoded.append(path) or real(path))
    return decoded


def test_the_unknown_check_reuses_the_photos_tuning_decoded(tiny_backbone, split, monkeypatch):
    from dapt_core.engine.novelty import NoveltyReference
    tuning = tune(tiny_backbone, split.classnames, split.train, TuningConfig(method="dapt", epochs=1, lr=0.5),
                  keep_decoded=True)
    fresh = NoveltyReference.from_training(tuning.prompted, split.train)
    decodes = _count_decodes(monkeypatch)
    reused = NoveltyReference.from_training(tuning.prompted, split.train, decoded=tuning.decoded)
    assert decodes == []  # 48-px photos are kept whole for a 32-px model: no second decode
    # and the same class means: the views from the kept pixels are PIL's to within a grey level
    torch.testing.assert_close(reused.class_means, fresh.class_means, rtol=0, atol=2e-3)


def test_photos_shrunk_for_tuning_are_decoded_again_for_their_test_view(tiny_backbone, tmp_path, monkeypatch):
    from conftest import write_colour_task

    from dapt_core.engine.novelty import NoveltyReference
    big = load_split(write_colour_task(tmp_path / "big", per_class=4, size=300), shots=2, seed=1)
    tuning = tune(tiny_backbone, big.classnames, big.train, TuningConfig(method="dapt", epochs=1, lr=0.5),
                  keep_decoded=True)
    fresh = NoveltyReference.from_training(tuning.prompted, big.train)
    decodes = _count_decodes(monkeypatch)
    reused = NoveltyReference.from_training(tuning.prompted, big.train, decoded=tuning.decoded)
    assert len(decodes) == len(big.train)  # 300 px is above the 128-px working limit: shrunk, so decoded again
    assert torch.equal(reused.class_means, fresh.class_means)


def test_decoded_photos_are_not_kept_past_the_run(tiny_backbone, split):
    assert tune(tiny_backbone, split.classnames, split.train, TuningConfig(method="coop", epochs=1)).decoded is None
    result = run_experiment(tiny_backbone, split, TuningConfig(method="dapt", epochs=1, lr=0.5))
    assert result.tuning.decoded is None and result.novelty is not None


def test_training_photos_are_decoded_once_up_front_and_a_broken_one_is_still_reported(tiny_backbone, split, tmp_path,
                                                                                    monkeypatch):
    from dapt_core.data.records import LabeledImage
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    items = [*split.train, LabeledImage(broken, 0)]
    views = ImageViews(items, tiny_backbone.preprocessing, train=True)
    views.preload(threads=2)
    decodes = _count_decodes(monkeypatch)
    samples = [views[i] for i in range(len(items))]
    assert decodes == [broken]  # every good photo came from the cache; the broken one is tried again...
    assert samples[-1][0] is None and samples[-1][3]  # ...and reported with its reason, not fatal
    assert all(sample[0] is not None for sample in samples[:-1])

    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(Cancelled):
        ImageViews(items, tiny_backbone.preprocessing, train=True).preload(cancel=cancelled)
