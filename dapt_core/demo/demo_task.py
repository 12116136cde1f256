"""The demo inspection task: few-shot defect classification on carbon-fibre panels.

A deterministic, procedurally rendered task (see ``dapt_core.procedural``) that looks like a real
inspection job the bundled demo CLIP was never trained on:

- material: a 2x2 twill carbon-fibre composite, dark, with a strong woven texture; the demo model's
  pretraining corpus never shows carbon fibre (nor the word);
- lighting: a dark part photographed with a raised exposure (the corpus has none of this);
  harmless dust specks appear on pictures of every class, good parts included;
- defects: at the low-contrast end of the corpus's range and small (contrast 0.45-0.9, size
  0.6-1.2 of the corpus's), with confusable pairs: a thin bright or dark scratch vs a thin dark
  crack, a shaded dent vs a soft stain.

Classes (folder names are the class names used in prompts): no defect, scratch, crack, dent, stain.
Pictures are 128 x 128 colour PNGs (the demo model looks at 64 px; the larger picture leaves
random-resized-crop augmentation something to crop). 16 training and 200 test pictures per class.

Zero-shot (assets/demo_clip/MODEL_CARD.md), the demo model reaches 0.421 +- 0.016 on the test part
(chance 0.20) and never answers "no defect": it reads the weave as damage. That is the gap prompt
tuning is meant to close.
A monochrome-camera variant (``procedural.apply_style(..., "mono")``) was tried first and left
zero-shot at chance (0.25), below the two-times-chance floor this task must keep.

    >>> from dapt_core.demo_task import write_demo_task
    >>> summary = write_demo_task("workspace/demo_task", seed=0)
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from . import procedural as P

CLASSES: tuple[str, ...] = ("no defect", "scratch", "crack", "dent", "stain")
_DEFECT_OF = {"no defect": "none", "scratch": "scratch", "crack": "crack", "dent": "dent", "stain": "stain"}

MATERIAL = "carbon fibre"
STYLE = "photo"
SIZE = 128
TRAIN_PER_CLASS = 16
TEST_PER_CLASS = 200
SEVERITY = (0.45, 0.9)
SCALE = (0.6, 1.2)

# Prompt templates for measuring zero-shot accuracy of the demo model (its corpus has captions of
# these forms); see tests/test_demo_model.py and assets/demo_clip/MODEL_CARD.md.
ZERO_SHOT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a close-up photo of a {}.",
    "a {} on a surface.",
    "an inspection photo showing a {}.",
)

_SPLITS = {"train": 1, "test": 2}


@lru_cache(maxsize=4)
def _pixel_grid(s: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:s, 0:s].astype(np.float32)
    return y, x


def _dust(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Zero to three harmless specks of dust (a nuisance every class has)."""
    s = img.shape[0]
    y, x = _pixel_grid(s)
    for _ in range(int(rng.choice([0, 0, 1, 1, 2, 3]))):
        cy, cx = rng.uniform(0, s, 2)
        r = rng.uniform(0.6, 1.4) * s / 128
        m = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))[..., None]
        img = img + (1 - img) * m * rng.uniform(0.2, 0.5)
    return img


def render_demo_image(seed: int, split: str, class_name: str, index: int) -> np.ndarray:
    """One picture of the task as a (SIZE, SIZE, 3) uint8 array; a pure function of its arguments."""
    rng = np.random.default_rng([int(seed), 101, _SPLITS[split], CLASSES.index(class_name), int(index)])
    colour = (0.18, 0.18, 0.2) if rng.random() < 0.5 else "grey"
    base = P.render_surface(rng, MATERIAL, colour, SIZE)
    field, light = P.lighting(rng, SIZE, 0.6)
    field = field * rng.uniform(1.6, 2.2)  # exposure set for the dark composite
    img = P.add_defect(base, rng, _DEFECT_OF[class_name], light, rng.uniform(*SEVERITY), rng.uniform(*SCALE))
    img = _dust(img, rng)
    img = np.clip(img * field[..., None], 0, 1)
    img = P.apply_style(img, rng, STYLE)
    return P.to_uint8(img)


def write_demo_task(out_dir, seed: int = 0) -> dict:
    """Write the task as ``out_dir/{train,test}/<class name>/NNN.png`` and describe it.

    The same ``seed`` gives byte-identical files. Existing PNGs of the same names are overwritten;
    nothing else in ``out_dir`` is touched.
    """
    out = Path(out_dir)
    counts = {"train": TRAIN_PER_CLASS, "test": TEST_PER_CLASS}
    for split, n in counts.items():
        for c in CLASSES:
            folder = out / split / c
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(render_demo_image(seed, split, c, i)).save(folder / f"{i:03d}.png", compress_level=1)
    return {
        "out_dir": str(out),
        "seed": int(seed),
        "classes": list(CLASSES),
        "train_per_class": TRAIN_PER_CLASS,
        "test_per_class": TEST_PER_CLASS,
        "train": str(out / "train"),
        "test": str(out / "test"),
        "image_size": SIZE,
        "material": MATERIAL,
        "style": "colour photograph of a dark carbon-fibre panel, raised exposure, dust specks",
        "chance_accuracy": 1.0 / len(CLASSES),
    }
