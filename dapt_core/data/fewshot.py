"""The few-shot protocol of CoOp and DAPT: K training images per class, a small validation part, full test.

The selection depends only on the dataset's contents, K and the seed (never on the order files were listed
in), and can be saved as JSON beside a run's outputs so that a rerun, or a comparison between methods, uses
exactly the same images. Nothing is ever written into the dataset folder.
"""

from __future__ import annotations

import json
import os
import random
from collections import defaultdict
from pathlib import Path

from .. import atomic
from ..errors import ConfigError, DataError
from .records import LabeledImage, Split

# CoOp caps the validation part at 4 images per class whatever the shot count.
VAL_SHOTS_CAP = 4
CACHE_KIND = "dapt-few-shot-selection"
CACHE_VERSION = 1


def few_shot_split(split: Split, shots: int, seed: int, cache_path: Path | None = None) -> Split:
    """Draw `shots` training images per class and min(shots, 4) validation images per class; keep test.

    Classes with fewer images than asked for keep all they have, and a note says which. If `cache_path`
    exists, its saved selection is reused after checking it still fits `split`; otherwise the new selection
    is saved there.

    Args:
        split: the full task, e.g. from `dapt_core.data.datasets.read_dataset`.
        shots: images per class to draw from `split.train` (1 or more).
        seed: seed of the draw; the paper averages seeds 1, 2 and 3.
        cache_path: JSON file beside the run's outputs (not inside the dataset folder), or None.
    """
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise ConfigError(f"Shots must be a whole number of at least 1, got {shots!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"Seed must be a whole number, got {seed!r}.")
    val_shots = min(shots, VAL_SHOTS_CAP)
    notes = list(split.notes)
    if cache_path is not None and Path(cache_path).exists():
        train, val = load_selection(Path(cache_path), split, shots, seed)
        notes.append(f"Few-shot selection reused from {cache_path}.")
    else:
        rng = random.Random(seed)
        train = draw_protocol_shots(split.train, len(split.classnames), shots, rng)
        val = draw_protocol_shots(split.val, len(split.classnames), val_shots, rng)
        if cache_path is not None:
            save_selection(Path(cache_path), split, train, val, shots, seed)
    notes += shortfall_notes(train, split.classnames, shots, "training")
    if split.val:
        notes += shortfall_notes(val, split.classnames, val_shots, "validation")
    return Split(list(split.classnames), train, list(split.test), val, list(split.skipped), notes)


def draw_protocol_shots(
    images: list[LabeledImage], class_count: int, per_class: int, rng: random.Random
) -> list[LabeledImage]:
    """The benchmark protocol's draw: up to `per_class` images of each class, drawn with the one
    generator `rng` advanced class by class (as CoOp's code draws), returned in label then path order.

    Each class's images are sorted by path before drawing, so the result does not depend on listing order.
    A folder task (`dapt tune`, the app) draws with data.folders' _draw_class_shots instead, a generator
    per class, so that adding a class to a project leaves the others' shots as they were; the two are not
    one function because either draw would change the images the other's saved runs and selections hold.

    Args:
        images: the images to draw from.
        class_count: number of classes; labels run from 0 to class_count - 1.
        per_class: how many to draw per class; a class with fewer keeps all of its images.
        rng: the random generator, advanced class by class in label order.
    """
    by_label: dict[int, list[LabeledImage]] = defaultdict(list)
    for image in images:
        by_label[image.label].append(image)
    chosen: list[LabeledImage] = []
    for label in range(class_count):
        pool = sorted(by_label.get(label, []), key=lambda image: str(image.path))
        picked = rng.sample(pool, per_class) if len(pool) > per_class else pool
        chosen.extend(sorted(picked, key=lambda image: str(image.path)))
    return chosen


def shortfall_notes(chosen: list[LabeledImage], classnames: list[str], per_class: int, part: str) -> list[str]:
    """One note naming the classes that got fewer than `per_class` images, or none.

    Args:
        chosen: the selected images.
        classnames: class names in label order.
        per_class: the number asked for.
        part: "training" or "validation", used in the message.
    """
    counts = [0] * len(classnames)
    for image in chosen:
        counts[image.label] += 1
    short = [f"'{classnames[label]}' ({count})" for label, count in enumerate(counts) if count < per_class]
    if not short:
        return []
    listed = ", ".join(short[:10]) + (f" and {len(short) - 10} more" if len(short) > 10 else "")
    return [f"{len(short)} classes have fewer than {per_class} {part} images, so all of theirs are used: {listed}."]


def images_base(split: Split) -> Path:
    """The deepest folder holding every image of `split`; cached paths are stored relative to it.

    Args:
        split: the full task.
    """
    folders = {str(image.path.parent) for image in (*split.train, *split.val, *split.test)}
    if not folders:
        raise DataError("The dataset has no images, so there is nothing to draw shots from.")
    return Path(os.path.commonpath(sorted(folders)))


def save_selection(
    path: Path, split: Split, train: list[LabeledImage], val: list[LabeledImage], shots: int, seed: int
) -> None:
    """Write the selection as JSON (relative paths and labels, shots, seed, class names), atomically.

    Args:
        path: the cache file; its folder is created if needed.
        split: the full task the selection was drawn from.
        train: selected training images.
        val: selected validation images.
        shots: shots per class asked for.
        seed: seed of the draw.
    """
    base = images_base(split)
    content = {
        "kind": CACHE_KIND,
        "version": CACHE_VERSION,
        "shots": shots,
        "seed": seed,
        "classnames": list(split.classnames),
        "images_base": str(base),  # informative only: paths are resolved against the current dataset
        "train": [[image.path.relative_to(base).as_posix(), image.label] for image in train],
        "val": [[image.path.relative_to(base).as_posix(), image.label] for image in val],
    }
    atomic.write_text(path, _one_image_per_line(content))


def load_selection(path: Path, split: Split, shots: int, seed: int) -> tuple[list[LabeledImage], list[LabeledImage]]:
    """The saved training and validation selection, checked against the current dataset.

    Raises DataError (telling the user to delete the file) when the file is damaged, was made for other
    shots, seed or classes, or names images that are no longer part of the dataset or on disk.

    Args:
        path: the cache file.
        split: the full task as read now.
        shots: shots per class asked for now.
        seed: seed asked for now.
    """
    delete = f"Delete {path} to draw a new selection."
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"The saved few-shot selection {path} cannot be read ({exc}). {delete}") from exc
    if not isinstance(content, dict) or content.get("kind") != CACHE_KIND or content.get("version") != CACHE_VERSION:
        raise DataError(f"{path} is not a few-shot selection saved by this version of DAPT Studio. {delete}")
    if content.get("shots") != shots or content.get("seed") != seed:
        raise DataError(f"{path} holds {content.get('shots')} shots with seed {content.get('seed')}, but "
                        f"{shots} shots with seed {seed} were asked for. {delete}")
    saved_names = content.get("classnames")
    if not isinstance(saved_names, list) or len(saved_names) != len(split.classnames):
        count = len(saved_names) if isinstance(saved_names, list) else "no"
        raise DataError(f"{path} was made for {count} classes but the dataset now has "
                        f"{len(split.classnames)}. {delete}")
    if saved_names != list(split.classnames):
        changed = next(i for i, (a, b) in enumerate(zip(saved_names, split.classnames)) if a != b)
        raise DataError(f"{path} was made for other class names (label {changed}: '{saved_names[changed]}' "
                        f"then, '{split.classnames[changed]}' now). {delete}")
    base = images_base(split)
    train = _resolve_saved(content.get("train"), split.train, base, "train", path)
    val = _resolve_saved(content.get("val"), split.val, base, "val", path)
    return train, val


