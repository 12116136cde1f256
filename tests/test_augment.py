"""Training augmentation: the presets' promises, batched rendering faithful to the recipe, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import functional as TF

from dapt_core.data.records import LabeledImage
from dapt_core.engine.augment import (
    INSPECTION_CROP_FLOOR,
    Augmentation,
    render_views,
    working_image,
)
from dapt_core.engine.methods import TuningConfig
from dapt_core.engine.transforms import Preprocessing, view_generator
from dapt_core.engine.views import ImageViews, collate, model_input
from dapt_core.errors import ConfigError

PREP = Preprocessing(size=32)


def _gradient_image(width: int = 96, height: int = 64) -> Image.Image:
    """Dark at the top, bright at the bottom, and a red left half: orientation is visible."""
    rows = np.linspace(20, 235, height)[:, None].repeat(width, axis=1)
    pixels = np.stack([rows, rows, rows], axis=-1)
    pixels[:, : width // 2, 0] = 255
    return Image.fromarray(pixels.astype(np.uint8))


def _views(aug: Augmentation, image: Image.Image, n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    source = working_image(image, aug.working_limit(PREP.size))
    params = torch.tensor([aug.draw(source.shape[2], source.shape[1], view_generator(seed, epoch, 0))
                           for epoch in range(n)])
    return render_views([source] * n, params, PREP, "cpu"), params


def test_inspection_crops_keep_the_floor_and_never_turn_unless_allowed():
    aug = Augmentation.of("inspection", rotations=False)
    for width, height in ((96, 64), (64, 64), (40, 200)):
        source = working_image(_gradient_image(width, height), aug.working_limit(PREP.size))
        area = min(source.shape[1:]) ** 2  # the square the test view sees
        for epoch in range(300):
            top, left, h, w, _, turns = aug.draw(source.shape[2], source.shape[1], view_generator(3, epoch, 0))
            assert turns == 0
            # Rounding the sides to whole pixels may cost a fraction of a row and a column.
            assert h * w >= INSPECTION_CROP_FLOOR * area - (h + w)
            assert 0 <= top and top + h <= source.shape[1] and 0 <= left and left + w <= source.shape[2]

    views, _ = _views(aug, _gradient_image(), 200)
    mean = torch.tensor(PREP.mean)[None, :, None, None]
    std = torch.tensor(PREP.std)[None, :, None, None]
    brightness = (views * std + mean).mean(dim=1)  # (n, H, W)
    top_rows, bottom_rows = brightness[:, :8].mean(dim=(1, 2)), brightness[:, -8:].mean(dim=(1, 2))
    assert (top_rows < bottom_rows).all(), "a view without turns came out upside down or sideways"


def test_rotations_turn_some_views_when_allowed():
    views, params = _views(Augmentation.of("inspection", rotations=True), _gradient_image(), 200)
    assert set(params[:, 5].tolist()) == {0, 1, 2, 3}
    mean = torch.tensor(PREP.mean)[None, :, None, None]
    std = torch.tensor(PREP.std)[None, :, None, None]
    brightness = (views * std + mean).mean(dim=1)
    upright = brightness[:, :8].mean(dim=(1, 2)) < brightness[:, -8:].mean(dim=(1, 2))
    assert 0.1 < upright.float().mean() < 0.5  # a quarter of the views keep the dark side up


def test_the_recipe_has_no_turns_and_crops_down_to_8_percent():
    recipe = Augmentation.of("recipe")
    assert recipe.crop_scale == (0.08, 1.0) and not recipe.rotations
    with pytest.raises(ConfigError, match="inspection preset"):
        Augmentation.of("recipe", rotations=True)
    with pytest.raises(ConfigError, match="Unknown preset"):
        TuningConfig(preset="fancy")


def test_recipe_views_match_pil_resized_crop_and_flip():
    """The batched device rendering gives what the recipe's PIL pipeline gives for the same draws."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (24, 36, 3)).astype(np.uint8)
    image = Image.fromarray(base).resize((144, 96), Image.Resampling.BICUBIC)  # smooth, with detail
    aug = Augmentation.of("recipe")
    source = working_image(image, aug.working_limit(PREP.size))
    params = torch.tensor([aug.draw(source.shape[2], source.shape[1], view_generator(5, e, 0)) for e in range(16)])
    views = render_views([source] * 16, params, PREP, "cpu")
    pil_image = Image.fromarray(source.permute(1, 2, 0).numpy())
    for view, (top, left, h, w, flip, _) in zip(views, params.tolist()):
        reference = TF.resized_crop(pil_image, top, left, h, w, [PREP.size, PREP.size],
                                    interpolation=PREP.interpolation_mode, antialias=True)
        if flip:
            reference = TF.hflip(reference)
        reference = TF.normalize(TF.to_tensor(reference), PREP.mean, PREP.std)
        # The CPU path resizes the uint8 pixels as PIL does, rounding between its two passes: the
        # views agree to a few hundredths of a grey level on average (0.002 here is 0.14 of a level).
        assert (view - reference).abs().mean() < 0.002
    assert params[:, 4].sum() not in (0, 16)  # both flipped and unflipped views were compared


