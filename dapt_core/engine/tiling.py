"""Looking at a photo in tiles at (or near) its own resolution, and the rule that makes the photo's
answer from the tiles' answers.

A photo is shrunk to the model's input (128 px for the demo model, 224 px for ViT-B/16) before the
model sees it: a 20-pixel scratch on a 2,000-pixel photo becomes a pixel or two. With tiles on, the
model also looks at overlapping square tiles of the photo, each shrunk far less (or not at all), and
a photo's label applies to the photo as a whole (multiple-instance learning): a defective photo has
at least one tile that shows its defect, a good photo has none.

The photo's rule, the same in training, in `dapt predict`, in the app and in the ONNX runner:
each view (the whole photo and every tile) gives class probabilities; the photo's score for a
defect class is its highest probability over the views ("the defect is somewhere"); its score for
the good class is the lowest over the views ("every tile must look good"); in a task without a good
class every class takes the highest. The scores, as log-probabilities, are the photo's logits
(softmax of them renormalises). A photo that gets no tiles (it is no larger than one tile) keeps the
whole photo's answer exactly.

Tile sizes are in source pixels and tiles are square, so any aspect ratio works: a 200 x 5,000 px
line-scan strip gets a row of 200-px tiles along its length. Tiles are spread evenly so the first
starts at the photo's edge and the last ends at the other edge, with at least `overlap` of a tile
shared between neighbours.

Pure Python and numpy (torch tensors too for the pooling rule), so the ONNX runner on a line PC uses
this same file without torch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

# "auto": tiles of this many times the model's input, so a tile is shrunk by at most this factor.
AUTO_FACTOR = 2
DEFAULT_OVERLAP = 0.25
MAX_TILES = 1024  # per photo; a setting that asks for more is refused before anything runs

Box = tuple[int, int, int, int]  # left, top, right, bottom in source pixels (right, bottom exclusive)


@dataclass(frozen=True)
class Tiling:
    """How photos are cut into tiles: "off", "auto", a grid "ROWSxCOLS" or a tile size in source pixels.

    Recorded in the prompt file (the run's config), so prediction cuts photos as tuning did."""

    mode: str = "off"  # off | auto | grid | size
    rows: int = 0
    cols: int = 0
    tile: int = 0
    overlap: float = DEFAULT_OVERLAP

    @classmethod
    def parse(cls, text: str | None, overlap: float = DEFAULT_OVERLAP) -> Tiling:
        """'off', 'auto', '3x4' (rows x columns) or '256' (a tile side in source pixels)."""
        text = (text or "off").strip().lower()
        if not 0 <= overlap < 0.9:
            raise ConfigError(f"Tile overlap must be at least 0 and below 0.9 (a share of a tile), got {overlap}.")
        if text in ("off", "none", "0", ""):
            return cls("off", overlap=overlap)
        if text == "auto":
            return cls("auto", overlap=overlap)
        grid = re.fullmatch(r"(\d+)\s*x\s*(\d+)", text)
        if grid:
            rows, cols = int(grid.group(1)), int(grid.group(2))
            if rows < 1 or cols < 1 or rows * cols > MAX_TILES:
                raise ConfigError(f"A tile grid needs 1 to {MAX_TILES} tiles; '{text}' asks for {rows * cols}.")
            return cls("grid", rows=rows, cols=cols, overlap=overlap)
        if text.isdigit() and int(text) >= 16:
            return cls("size", tile=int(text), overlap=overlap)
        raise ConfigError(f"Tiles '{text}' is not understood. Use off, auto, a grid such as 3x4 (rows x columns) "
                          f"or a tile side in pixels of at least 16, such as 256.")

    @property
    def on(self) -> bool:
        return self.mode != "off"

    def describe(self) -> str:
        share = f", {self.overlap:.0%} overlap"
        if self.mode == "auto":
            return f"auto (square tiles of {AUTO_FACTOR}x the model's input where a photo is larger{share})"
        if self.mode == "grid":
            return f"{self.rows}x{self.cols} grid{share}"
        if self.mode == "size":
            return f"{self.tile}-px tiles{share}"
        return "off (the whole photo only)"

    def to_text(self) -> str:
        return {"grid": f"{self.rows}x{self.cols}", "size": str(self.tile)}.get(self.mode, self.mode)

    def to_dict(self) -> dict:
        return {"tiles": self.to_text(), "tile_overlap": self.overlap}

    @classmethod
    def from_dict(cls, data: dict | None) -> Tiling:
        data = data or {}
        return cls.parse(data.get("tiles", "off"), float(data.get("tile_overlap", DEFAULT_OVERLAP)))

    def tile_side(self, width: int, height: int, input_size: int) -> int | None:
        """The side of this photo's tiles in source pixels, or None when it gets no tiles."""
        short, long = min(width, height), max(width, height)
        if self.mode == "off":
            return None
        if self.mode == "grid":
            side = max(math.ceil(height / self.rows), math.ceil(width / self.cols))
            if self.rows > 1 or self.cols > 1:
                side = math.ceil(side * (1 + self.overlap))
            side = min(side, short)
        else:
            side = min(AUTO_FACTOR * input_size if self.mode == "auto" else self.tile, short)
            if self.mode == "auto" and long <= side:
                return None  # the whole photo is already seen at (nearly) its own resolution
        if side >= long or side < 1:
            return None  # one tile would be the whole photo
        return side

    def boxes(self, width: int, height: int, input_size: int) -> list[Box]:
        """The tiles of a `width` x `height` photo, row by row; [] when it gets none."""
        side = self.tile_side(width, height, input_size)
        if side is None:
            return []
        if self.mode == "grid":
            rows = self.rows if height > side else 1
            cols = self.cols if width > side else 1
        else:
            rows, cols = _count(height, side, self.overlap), _count(width, side, self.overlap)
        if rows * cols > MAX_TILES:
            raise ConfigError(f"A {width} x {height} photo would need {rows * cols} tiles of {side} px (at most "
                              f"{MAX_TILES}). Choose larger tiles, a grid, or less overlap.")
        return [(left, top, left + side, top + side)
                for top in _starts(height, side, rows) for left in _starts(width, side, cols)]


def _count(length: int, side: int, overlap: float) -> int:
    """Tiles along one side so that neighbours share at least `overlap` of a tile."""
    if length <= side:
        return 1
    stride = max(1.0, side * (1 - overlap))
    return math.ceil((length - side) / stride) + 1


def _starts(length: int, side: int, count: int) -> list[int]:
    """`count` tile starts spread evenly from 0 to length - side (the centre for one tile)."""
    if count <= 1 or length <= side:
        return [max(0, (length - side) // 2)]
    return [round(i * (length - side) / (count - 1)) for i in range(count)]


# ------------------------------------------------------------------------------------- the photo's rule


def pool_log_probs(log_probs, good: int | None):
    """The photo's logits from its views' log-probabilities, (..., V, C) -> (..., C): the highest over
    the views for every class but the good one, the lowest for the good class (see the module's
    docstring). Works on numpy arrays and on torch tensors (with gradients, for training)."""
    if isinstance(log_probs, np.ndarray):
        pooled = log_probs.max(axis=-2)
        if good is not None:
            pooled[..., good] = log_probs[..., good].min(axis=-1)
        return pooled
    pooled = log_probs.amax(dim=-2)
    if good is None:
        return pooled
    import torch  # only on the torch path: the ONNX runner has no torch

    mask = torch.zeros(log_probs.shape[-1], dtype=torch.bool, device=log_probs.device)
    mask[good] = True
    return torch.where(mask, log_probs.amin(dim=-2), pooled)


def log_softmax_np(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def deciding_views(log_probs: np.ndarray, good: int | None) -> np.ndarray:
    """For each class, the view (0 = the whole photo, 1.. = tiles) whose score the photo took."""
    chosen = log_probs.argmax(axis=0)
    if good is not None:
        chosen[good] = log_probs[:, good].argmin()
    return chosen


# ------------------------------------------------------------------------------------------- heatmaps

# Detail windows, for a finer heatmap: windows of the tiles' size (the scale the model was tuned at)
# in two rounds of DETAIL_STEPS x DETAIL_STEPS, each placed where the map so far is highest.
DETAIL_STEPS = 9


def detail_windows(x: float, y: float, side: int, width: int, height: int, *, edges: bool = False) -> list[Box]:
    """Windows of `side` px near the point (x, y), kept inside the photo, DETAIL_STEPS per axis.

    Round one (edges=False, around the hottest tile's centre): window starts spread over 1.5 tiles
    before to half a tile after the point, so every window that holds any of that tile is among them;
    the map finds the region. Round two (edges=True, around round one's peak): windows whose near or
    far edge sweeps across the point, half of them holding it and half not; the overlap of those that
    see the evidence, bounded by those that do not, finds the place to within a sixteenth of a tile."""
    def starts(centre: float, extent: int) -> list[int]:
        top = max(0, extent - side)
        if edges:  # near edges (start) and far edges (start + side) within a quarter tile of the point
            count = DETAIL_STEPS // 2 + 1
            sweep = [side / 4 * (2 * i / (count - 1) - 1) for i in range(count)]
            picks = [centre - offset + shift for offset in (0, side) for shift in sweep]
        else:
            low, high = centre - 1.5 * side, centre + 0.5 * side
            picks = [low + i * (high - low) / (DETAIL_STEPS - 1) for i in range(DETAIL_STEPS)]
        return sorted({min(max(0, round(value)), top) for value in picks})

    return [(left, top, left + side, top + side) for top in starts(y, height) for left in starts(x, width)]


def evidence_map(boxes: list[Box], tile_probs: np.ndarray, width: int, height: int,
                 longest: int = 256) -> np.ndarray:
    """Where each class's evidence lies: (C, h, w) maps at most `longest` px on the longer side, in [0, 1].

    Each pixel sums, over the views (tiles, windows) covering it, how far the view's probability of the
    class is above one half (more likely than not: a view that sees the class adds, one that does not
    takes away), negative sums are cut to 0 and each map is scaled to a peak of 1 (all 0 where no view
    sees the class). A sum, not a mean: the evidence is where the views that see it overlap and the
    views that do not see it do not reach, and a mean would be as high at the photo's edge, covered by
    a single firing view, as at the defect. `tile_probs` is (T, C), one row per box."""
    scale = min(1.0, longest / max(width, height))
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    rise = tile_probs - 0.5
    sums = np.zeros((tile_probs.shape[1], h, w), np.float64)
    for (left, top, right, bottom), values in zip(boxes, rise):
        x0, y0 = int(left * scale), int(top * scale)
        x1, y1 = max(x0 + 1, round(right * scale)), max(y0 + 1, round(bottom * scale))
        sums[:, y0:y1, x0:x1] += values[:, None, None]
    sums = np.clip(sums, 0, None)
    peaks = sums.reshape(len(sums), -1).max(axis=1)
    return (sums / np.where(peaks > 0, peaks, 1)[:, None, None]).astype(np.float32)


def peak(evidence: np.ndarray, width: int, height: int) -> tuple[float, float]:
    """The (x, y) in source pixels of a map's maximum: the centre of the region at the maximum value
    (a tile map is flat over a tile's cells, so the first maximal pixel would be a cell's corner)."""
    top = evidence.max()
    ys, xs = np.nonzero(evidence >= top - 1e-6 * max(1.0, abs(float(top))))
    scale_x, scale_y = width / evidence.shape[1], height / evidence.shape[0]
    return (float(xs.mean()) + 0.5) * scale_x, (float(ys.mean()) + 0.5) * scale_y


def mass_inside(evidence: np.ndarray, box: Box, width: int, height: int) -> float:
    """The share of a map's mass above its median that lies inside `box` (source pixels)."""
    raised = np.clip(evidence - np.median(evidence), 0, None)
    total = float(raised.sum())
    if total <= 0:
        return 0.0
    scale_x, scale_y = evidence.shape[1] / width, evidence.shape[0] / height
    x0, y0 = int(box[0] * scale_x), int(box[1] * scale_y)
    x1, y1 = max(x0 + 1, math.ceil(box[2] * scale_x)), max(y0 + 1, math.ceil(box[3] * scale_y))
    return float(raised[y0:y1, x0:x1].sum()) / total
