"""The demo inspection tasks: few-shot defect classification on a material the demo CLIP never saw.

Deterministic, procedurally rendered tasks (see ``dapt_core.demo.procedural``) that look like real
inspection jobs the bundled demo CLIP was never trained on. Two tasks share the classes, the
counts and the defects, and differ in the material (TASKS):

- ``carbon-fibre`` (the demo task): a 2x2 twill carbon-fibre composite, dark, with a strong woven
  texture, photographed with a raised exposure; the pretraining corpus never shows carbon fibre
  (nor the word);
- ``ceramic`` (the second task): glazed tiles with grout lines in pale colours; ceramic is in the
  corpus's vocabulary but held out of its pictures, so it measures whether a tuning default was
  fitted to the first task.

In both, harmless dust specks appear on pictures of every class, good parts included, and the
defects are at the low-contrast end of the corpus's range and small (contrast 0.45-0.9, size
0.6-1.2 of the corpus's), with confusable pairs: a thin bright or dark scratch vs a thin dark
crack, a shaded dent vs a soft stain.

Classes (folder names are the class names used in prompts): no defect, scratch, crack, dent, stain.
Pictures are 128 x 128 colour PNGs, the demo model's input size. 16 training and 200 test
pictures per class.

Two hard tasks, ``textile`` and ``textile-faint``, stand in for real photos on which tuning
collapsed (issue 20): woven cloth at 250 x 250 pixels with three classes, no defect, local defect
(a faint slub or spot) and global defect (faint barre bands or cloudiness over the whole piece).
The demo model's frozen features barely separate them: zero-shot answers one class for every
picture (0.333) and a nearest-class-mean probe on the frozen features of the 16 training pictures
reaches 0.435 (textile) and 0.343 (textile-faint) on the test pictures (seed 0). Zero-shot accuracies of the demo model are in assets/demo_clip/MODEL_CARD.md.
A monochrome-camera variant (``procedural.apply_style(..., "mono")``) was tried first and left
the first demo model at chance (0.25).

    >>> from dapt_core.demo.demo_task import write_demo_task
    >>> summary = write_demo_task("workspace/demo_task", seed=0)
    >>> summary = write_demo_task("workspace/ceramic_task", seed=0, task="ceramic")
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from . import procedural as P

CLASSES: tuple[str, ...] = ("no defect", "scratch", "crack", "dent", "stain")
_DEFECT_OF = {"no defect": "none", "scratch": "scratch", "crack": "crack", "dent": "dent", "stain": "stain"}
# The hard textile tasks' classes and the flaw each draws (procedural.TEXTILE_FLAWS).
TEXTILE_CLASSES: tuple[str, ...] = ("no defect", "local defect", "global defect")
_FLAW_OF = {"no defect": "none", "local defect": "local", "global defect": "global"}

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


@dataclass(frozen=True)
class DemoTask:
    """How one task's pictures are rendered."""

    material: str
    seed_tag: int  # part of every picture's seed, so that tasks do not share pictures
    colours: tuple  # COLOURS names or RGB triples, drawn uniformly per picture
    exposure: tuple[float, float]  # range of the factor on the light field
    description: str
    # The hard tasks (below) have classes, picture size and flaws of their own; the defaults are
    # the first two tasks', whose pictures must not change (tests check their digests).
    classes: tuple[str, ...] = CLASSES
    size: int = SIZE
    flaws: str = "defects"  # "defects": procedural.add_defect; "textile": procedural.textile_flaw
    severity: tuple[float, float] = SEVERITY