@pytest.mark.parametrize("preset, rotations", [("recipe", False), ("inspection", True)])
def test_the_cpu_and_accelerator_renderings_agree(preset, rotations):
    """render_views resizes image by image on a CPU and as one batched product elsewhere; the batched
    path, run here on the CPU, gives the same views up to the CPU path's whole grey levels (it rounds
    between its two passes, as PIL does; on photos, not on pixel noise, that moves a value by a level
    at most)."""
    from dapt_core.engine.augment import _resize_batch, _resize_each
    rng = np.random.default_rng(1)
    aug = Augmentation.of(preset, rotations=rotations)

    def photo(h, w):  # smooth, with detail, like a photograph
        small = Image.fromarray(rng.integers(0, 255, (max(2, h // 6), max(2, w // 6), 3)).astype(np.uint8))
        return small.resize((w, h), Image.Resampling.BICUBIC)

    sources = [working_image(photo(h, w), aug.working_limit(PREP.size))
               for h, w in ((40, 70), (96, 96), (130, 50), (20, 24))]
    params = torch.tensor([aug.draw(s.shape[2], s.shape[1], view_generator(2, e, i))
                           for e in range(6) for i, s in enumerate(sources)])
    images = [sources[i % len(sources)] for i in range(len(params))]
    each, batch = _resize_each(images, params, PREP.size), _resize_batch(images, params, PREP.size, "cpu")
    assert each.shape == batch.shape == (24, 3, PREP.size, PREP.size)
    assert torch.equal(each, each.round())  # whole grey levels, as PIL gives
    difference = (each - batch.clamp(0, 255)).abs()
    # Rounding to whole levels alone moves values by 0.25 on average; PIL's between-pass rounding adds a little.
    assert difference.max() <= 2.0 and difference.mean() < 0.4
    assert (params[:, 2] < PREP.size).any() and (params[:, 2] > PREP.size).any()  # enlarged and shrunk crops


def test_views_are_reproducible_and_independent_of_the_batch(tmp_path):
    items = []
    for i, size in enumerate(((96, 64), (50, 80), (64, 64))):
        path = tmp_path / f"{i}.png"
        _gradient_image(*size).save(path)
        items.append(LabeledImage(path, i % 2))
    config = TuningConfig(method="coop", rotations=True, seed=4)

    def render(indices, epoch):
        views = ImageViews(items, PREP, train=True, seed=config.seed, augmentation=config.augmentation)
        views.set_epoch(epoch)
        return model_input(collate([views[i] for i in indices]), PREP, "cpu")

    together = render([0, 1, 2], epoch=2)
    assert torch.equal(together, render([0, 1, 2], epoch=2))
    for position, index in enumerate((0, 1, 2)):
        assert torch.allclose(render([index], epoch=2)[0], together[position], atol=1e-5)
    assert not torch.allclose(render([0, 1, 2], epoch=3), together)


def test_tune_defaults_to_the_inspection_preset_and_bench_keeps_the_recipe():
    from dapt_core.bench.hyperparameters import bench_config

    assert TuningConfig().preset == "inspection" and not TuningConfig().rotations
    config, *_ = bench_config("DTD", "dapt", 16, seed=1, overrides={"lr": 0.5})
    assert config.preset == "recipe" and config.augmentation.crop_scale == (0.08, 1.0)


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
@pytest.mark.parametrize("size", [(224, 224), (300, 200), (150, 240), (64, 64), (50, 70)])
def test_test_views_from_kept_pixels_match_the_pil_test_view(size, interpolation):
    """After tuning, the training photos' test views are made from the pixels tuning kept, not
    through PIL again: the model must see the same picture, to within one grey level."""
    from dapt_core.engine.transforms import takes_pixel_tensors, test_view, test_view_of_pixels

    width, height = size
    noise = np.random.default_rng(0).integers(0, 256, (height, width, 3))
    smooth = np.asarray(_gradient_image(width, height), dtype=np.int64)
    photo = Image.fromarray(((noise + 3 * smooth) // 4).astype(np.uint8))
    prep = Preprocessing(size=64, interpolation=interpolation)
    assert takes_pixel_tensors(prep)
    pixels = torch.from_numpy(np.array(photo)).permute(2, 0, 1).contiguous()
    ours, theirs = test_view_of_pixels(pixels, prep), test_view(photo, prep)
    assert ours.shape == theirs.shape == (3, 64, 64)
    levels = (ours - theirs).abs() * torch.tensor(prep.std)[:, None, None] * 255  # in grey levels
    assert levels.max() <= 1.01 and levels.mean() < 0.05
    assert not takes_pixel_tensors(Preprocessing(size=64, interpolation="nearest"))
