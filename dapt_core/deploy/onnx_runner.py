"""Running an exported classifier (OUT.onnx + OUT.json) with ONNX Runtime alone: no torch.

This is what a line PC runs (the README shows the same steps in a few lines for other languages);
`dapt predict OUT.onnx ...` uses it too, so the answers can be compared with the prompt file's.

The graph takes RGB pixels in [0, 1], shaped (N, 3, S, S) after "resize the shorter side to S,
centre-crop S x S" (normalisation is inside the graph), and returns logits, calibrated
probabilities, the image features and the novelty score (see dapt_core.deploy.onnx_export).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.images import load_image
from ..engine.tiling import Tiling, log_softmax_np, pool_log_probs
from ..errors import ConfigError, DaptError, PromptFileError
from .calibration import Calibration
from .heatmaps import NO_TILES_NO_HEATMAPS
from .heatmaps import attach as attach_heatmaps
from .prediction import Decision, Prediction

SIDECAR_FORMAT = "dapt-onnx-classifier"
SIDECAR_VERSION = 1
INSTALL_HINT = "pip install 'dapt-studio[onnx]' (or: pip install onnx onnxscript onnxruntime)"
_RESAMPLING = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
               "nearest": Image.Resampling.NEAREST}


def drift_reference_of(sidecar: dict, side: Path) -> np.ndarray | None:
    """The sidecar's drift reference (the prompt file's held-out photos' features, written by
    onnx_export.drift_reference_entry) as float32 (N, D), or None for an export made before it existed."""
    entry = sidecar.get("drift_reference")
    if entry is None:
        return None
    try:
        rows, width = (int(n) for n in entry["shape"])
        data = base64.b64decode(entry["base64"], validate=True)
        if entry.get("dtype") != "float16" or rows < 1 or width < 1 or len(data) != rows * width * 2:
            raise ValueError(f"{len(data)} bytes for shape {entry['shape']} of {entry.get('dtype')}")
    except (KeyError, TypeError, ValueError) as error:
        raise PromptFileError(f"{side} is damaged: its drift reference cannot be read ({error}); export again.") \
            from error
    return np.frombuffer(data, dtype="<f2").reshape(rows, width).astype(np.float32)


def sidecar_path(onnx_path: str | Path) -> Path:
    return Path(onnx_path).with_suffix(".json")


def pixels(image: Image.Image, size: int, interpolation: str = "bicubic") -> np.ndarray:
    """(3, size, size) float32 RGB in [0, 1]: shorter side to `size`, centre crop.

    The same arithmetic as torchvision's resize and center_crop on a PIL image (used when tuning),
    so the ONNX graph sees the pixels the torch model saw.
    """
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    new_size = (new_short, new_long) if width <= height else (new_long, new_short)
    resized = image.convert("RGB").resize(new_size, _RESAMPLING[interpolation])
    top = round((resized.height - size) / 2.0)
    left = round((resized.width - size) / 2.0)
    cropped = resized.crop((left, top, left + size, top + size))
    return np.asarray(cropped, dtype=np.float32).transpose(2, 0, 1) / 255.0


class OnnxClassifier:
    """An exported classifier: the .onnx graph and its JSON sidecar, run by ONNX Runtime."""

    def __init__(self, onnx_path: str | Path, *, threads: int | None = None):
        try:
            import onnxruntime
        except ImportError:
            raise DaptError(f"Running an .onnx file needs ONNX Runtime: {INSTALL_HINT}.") from None
        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            raise PromptFileError(f"ONNX file not found: {onnx_path}.")
        side = sidecar_path(onnx_path)
        if not side.is_file():
            raise PromptFileError(f"{onnx_path} has no {side.name} beside it (preprocessing, class names, unknown "
                                  f"threshold). Export again with 'dapt export onnx PROMPT_FILE {onnx_path}'.")
        try:
            self.sidecar = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise PromptFileError(f"{side} cannot be read as JSON ({error}); export again.") from error
        if self.sidecar.get("format") != SIDECAR_FORMAT:
            raise PromptFileError(f"{side} is not the sidecar of a DAPT ONNX export; export again.")
        self.path = onnx_path
        self.classnames = list(self.sidecar["classnames"])
        prep = self.sidecar["preprocessing"]
        self.size, self.interpolation = int(prep["size"]), str(prep.get("interpolation", "bicubic"))
        calibration = self.sidecar.get("calibration")
        self.calibration = Calibration.from_dict(calibration) if calibration else None
        self.drift_reference = drift_reference_of(self.sidecar, side)
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # ONNX Runtime raises its own exception types for a damaged graph
            raise PromptFileError(f"{onnx_path} cannot be loaded by ONNX Runtime ({error}); export again.") from error
        self.decision = Decision(self.classnames, self.calibration)
        tiling = self.sidecar.get("tiling") or {}
        self.tiling = Tiling.from_dict(tiling)
        good = tiling.get("good_class")
        self.good_index = self.classnames.index(good) if good in self.classnames else None

    def outputs(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Every graph output by name for a (N, 3, S, S) pixel batch."""
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, {"pixels": batch.astype(np.float32)})))

    def batch(self, images: list) -> np.ndarray:
        return np.stack([pixels(_as_image(item), self.size, self.interpolation) for item in images])

    def image_features(self, images: list) -> tuple[np.ndarray, np.ndarray | None]:
        """The prompted image features (N, D) of whole photos and their novelty (N,; None without a
        calibration), as the prompt file's Classifier gives them for the drift check."""
        out = self.outputs(self.batch(images))
        novelty = None if self.calibration is None else out["novelty"].astype(np.float64)
        return out["features"].astype(np.float32), novelty

    def look(self, image) -> tuple[np.ndarray, float | None, np.ndarray, list, tuple[int, int]]:
        """A tiled file's view of one photo: the photo's logits and novelty, every view's logits (the
        whole photo first) and the tile boxes, by the sidecar's rule (the same as the prompt file's)."""
        image = _as_image(image)
        boxes = self.tiling.boxes(image.width, image.height, self.size)
        views = np.stack([pixels(image, self.size, self.interpolation)]
                         + [pixels(image.crop(box), self.size, self.interpolation) for box in boxes])
        out = self.outputs(views)
        novelty = out.get("novelty")
        logits = pool_log_probs(log_softmax_np(out["logits"].astype(np.float64)), self.good_index)
        return logits, None if novelty is None else float(novelty[0]), out["logits"], boxes, image.size

    def _scorer(self, image):
        photo = _as_image(image)
        return lambda boxes: self.outputs(np.stack([pixels(photo.crop(box), self.size, self.interpolation)
                                                    for box in boxes]))["logits"]

    def predict(self, images, decision: Decision | None = None, *, heatmaps: bool = False) -> list[Prediction]:
        if isinstance(images, (str, Path, Image.Image)):
            images = [images]
        images = list(images)
        if not images:
            return []
        decision = decision or self.decision
        if not self.tiling.on:
            if heatmaps:
                raise ConfigError(NO_TILES_NO_HEATMAPS)
            out = self.outputs(self.batch(images))
            return decision.decide(out["logits"], out.get("novelty"))
        looks = [self.look(image) for image in images]
        novelty = None if looks[0][1] is None else np.array([look[1] for look in looks])
        predictions = decision.decide(np.stack([look[0] for look in looks]), novelty)
        if heatmaps:
            attach_heatmaps(predictions, [(*look[2:], self._scorer(image)) for image, look in zip(images, looks)],
                            self.classnames, self.good_index)
        return predictions


def _as_image(item) -> Image.Image:
    if isinstance(item, Image.Image):
        return item.convert("RGB")
    return load_image(item)