TASKS: dict[str, DemoTask] = {
    "carbon-fibre": DemoTask("carbon fibre", 101, ((0.18, 0.18, 0.2), "grey"), (1.6, 2.2),
                             "colour photograph of a dark carbon-fibre panel, raised exposure, dust specks"),
    "ceramic": DemoTask("ceramic", 102, ("white", (0.86, 0.82, 0.72), (0.62, 0.74, 0.82)), (0.85, 1.05),
                        "colour photograph of pale glazed ceramic tiles with grout lines, dust specks"),
    # Hard tasks: faint flaws on woven cloth, photographed at 250 px and shrunk to the model's 128,
    # where the frozen demo CLIP barely tells the classes apart (zero-shot near chance, a
    # nearest-class-mean probe on its frozen features a little above). They reproduce the
    # collapse users saw on real textile photos (docs/recipe.md, "When the features do not
    # separate the classes"). "textile-faint" is the same cloth with fainter flaws.
    "textile": DemoTask("fabric", 103, ((0.80, 0.76, 0.66), "grey", (0.30, 0.36, 0.52)), (0.9, 1.1),
                        "colour photograph of woven cloth, 250 px; a faint local flaw (slub or spot) or a "
                        "subtle change of the whole piece (barre bands or cloudiness); lint specks",
                        classes=TEXTILE_CLASSES, size=250, flaws="textile", severity=(0.6, 1.0)),
    "textile-faint": DemoTask("fabric", 104, ((0.80, 0.76, 0.66), "grey", (0.30, 0.36, 0.52)), (0.9, 1.1),
                              "the textile task with fainter flaws (0.35-0.7 of its contrast)",
                              classes=TEXTILE_CLASSES, size=250, flaws="textile", severity=(0.35, 0.7)),
}
DEFAULT_TASK = "carbon-fibre"
MATERIAL = TASKS[DEFAULT_TASK].material


def _task(name: str) -> DemoTask:
    if name not in TASKS:
        raise ValueError(f"unknown demo task {name!r}; choose from {sorted(TASKS)}")
    return TASKS[name]


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


def render_demo_image(seed: int, split: str, class_name: str, index: int, task: str = DEFAULT_TASK) -> np.ndarray:
    """One picture of ``task`` as a (size, size, 3) uint8 array (SIZE but for the textile tasks); a pure
    function of its arguments."""
    spec = _task(task)
    if class_name not in spec.classes:
        raise ValueError(f"task {task!r} has no class {class_name!r}; its classes are {list(spec.classes)}")
    rng = np.random.default_rng([int(seed), spec.seed_tag, _SPLITS[split], spec.classes.index(class_name),
                                 int(index)])
    colour = spec.colours[int(rng.random() * len(spec.colours))]
    base = P.render_surface(rng, spec.material, colour, spec.size)
    field, light = P.lighting(rng, spec.size, 0.6)
    field = field * rng.uniform(*spec.exposure)  # exposure set for the material (raised for the dark composite)
    if spec.flaws == "textile":
        img = P.textile_flaw(base, rng, _FLAW_OF[class_name], rng.uniform(*spec.severity))
    else:
        img = P.add_defect(base, rng, _DEFECT_OF[class_name], light, rng.uniform(*spec.severity),
                           rng.uniform(*SCALE))
    img = _dust(img, rng)
    img = np.clip(img * field[..., None], 0, 1)
    img = P.apply_style(img, rng, STYLE)
    return P.to_uint8(img)


def demo_png(seed: int, split: str, class_name: str, index: int, task: str = DEFAULT_TASK) -> bytes:
    """One picture of ``task`` as the PNG file `write_demo_task` writes (the same bytes, so the
    app's demo project and `dapt demo-data`'s folder hold the same files, by content hash)."""
    buffer = io.BytesIO()
    Image.fromarray(render_demo_image(seed, split, class_name, index, task)).save(buffer, format="PNG",
                                                                                 compress_level=1)
    return buffer.getvalue()


def write_demo_task(out_dir, seed: int = 0, task: str = DEFAULT_TASK) -> dict:
    """Write ``task`` (a key of TASKS) as ``out_dir/{train,test}/<class name>/NNN.png`` and describe it.

    The same ``seed`` gives byte-identical files. Existing PNGs of the same names are overwritten;
    nothing else in ``out_dir`` is touched.
    """
    spec = _task(task)
    out = Path(out_dir)
    counts = {"train": TRAIN_PER_CLASS, "test": TEST_PER_CLASS}
    for split, n in counts.items():
        for c in spec.classes:
            folder = out / split / c
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                (folder / f"{i:03d}.png").write_bytes(demo_png(seed, split, c, i, task))
    return {
        "out_dir": str(out),
        "seed": int(seed),
        "classes": list(spec.classes),
        "train_per_class": TRAIN_PER_CLASS,
        "test_per_class": TEST_PER_CLASS,
        "train": str(out / "train"),
        "test": str(out / "test"),
        "image_size": spec.size,
        "task": task,
        "material": spec.material,
        "style": spec.description,
        "chance_accuracy": 1.0 / len(spec.classes),
    }
