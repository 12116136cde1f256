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

A high-resolution task, ``highres``, is for looking at a photo in tiles and for heatmaps: the
carbon-fibre composite and the five classes again, photographed at 1024 x 1024 pixels (JPEG,
quality 92; 16 training and 40 test photos per class), with the weave at the pixel scale of a
256-pixel photo (tows 10-16 px wide, twice the demo's) and dust specks of 1-3 px. Each defective
photo has one small defect, 10-40 px across on its longer side, at least 48 px from the borders.
Shrinking the whole photo to the model's 128 px shrinks the defect to 1-5 px, where it is lost; a
tile of 256 px shrunk to 128 px looks like a demo picture, with the defect still in it. The
defect's place is recorded: ``write_demo_task`` writes ``defect_boxes.json`` with a box
[x0, y0, x1, y1] (x1, y1 exclusive) per defective photo, the pixels the defect changes by more than
0.02 (5 grey levels) in the lit photo, so that a heatmap can be measured (does its peak fall in the
box?). ``render_demo_image_with_box`` gives one photo and its box without writing files.

    >>> from dapt_core.demo.demo_task import write_demo_task
    >>> summary = write_demo_task("workspace/demo_task", seed=0)
    >>> summary = write_demo_task("workspace/ceramic_task", seed=0, task="ceramic")
    >>> summary = write_demo_task("workspace/highres_task", seed=0, task="highres")
"""

from __future__ import annotations

import io
import json
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
JPEG_QUALITY = 92

# The highres task's small defects: each is drawn by procedural.add_defect on a patch of
# DEFECT_PATCH px of the surface (add_defect sizes a defect for the picture it is given) and pasted
# back. Scratches and cracks are widened by DEFECT_LINE_WIDTH (sized for the patch they would be
# 0.5-1.5 px wide): scratches 1.5-3 px, cracks 1.5-3 px with branches of 1-2 px. The patch lies at
# least BOX_MARGIN px from the photo's borders. A draw is kept when the pixels it changes by more
# than CHANGE_THRESHOLD in the lit photo (before dust and sensor noise) are not empty, do not reach
# the patch's edge and measure BOX_SIDE px on their longer side; otherwise the next draws are taken
# (1-3 draws on average, at most 13 in the whole task at seed 0).
DEFECT_PATCH = 56
DEFECT_LINE_WIDTH = {"scratch": 2.6, "crack": 2.0}
BOX_MARGIN = 48
BOX_SIDE = (10, 40)
CHANGE_THRESHOLD = 0.02
BOXES_FILE = "defect_boxes.json"

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
    # "defects": procedural.add_defect over the picture; "textile": procedural.textile_flaw;
    # "small": one small defect drawn on a patch, its box recorded (the highres task)
    flaws: str = "defects"
    severity: tuple[float, float] = SEVERITY
    # None: TRAIN_PER_CLASS / TEST_PER_CLASS, read when the task is written
    train_per_class: int | None = None
    test_per_class: int | None = None
    file_format: str = "png"  # "png", or "jpeg" (JPEG_QUALITY)
    texture_size: int | None = None  # the texture at the pixel scale of a picture this size (None: size)


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
    # High-resolution photos with small defects whose places are recorded, for tiling and heatmaps
    # (module docstring): the carbon-fibre panel at 1024 px, its weave at the scale of a 256-px photo.
    "highres": DemoTask("carbon fibre", 105, ((0.18, 0.18, 0.2), "grey"), (1.6, 2.2),
                        "colour photograph of a dark carbon-fibre panel, 1024 px, its weave at the scale of a "
                        "256-px photo; one small defect (10-40 px) per defective photo, its box recorded; "
                        "dust specks",
                        size=1024, flaws="small", severity=(0.6, 1.0), train_per_class=16, test_per_class=40,
                        file_format="jpeg", texture_size=256),
}
DEFAULT_TASK = "carbon-fibre"


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


def _fine_dust(img: np.ndarray, rng: np.random.Generator, texture_size: int) -> np.ndarray:
    """Dust on a photo whose texture has the pixel scale of a ``texture_size``-px picture: specks as
    small and as many per ``texture_size``-px square as `_dust` puts on such a picture (at 1024 px with
    texture_size 256: about 19 specks of 1-3 px radius). Changes ``img`` in place."""
    s = img.shape[0]
    squares = max(1, round((s / texture_size) ** 2))
    for _ in range(int(rng.choice([0, 0, 1, 1, 2, 3], size=squares).sum())):
        cy, cx = rng.uniform(0, s, 2)
        r = rng.uniform(0.6, 1.4) * texture_size / 128
        amount = rng.uniform(0.2, 0.5)
        reach = int(np.ceil(4 * r))  # exp(-8) beyond: nothing
        y0, y1 = max(0, int(cy) - reach), min(s, int(cy) + reach + 1)
        x0, x1 = max(0, int(cx) - reach), min(s, int(cx) + reach + 1)
        y = np.arange(y0, y1, dtype=np.float32)[:, None]
        x = np.arange(x0, x1, dtype=np.float32)[None, :]
        m = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))[..., None]
        window = img[y0:y1, x0:x1]
        img[y0:y1, x0:x1] = window + (1 - window) * m * amount
    return img


def _small_defect(img: np.ndarray, field: np.ndarray, rng: np.random.Generator, defect: str, light,
                  spec: DemoTask) -> tuple[np.ndarray, tuple[int, int], list[int]]:
    """One small ``defect`` on the unlit surface ``img`` (lit by ``field``): the patch with the defect,
    where the patch goes (x0, y0), and the defect's box [x0, y0, x1, y1] in the photo. Draws again
    until a draw keeps the rules (the constants above DemoTask)."""
    p, s = DEFECT_PATCH, spec.size
    for _ in range(200):
        x0, y0 = (int(v) for v in rng.integers(BOX_MARGIN, s - BOX_MARGIN - p + 1, 2))
        before = img[y0:y0 + p, x0:x0 + p]
        after = P.add_defect(before.copy(), rng, defect, light, rng.uniform(*spec.severity), rng.uniform(*SCALE),
                             DEFECT_LINE_WIDTH.get(defect, 1.0))
        lit = field[y0:y0 + p, x0:x0 + p, None]
        changed = (np.abs(np.clip(after * lit, 0, 1) - np.clip(before * lit, 0, 1)) > CHANGE_THRESHOLD).any(axis=2)
        ys, xs = np.nonzero(changed)
        if ys.size == 0 or min(ys.min(), xs.min()) == 0 or max(ys.max(), xs.max()) == p - 1:
            continue
        if BOX_SIDE[0] <= max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 <= BOX_SIDE[1]:
            box = [x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1]
            return after, (x0, y0), box
    raise RuntimeError(f"no {defect} of {BOX_SIDE[0]}-{BOX_SIDE[1]} px in 200 draws")  # not seen in practice


def _render_small_defect(key: list[int], spec: DemoTask, class_name: str,
                         with_defect: bool) -> tuple[np.ndarray, list[int] | None]:
    # Three random streams (the scene, the defect, dust and camera), so that the photo without its
    # defect differs from it only where the defect is.
    scene, flaw, camera = (np.random.default_rng(key + [part]) for part in range(3))
    colour = spec.colours[int(scene.random() * len(spec.colours))]
    img = P.render_surface(scene, spec.material, colour, spec.size, texture_size=spec.texture_size)
    field, light = P.lighting(scene, spec.size, 0.6)
    field = field * scene.uniform(*spec.exposure)
    box = None
    if _DEFECT_OF[class_name] != "none":
        patch, (x0, y0), box = _small_defect(img, field, flaw, _DEFECT_OF[class_name], light, spec)
        if with_defect:
            img[y0:y0 + DEFECT_PATCH, x0:x0 + DEFECT_PATCH] = patch
    img = _fine_dust(img, camera, spec.texture_size or spec.size)
    img = np.clip(img * field[..., None], 0, 1)
    img = P.apply_style(img, camera, STYLE)
    return P.to_uint8(img), box


def render_demo_image_with_box(seed: int, split: str, class_name: str, index: int, task: str = DEFAULT_TASK, *,
                               with_defect: bool = True) -> tuple[np.ndarray, list[int] | None]:
    """One picture of ``task`` as a (size, size, 3) uint8 array, and its defect's box [x0, y0, x1, y1]
    in pixels (x1, y1 exclusive): the pixels the defect changes by more than CHANGE_THRESHOLD. The box
    is None for a good part and for the tasks that do not record boxes (all but highres). A pure
    function of its arguments.

    ``with_defect=False`` (highres only): the same photo without its defect (the same surface, light,
    dust and sensor noise), and the defect's box all the same. Outside the box the two photos differ by
    at most 6 grey levels (the defect's changes under CHANGE_THRESHOLD, plus rounding).
    """
    spec = _task(task)
    if class_name not in spec.classes:
        raise ValueError(f"task {task!r} has no class {class_name!r}; its classes are {list(spec.classes)}")
    key = [int(seed), spec.seed_tag, _SPLITS[split], spec.classes.index(class_name), int(index)]
    if spec.flaws == "small":
        return _render_small_defect(key, spec, class_name, with_defect)
    if not with_defect:
        raise ValueError(f"task {task!r} does not record its defects; with_defect=False is for highres")
    rng = np.random.default_rng(key)
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
    return P.to_uint8(img), None


def render_demo_image(seed: int, split: str, class_name: str, index: int, task: str = DEFAULT_TASK) -> np.ndarray:
    """One picture of ``task`` as a (size, size, 3) uint8 array (SIZE but for the textile and highres
    tasks); a pure function of its arguments."""
    return render_demo_image_with_box(seed, split, class_name, index, task)[0]


def _encode(img: np.ndarray, file_format: str) -> bytes:
    buffer = io.BytesIO()
    if file_format == "jpeg":
        Image.fromarray(img).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    else:
        Image.fromarray(img).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def demo_png(seed: int, split: str, class_name: str, index: int, task: str = DEFAULT_TASK) -> bytes:
    """One picture of ``task`` as the PNG file `write_demo_task` writes (the same bytes, so the
    app's demo project and `dapt demo-data`'s folder hold the same files, by content hash); the
    highres task's files are JPEGs, not these."""
    return _encode(render_demo_image(seed, split, class_name, index, task), "png")


def task_counts(task: str = DEFAULT_TASK) -> dict[str, int]:
    """Pictures per class in each part of ``task``: {"train": n, "test": n}."""
    spec = _task(task)
    return {"train": TRAIN_PER_CLASS if spec.train_per_class is None else spec.train_per_class,
            "test": TEST_PER_CLASS if spec.test_per_class is None else spec.test_per_class}


def write_demo_task(out_dir, seed: int = 0, task: str = DEFAULT_TASK) -> dict:
    """Write ``task`` (a key of TASKS) as ``out_dir/{train,test}/<class name>/NNN.png`` (``NNN.jpg``
    for highres) and describe it. A task that records its defects' places (highres) also gets
    ``out_dir/defect_boxes.json``: {"format": 1, "image_size": [w, h], "boxes": {"train/scratch/000.jpg":
    [x0, y0, x1, y1], ...}} for every defective picture of both parts.

    The same ``seed`` gives byte-identical files. Existing files of the same names are overwritten;
    nothing else in ``out_dir`` is touched.
    """
    spec = _task(task)
    out = Path(out_dir)
    counts = task_counts(task)
    suffix = ".jpg" if spec.file_format == "jpeg" else ".png"
    boxes = {}
    for split, n in counts.items():
        for c in spec.classes:
            folder = out / split / c
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img, box = render_demo_image_with_box(seed, split, c, i, task)
                name = f"{i:03d}{suffix}"
                (folder / name).write_bytes(_encode(img, spec.file_format))
                if box is not None:
                    boxes[f"{split}/{c}/{name}"] = box
    summary = {
        "out_dir": str(out),
        "seed": int(seed),
        "classes": list(spec.classes),
        "train_per_class": counts["train"],
        "test_per_class": counts["test"],
        "train": str(out / "train"),
        "test": str(out / "test"),
        "image_size": spec.size,
        "file_format": spec.file_format,
        "task": task,
        "material": spec.material,
        "style": spec.description,
        "chance_accuracy": 1.0 / len(spec.classes),
    }
    if spec.flaws == "small":
        path = out / BOXES_FILE
        path.write_text(json.dumps({"format": 1, "image_size": [spec.size, spec.size], "boxes": boxes}, indent=1)
                        + "\n", encoding="utf-8")
        summary["defect_boxes"] = str(path)
    return summary
