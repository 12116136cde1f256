"""Training augmentation presets, and the augmented views drawn in batches on the model's device.

Two presets:

  recipe      the paper's: random resized crop (area 8-100 %, aspect 3/4-4/3), horizontal flip.
              `dapt bench` uses it, so benchmark numbers follow the paper's protocol.
  inspection  for inspection photos (the app and `dapt tune`): the crop keeps at least half of the
              picture (of the square the test view sees, on an elongated photo), so a small defect
              is rarely cut out while its label stays; horizontal flip;
              and, when the user says orientation does not matter, every 90-degree turn with or
              without a flip (the eight symmetries of a square), as a surface looks the same turned.

Each photo is decoded once and shrunk once to a bounded working size (`working_image`); at every
epoch only the crop box, flip and turn are drawn per image, on the CPU, from the generator of
(seed, epoch, image) (transforms.view_generator), so a run is reproducible however the batches are
split. The pixels are then resampled on the device (`render_views`) with the weights of PIL's
antialiased bicubic resize (what the recipe's torchvision pipeline computes on the CPU, image by
image): on an accelerator for the whole batch at once as two matrix products, on a CPU image by
image over each crop's pixels only; then flip and turn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .augmentation_presets import check_preset
from .transforms import CROP_RATIO, CROP_SCALE, Preprocessing, random_crop_box

# The smallest crop of the inspection preset, as a fraction of the picture's area. On the demo task
# an independent run measured DAPT at 0.503 with this floor against 0.470 with the recipe's 8 %.
INSPECTION_CROP_FLOOR = 0.5
# A working image's shorter side is at most this many times the model's input size.
MAX_WORKING_FACTOR = 4


@dataclass(frozen=True)
class Augmentation:
    """What one training view may do to a photo."""

    preset: str
    crop_scale: tuple[float, float]
    crop_ratio: tuple[float, float] = CROP_RATIO
    hflip: bool = True
    rotations: bool = False  # 90-degree turns (and thereby vertical flips)

    @classmethod
    def of(cls, preset: str, rotations: bool = False) -> Augmentation:
        """The augmentation of a named preset; `rotations` only exists for the inspection preset."""
        check_preset(preset, rotations)
        if preset == "recipe":
            return cls("recipe", CROP_SCALE)
        return cls("inspection", (INSPECTION_CROP_FLOOR, 1.0), rotations=rotations)

    def describe(self) -> str:
        turns = ", 90-degree turns" if self.rotations else ""
        return (f"{self.preset}: random resized crop {self.crop_scale[0]:.0%}-{self.crop_scale[1]:.0%} "
                f"of the area, horizontal flip{turns}")

    def working_limit(self, size: int) -> int:
        """Longest the shorter side of a working image needs to be: the smallest crop of such an
        image still has about `size` pixels per side, so no detail the model could see is lost."""
        factor = min(MAX_WORKING_FACTOR, math.ceil(1 / math.sqrt(self.crop_scale[0]) - 1e-9))
        return factor * size

    def draw(self, width: int, height: int, generator: torch.Generator) -> tuple[int, int, int, int, int, int]:
        """(top, left, height, width, flip, turns) of one view, all randomness from `generator`.

        The recipe draws what torchvision's RandomResizedCrop and flip draw. The inspection preset
        crops inside a square of the photo's shorter side (at a random place along the longer one):
        the test view sees such a square, and on an elongated photo a crop of at least half of the
        whole area cannot have a near-square shape, so the floor is kept relative to that square."""
        if self.preset == "inspection" and width != height:
            side = min(width, height)
            offset = int(torch.randint(max(width, height) - side + 1, (1,), generator=generator).item())
            top, left, h, w = random_crop_box(side, side, generator, self.crop_scale, self.crop_ratio)
            if width > height:
                left += offset
            else:
                top += offset
        else:
            top, left, h, w = random_crop_box(width, height, generator, self.crop_scale, self.crop_ratio)
        flip = int(self.hflip and torch.rand(1, generator=generator).item() < 0.5)
        turns = int(torch.randint(4, (1,), generator=generator).item()) if self.rotations else 0
        return top, left, h, w, flip, turns


def working_image(image: Image.Image, limit: int) -> torch.Tensor:
    """A decoded photo as a (3, H, W) uint8 tensor (channels-last in memory), shrunk so that its
    shorter side is at most `limit`."""
    shorter = min(image.width, image.height)
    if shorter > limit:
        scale = limit / shorter
        new_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(new_size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    pixels = np.array(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)
    # A (3, H, W) view of the (H, W, 3) pixels, not a copy: torch's antialiased uint8 resize works
    # channels-last anyway, and is about 1.8x faster on a crop of this layout (same output).
    return torch.from_numpy(pixels).permute(2, 0, 1)


def render_views(images: list[torch.Tensor], params: torch.Tensor, prep: Preprocessing,
                 device: torch.device | str) -> torch.Tensor:
    """The augmented, normalised model inputs of a batch, computed on `device`.

    Args:
        images: working images, (3, H_i, W_i) uint8 each (sizes may differ).
        params: (B, 6) integers, one `Augmentation.draw` row per image.
    Returns: (B, 3, size, size) float32.
    """
    device = torch.device(device)
    params = params.to(device=device, dtype=torch.long)
    _, _, _, _, flip, turns = params.unbind(1)
    if device.type == "cpu":
        out = _resize_each(images, params, prep.size)
    else:
        out = _resize_batch(images, params, prep.size, device)
    out = out.clamp_(0, 255)
    out = torch.where(flip.bool()[:, None, None, None], out.flip(3), out)
    for k in (1, 2, 3):
        chosen = turns == k
        if bool(chosen.any()):
            out[chosen] = torch.rot90(out[chosen], k, dims=(2, 3))
    mean = torch.tensor(prep.mean, device=device)[None, :, None, None] * 255
    std = torch.tensor(prep.std, device=device)[None, :, None, None] * 255
    return (out - mean) / std


def _resize_batch(images: list[torch.Tensor], params: torch.Tensor, size: int, device) -> torch.Tensor:
    """Crop and resize of the whole batch as two batched matrix products over the padded images:
    one large kernel launch pair for an accelerator, however the crops differ."""
    top, left, height, width = params[:, :4].unbind(1)
    canvas = _canvas(images, device)
    rows = _resampling_weights(top, height, canvas.shape[2], size)  # (B, size, H)
    columns = _resampling_weights(left, width, canvas.shape[3], size)  # (B, size, W)
    return rows[:, None] @ canvas @ columns.transpose(1, 2)[:, None]


def _resize_each(images: list[torch.Tensor], params: torch.Tensor, size: int) -> torch.Tensor:
    """The same crop and resize image by image with torch's antialiased bicubic interpolation, which
    has PIL's kernel (a = -0.5, widened by the shrink factor, cut at the crop's edges) and touches only
    the pixels under it: on a CPU about 3x faster than the dense products of `_resize_batch` (32
    views of 224-px photos at 64 px: 7 ms against 23 ms, one thread). It resizes the uint8 pixels
    themselves, as PIL does, so the views come out in whole grey levels like PIL's (within one level
    of `_resize_batch`'s, tests/test_augment.py): torch's uint8 kernel takes 80 us where the float one
    takes 230 us (a 150-px crop at 64 px), and no float copy of the crop is made."""
    out = []
    for image, (top, left, height, width) in zip(images, params[:, :4].tolist()):
        crop = image[None, :, top:top + height, left:left + width]
        out.append(F.interpolate(crop, size=(size, size), mode="bicubic", antialias=True, align_corners=False))
    return torch.cat(out).float()


def _resampling_weights(start: torch.Tensor, length: torch.Tensor, extent: int, size: int) -> torch.Tensor:
    """(B, size, extent) weights that resize the pixels [start, start + length) of each image to
    `size`, as PIL's antialiased bicubic resize of the cropped picture does along one axis: the
    kernel (a = -0.5) widened by the shrink factor, cut at the crop's edges, each row normalised."""
    scale = (length.float() / size)[:, None, None]  # (B, 1, 1)
    stretch = scale.clamp(min=1.0)
    centres = start.float()[:, None, None] + (torch.arange(size, device=start.device) + 0.5)[None, :, None] * scale
    pixels = torch.arange(extent, device=start.device, dtype=torch.float32)[None, None, :]
    x = ((pixels + 0.5 - centres) / stretch).abs()
    a = -0.5
    weights = torch.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                          torch.where(x < 2, ((a * x - 5 * a) * x + 8 * a) * x - 4 * a, torch.zeros_like(x)))
    inside = (pixels >= start[:, None, None]) & (pixels < (start + length)[:, None, None])
    weights = weights * inside
    return weights / weights.sum(dim=2, keepdim=True)


def _canvas(images: list[torch.Tensor], device) -> torch.Tensor:
    """The images as one float batch, zero-padded to the largest (weights outside a crop are 0)."""
    height = max(image.shape[1] for image in images)
    width = max(image.shape[2] for image in images)
    batch = torch.zeros(len(images), 3, height, width, device=device)
    for i, image in enumerate(images):
        batch[i, :, :image.shape[1], :image.shape[2]] = image.to(device, non_blocking=True)
    return batch
