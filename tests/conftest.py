"""Shared fixtures: a tiny CLIP config (no network, seconds on a CPU) and generated image tasks."""

from __future__ import annotations

import atexit
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the network
# fp32 everywhere, as the reference computes; tests/test_device.py checks the reduced-precision path itself
os.environ["DAPT_PRECISION"] = "fp32"
# Zero-shot class embeddings are cached on disk; tests keep theirs out of the user's cache folder, in a folder
# removed when the session ends (they used to pile up in the temp folder, one per run).
if "DAPT_CACHE_DIR" not in os.environ:
    os.environ["DAPT_CACHE_DIR"] = tempfile.mkdtemp(prefix="dapt-test-cache-")
    atexit.register(shutil.rmtree, os.environ["DAPT_CACHE_DIR"], ignore_errors=True)

import open_clip  # noqa: E402

TINY = "dapt-tiny-test"
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8, "pool_type": "avg"},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def register_tiny(tmp_dir: Path, name: str = TINY, config: dict | None = None) -> str:
    """Register a small architecture with open_clip under `name` (the JSON file's stem)."""
    path = tmp_dir / f"{name}.json"
    path.write_text(json.dumps(config or TINY_CONFIG))
    open_clip.add_model_config(path)
    return name


@pytest.fixture(scope="session")
def tiny_spec(tmp_path_factory) -> str:
    register_tiny(tmp_path_factory.mktemp("configs"))
    return f"{TINY}:random"


@pytest.fixture(scope="session")
def tiny_backbone(tiny_spec):
    from dapt_core.engine.backbone import load_backbone
    return load_backbone(tiny_spec, "cpu")


COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}


def write_colour_task(root: Path, per_class: int = 12, size: int = 48, seed: int = 0) -> Path:
    """Folders of noisy solid-colour images, one per class: a task any CLIP can learn quickly."""
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = rng.normal(0, 25, (size, size, 3))
            pixels = np.clip(np.array(colour)[None, None, :] + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{name}_{i:03d}.png")
    return root


@pytest.fixture
def colour_task(tmp_path) -> Path:
    return write_colour_task(tmp_path / "colours")


SPOT = 14


def write_spot_task(root: Path, per_class=(8, 10), size=512, seed=0) -> dict:
    """Grey noise photos of 512 px; a 'spot' photo has one dark 14-px square (3-4 px once the photo is
    shrunk to the demo model's 128). Returns each spot photo's box."""
    rng = np.random.default_rng(seed)
    boxes = {}
    for split, count in zip(("train", "test"), per_class):
        for name in ("no defect", "spot"):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                pixels = np.clip(rng.normal(0.55, 0.06, (size, size, 1)).repeat(3, 2)
                                 + rng.normal(0, 0.02, (1, 1, 3)), 0, 1)
                if name == "spot":
                    x, y = (int(v) for v in rng.integers(48, size - 48 - SPOT, 2))
                    pixels[y:y + SPOT, x:x + SPOT] *= 0.25
                    boxes[f"{split}/{name}/{index:03d}.png"] = (x, y, x + SPOT, y + SPOT)
                Image.fromarray((pixels * 255).astype(np.uint8)).save(folder / f"{index:03d}.png")
    return boxes


def zip_of(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A ZIP archive in memory holding `entries` (name: contents)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()
