"""The model's side of tiles (the geometry and the photo's rule are in tiling.py): the views of a photo,
their scores, the training views of a tiled run and the choice of each training photo's key tile.

Inference: a photo's views are the whole photo (CLIP's test view, as without tiles) and each tile
cropped from the photo and shrunk to the model's input with the same resize, so the ONNX runner,
which does this with Pillow alone, sees the same pixels.

Training (multiple-instance): each step shows every photo as an augmented whole view and its
KEY_TILES key tiles (each shifted by up to an eighth of a tile, flipped and turned as the preset
allows). The loss is cross-entropy on the views' pooled score (tiling.pool_log_probs), so a
defective photo is pushed to show its defect in one of its key tiles; and, since every tile of a
good photo is good, a good photo's views are each also taught to look good (its key tiles are its
hardest: the ones most likely to make a good part fail). The key tiles are those the rule would take
first: at the start, from the frozen features (where the task has a good class, the tiles least like
any tile of the good training photos, a nearest-neighbour anomaly score; else the tiles the zero-shot
classifier finds most like the photo's class); again with the model being tuned every tenth of the
epochs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from PIL import Image

from ..data.images import image_size, load_image
from ..data.records import LabeledImage
from ..errors import Cancelled, ImageRejected
from .augment import Augmentation, working_image
from .prompts import PromptedCLIP
from .tiling import Box, Tiling, pool_log_probs
from .transforms import Preprocessing, test_view, view_generator
from .views import ImageViews

# Views scored per forward pass at inference (a few photos' tiles together).
VIEW_CHUNK = 64
# Tiles shown per photo and step, besides the whole view: a defective photo's best candidates for
# its defect, a good photo's hardest tiles (every tile of a good photo is good: hard negatives).
KEY_TILES = 3
# The key tiles are chosen again with the model being tuned every this share of the epochs.
RESELECT_EVERY = 0.1


def reselection_epochs(epochs: int) -> list[int]:
    """The epochs before which a tiled run chooses its key tiles again (they are first chosen before epoch 0)."""
    every = max(1, round(epochs * RESELECT_EVERY))
    return list(range(every, epochs, every))
# A training tile view may shift by up to this share of a tile, so the defect is not always in one place.
TILE_JITTER = 0.125


def any_tiles(items: list[LabeledImage], tiling: Tiling, input_size: int) -> bool:
    """Whether any of these photos gets tiles (read from the files' headers; unreadable ones count as
    none). When none does, a tiled run is the untiled run, image for image: it takes that path."""
    if not tiling.on:
        return False
    return any(size is not None and tiling.boxes(*size, input_size)
               for size in (image_size(item.path) for item in items))


def photo_views(image: Image.Image, tiling: Tiling, prep: Preprocessing) -> tuple[torch.Tensor, list[Box]]:
    """(1 + T, 3, S, S) model inputs, the whole photo first, and the T tile boxes."""
    image = image.convert("RGB")
    boxes = tiling.boxes(image.width, image.height, prep.size)
    views = [test_view(image, prep)] + [test_view(image.crop(box), prep) for box in boxes]
    return torch.stack(views), boxes


@torch.no_grad()
def score_views(model: PromptedCLIP, views: torch.Tensor, text: torch.Tensor, *, prompted: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised features (V, D) and logits (V, C) of model inputs, on the CPU."""
    device = model.backbone.device
    features = []
    for chunk in views.split(VIEW_CHUNK):
        with model.backbone.autocast():
            features.append(model.image_features(chunk.to(device), prompted=prompted).float().cpu())
    features = torch.cat(features)
    return features, model.logit_scale.cpu() * features @ text.float().cpu().t()


def photo_logits(view_logits: torch.Tensor, good: int | None) -> torch.Tensor:
    """A photo's logits (C,) from its views' logits (V, C), by the rule of tiling.py."""
    return pool_log_probs(F.log_softmax(view_logits.float(), dim=-1), good)


