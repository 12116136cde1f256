"""Heatmaps a manager can read: where on the photo the evidence for a class lies, drawn over the photo.

A tiled model scores every tile (engine/tiling.py). With a good class, the map a line needs is the
defect map, from the probability that a view is not good (1 - P(good)); else the predicted class's.
Around the tile where the map is highest, windows of the tile's size look closer in two rounds
(tiling.detail_windows); each pixel sums, over the views covering it, how far their probability is
above one half, so the map peaks where the windows that see the evidence overlap and those that do not
see it do not reach. The box drawn around the hot
region (at least half the peak) says where to look. A photo with several defects gets one region.

numpy and Pillow only, so the ONNX runner draws the same maps on a line PC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..engine.tiling import Box, detail_windows, evidence_map, log_softmax_np, peak

NO_TILES_NO_HEATMAPS = ("Heatmaps come from tiles, and this prompt file was tuned without them. Tune again with "
                        "tiles on (dapt tune --tiles auto, or Tiles on the Tune page).")
DEFECT_MAP = "defect"  # the map of 1 - P(good): any defect
HOT_SHARE = 0.5  # the hot region: at least this share of the way from the median to the peak
SHOW_LONGEST = 768  # overlays are drawn at most this many pixels on the longer side


@dataclass
class Heatmap:
    """One photo's map for one class (or DEFECT_MAP), at reduced resolution, with where it peaks."""

    name: str
    values: np.ndarray  # (h, w) relative evidence in [0, 1] (tiling.evidence_map)
    level: float  # the highest probability of the class (or of a defect) over the views: how sure
    size: tuple[int, int]  # the photo's width and height
    peak: tuple[float, float]  # x, y in the photo's pixels
    hot_box: Box  # the box around the hot region, in the photo's pixels

    def to_dict(self) -> dict:
        return {"map": self.name, "peak": [round(v, 1) for v in self.peak], "box": list(self.hot_box),
                "level": round(self.level, 4)}


def map_name(label: str, good: int | None) -> str:
    """Which map a photo gets: the defect map where the task has a good class, else its class's."""
    return DEFECT_MAP if good is not None else label


def _column(logits: np.ndarray, classnames: list[str], name: str, good: int | None) -> np.ndarray:
    probabilities = np.exp(log_softmax_np(np.asarray(logits, np.float64)))
    if name == DEFECT_MAP:
        if good is None:
            raise ValueError("the defect map needs a good class")
        return 1.0 - probabilities[:, good]
    return probabilities[:, classnames.index(name)]


def heatmap(view_logits: np.ndarray, boxes: list[Box], size: tuple[int, int], classnames: list[str],
            name: str, good: int | None, score: Callable[[list[Box]], np.ndarray] | None = None) -> Heatmap | None:
    """The map of class `name` (or DEFECT_MAP with a good class) from a look's view logits (the whole
    photo first, then one row per box); None for a photo without tiles. `score` (crop boxes -> their
    logits, from the engine) looks closer in two rounds of detail windows (tiling.detail_windows);
    without it the map is as coarse as the tiles."""
    if not boxes:
        return None
    column = _column(np.asarray(view_logits)[1:], classnames, name, good)
    level = float(column.max())
    values = evidence_map(boxes, column[:, None], *size)[0]
    if score is not None:
        side = boxes[0][2] - boxes[0][0]
        hot = boxes[int(column.argmax())]
        x, y = (hot[0] + hot[2]) / 2, (hot[1] + hot[3]) / 2
        for edges in (False, True):  # round two looks where round one peaked; the closest look is the map
            windows = detail_windows(x, y, side, *size, edges=edges)
            window_column = _column(score(windows), classnames, name, good)
            level = max(level, float(window_column.max()))
            values = evidence_map(windows, window_column[:, None], *size)[0]
            if values.max() > 0:
                x, y = peak(values, *size)
    return Heatmap(name, values, level, size, peak(values, *size), _hot_box(values, size))


def attach(predictions: list, looks: list, classnames: list[str], good: int | None) -> None:
    """Give each prediction its heatmap; `looks` holds each photo's (view logits, tile boxes, size, score),
    `score` scoring crop boxes of that photo (see `heatmap`)."""
    for prediction, (view_logits, boxes, size, score) in zip(predictions, looks):
        prediction.heatmap = heatmap(view_logits, boxes, size, classnames, map_name(prediction.label, good), good,
                                     score)


def _hot_box(values: np.ndarray, size: tuple[int, int]) -> Box:
    ys, xs = np.nonzero(values >= HOT_SHARE * float(values.max()) - 1e-9)
    scale_x, scale_y = size[0] / values.shape[1], size[1] / values.shape[0]
    return (int(xs.min() * scale_x), int(ys.min() * scale_y), int(round((xs.max() + 1) * scale_x)),
            int(round((ys.max() + 1) * scale_y)))


def overlay(image: Image.Image, heat: Heatmap, *, box: bool = True, caption: str | None = None) -> Image.Image:
    """The photo with the map over it (transparent where the map is at its median, warm where high)
    and the hot region's box; at most SHOW_LONGEST px on the longer side."""
    image = image.convert("RGB")
    scale = min(1.0, SHOW_LONGEST / max(image.size))
    shown = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                         Image.Resampling.BILINEAR) if scale < 1 else image.copy()
    # Drawn as strongly as the model is sure: a good photo's map (every view unlikely) stays faint.
    strength = heat.values * min(1.0, max(0.15, heat.level))
    heat_image = Image.fromarray((strength * 255).astype(np.uint8)).resize(shown.size, Image.Resampling.BILINEAR)
    alpha = np.asarray(heat_image, np.float32)[..., None] / 255 * 0.6
    colour = _warm(np.asarray(heat_image, np.float32) / 255)
    blended = np.asarray(shown, np.float32) * (1 - alpha) + colour * alpha
    out = Image.fromarray(blended.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    if box and heat.level >= 0.5:  # a box only where the evidence is more likely than not
        left, upper, right, lower = (round(v * scale) for v in heat.hot_box)
        draw.rectangle((left, upper, max(left + 1, right - 1), max(upper + 1, lower - 1)), outline=(255, 255, 255),
                       width=max(2, round(3 * out.width / 768)))
    if caption:
        font = ImageFont.load_default(size=max(12, round(out.width / 48)))
        height = font.getbbox(caption)[3] + 8
        draw.rectangle((0, 0, out.width, height), fill=(0, 0, 0))
        draw.text((6, 4), caption, fill=(255, 255, 255), font=font)
    return out


def _warm(t: np.ndarray) -> np.ndarray:
    """A yellow-to-red colour ramp, (h, w) in [0, 1] -> (h, w, 3) in [0, 255]."""
    red = np.full_like(t, 255.0)
    green = 220 * (1 - t)
    blue = 40 * (1 - t)
    return np.stack([red, green, blue], axis=-1)


def save_overlay(image: Image.Image, heat: Heatmap, path: str | Path, caption: str | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    overlay(image, heat, caption=caption).save(path, format="PNG")
    return path