def _resolve_saved(
    saved: object, pool: list[LabeledImage], base: Path, part: str, path: Path
) -> list[LabeledImage]:
    # The dataset may have moved since the file was written, so match by path relative to the images' base.
    delete = f"Delete {path} to draw a new selection."
    if not isinstance(saved, list):
        raise DataError(f"{path} has no '{part}' list. {delete}")
    by_relative = {image.path.relative_to(base).as_posix(): image for image in pool}
    chosen: list[LabeledImage] = []
    for entry in saved:
        ok = isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], int)
        if not ok:
            raise DataError(f"{path}: '{part}' entry {entry!r} is not [relative_path, label]. {delete}")
        image = by_relative.get(entry[0])
        if image is None or image.label != entry[1]:
            raise DataError(f"{path} selects {entry[0]} (label {entry[1]}) for {part}, which is not in the "
                            f"dataset's {part} part under {base} with that label. {delete}")
        if not image.path.is_file():
            raise DataError(f"{path} selects {image.path}, which is missing on disk. {delete}")
        chosen.append(image)
    return chosen


def _one_image_per_line(content: dict) -> str:
    # json.dumps(indent=...) spreads each [path, label] over four lines; one per line keeps the file readable.
    fields = []
    for key, value in content.items():
        if key in ("train", "val"):
            rows = ",\n  ".join(json.dumps(entry) for entry in value)
            fields.append(f" {json.dumps(key)}: [\n  {rows}\n ]" if value else f" {json.dumps(key)}: []")
        else:
            fields.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(fields) + "\n}\n"