@torch.no_grad()
def encode_tiled(model: PromptedCLIP, items: list[LabeledImage], tiling: Tiling, text: torch.Tensor,
                 good: int | None, *, prompted: bool, batch_size: int = 100, cancel=None,
                 on_batch: Callable[[int, int], None] | None = None):
    """Whole-photo features (N, D) (what the unknown check and the maps of clusters read), the photos'
    pooled logits (N, C), labels, the indices of the photos that loaded, and (index, reason) of the others."""
    prep = model.backbone.preprocessing
    features, logits, labels, indices, skipped = [], [], [], [], []
    batches = math.ceil(len(items) / batch_size)
    for start in range(0, len(items), batch_size):
        for index in range(start, min(len(items), start + batch_size)):
            if cancel is not None and cancel.is_set():
                raise Cancelled("Evaluation was cancelled.")
            try:
                views, _ = photo_views(load_image(items[index].path), tiling, prep)
            except (ImageRejected, OSError) as error:
                skipped.append((index, str(error)))
                continue
            view_features, view_logits = score_views(model, views, text, prompted=prompted)
            features.append(view_features[0])
            logits.append(photo_logits(view_logits, good))
            labels.append(items[index].label)
            indices.append(index)
        if on_batch is not None:
            on_batch(start // batch_size + 1, batches)
    width = model.backbone.embed_dim
    return (torch.stack(features) if features else torch.empty(0, width),
            torch.stack(logits) if logits else torch.empty(0, len(text)),
            torch.tensor(labels, dtype=torch.long), indices, skipped)


class TiledTrainingViews(ImageViews):
    """Training photos of a tiled run: each item gives an augmented whole view and its KEY_TILES key tiles.

    Photos are kept at the scale their tiles need (a tile at most twice the model's input), not
    shrunk to the whole-photo working size. A photo without tiles (in a run where others have some)
    shows its whole view in every slot, which pools to the whole view's own answer."""

    def __init__(self, items: list[LabeledImage], prep: Preprocessing, tiling: Tiling, *, seed: int = 0,
                 augmentation: Augmentation | None = None):
        super().__init__(items, prep, train=True, seed=seed, augmentation=augmentation)
        self.tiling = tiling
        self.boxes: dict[int, list[Box]] = {}  # in the kept image's pixels
        self.keys: dict[int, list[int]] = {}  # indices of each photo's key tiles in its boxes, best first

    def _image(self, index: int):
        cached = self._cache.get(index) if self._cache_enabled else None
        if cached is not None:
            return cached
        image = load_image(self.items[index].path)
        boxes = self.tiling.boxes(image.width, image.height, self.prep.size)
        if boxes:  # a tile shrunk to at most twice the model's input
            limit = math.ceil(min(image.size) * min(1.0, 2 * self.prep.size / (boxes[0][2] - boxes[0][0])))
        else:  # no tiles: the whole photo's working size, as an untiled run keeps it
            limit = self.augmentation.working_limit(self.prep.size)
        pixels = working_image(image, limit)
        scale = pixels.shape[2] / image.width
        self.boxes[index] = [tuple(round(v * scale) for v in box) for box in boxes]
        if self._cache_enabled:
            self._cache[index] = pixels
        return pixels

    def __getitem__(self, index: int):
        item = self.items[index]
        try:
            image = self._image(index)
        except (ImageRejected, OSError) as error:
            return None, item.label, index, str(error)
        generator = view_generator(self.seed, self.epoch, index)
        whole = self.augmentation.draw(image.shape[2], image.shape[1], generator)
        boxes = self.boxes.get(index) or []
        if not boxes:
            return image, item.label, index, None, (whole,) * (1 + KEY_TILES)
        keys = (self.keys.get(index) or [0]) * KEY_TILES
        return image, item.label, index, None, (whole, *(self._tile_view(image, boxes[key], generator)
                                                         for key in keys[:KEY_TILES]))

    def _tile_view(self, image: torch.Tensor, box: Box, generator: torch.Generator) -> tuple:
        """A key tile's view: shifted by up to TILE_JITTER of a tile, flipped and turned as the preset allows."""
        left, top, right, _ = box
        side = right - left
        reach = int(side * TILE_JITTER)
        shift = torch.randint(-reach, reach + 1, (2,), generator=generator).tolist() if reach else [0, 0]
        left = min(max(0, left + shift[0]), image.shape[2] - side)
        top = min(max(0, top + shift[1]), image.shape[1] - side)
        flip = int(self.augmentation.hflip and torch.rand(1, generator=generator).item() < 0.5)
        turns = int(torch.randint(4, (1,), generator=generator).item()) if self.augmentation.rotations else 0
        return top, left, side, side, flip, turns

    def tile_inputs(self, index: int) -> torch.Tensor | None:
        """Every tile of a training photo as model inputs (no augmentation), or None without tiles."""
        from .augment import render_views

        image = self._image(index)
        boxes = self.boxes.get(index) or []
        if not boxes:
            return None
        params = torch.tensor([(top, left, bottom - top, right - left, 0, 0) for left, top, right, bottom in boxes])
        return render_views([image] * len(boxes), params, self.prep, "cpu")


@torch.no_grad()
def choose_key_tiles(model: PromptedCLIP, views: TiledTrainingViews, good: int | None, *, frozen: bool,
                     zero_shot_text: torch.Tensor | None = None, cancel=None) -> None:
    """Set `views.keys`: for each training photo, the KEY_TILES tiles the photo's rule would take first (see
    the module's docstring). `frozen`: choose from the frozen features (before tuning), else with the model
    as it is."""
    tiles: dict[int, torch.Tensor] = {}
    for index in range(len(views)):
        if cancel is not None and cancel.is_set():
            raise Cancelled("Tuning was cancelled; nothing was saved.")
        try:
            inputs = views.tile_inputs(index)
        except (ImageRejected, OSError):
            continue
        if inputs is not None:
            tiles[index] = inputs
    if not tiles:
        return
    text = zero_shot_text if frozen else model.text_features().float()
    scored = {index: score_views(model, inputs, text, prompted=not frozen) for index, inputs in tiles.items()}
    labels = {index: views.items[index].label for index in tiles}
    good_photos = [index for index in tiles if labels[index] == good] if good is not None else []
    if frozen and good_photos:
        reference = torch.cat([scored[index][0] for index in good_photos])  # every tile of every good photo
        for index, (features, _) in scored.items():
            others = reference if labels[index] != good else torch.cat(
                [scored[i][0] for i in good_photos if i != index] or [reference])
            unusual = 1 - (features @ others.t()).amax(dim=1)  # distance to the nearest good tile
            views.keys[index] = _top(unusual)
        return
    for index, (_, logits) in scored.items():
        log_probs = F.log_softmax(logits, dim=-1)
        label = labels[index]
        views.keys[index] = _top(-log_probs[:, label] if label == good else log_probs[:, label])


def _top(scores: torch.Tensor) -> list[int]:
    return scores.topk(min(KEY_TILES, len(scores))).indices.tolist()
