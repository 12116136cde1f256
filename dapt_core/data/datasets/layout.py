"""Checks and listings shared by the benchmark readers: required paths, image files, class-name cleaning.

Nothing here writes to disk: the readers only look at a dataset folder, never change it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError
from ..records import LabeledImage, Skipped

# Where every download link and expected layout is documented; quoted in errors so a user can act.
COOP_DATASETS_GUIDE = "https://github.com/KaiyangZhou/CoOp/blob/main/DATASETS.md"

# Suffixes the benchmark folders use (ImageNet ".JPEG", ImageNetV2 ".jpeg", ...), compared lower-case.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True)
class Required:
    """A file or folder a reader needs, and how a user gets it when it is missing.

    Args:
        path: full path where the reader expects it.
        how_to_get: one sentence telling the user where it comes from.
        is_dir: True for a folder, False for a file.
    """

    path: Path
    how_to_get: str
    is_dir: bool = False


def require(dataset: str, needed: list[Required]) -> None:
    """Raise one DataError naming every missing path, with its full location and how to get it.

    Args:
        dataset: canonical dataset name, shown first in the message.
        needed: the paths to check, in the order they should be reported.
    """
    missing = [item for item in needed if not (item.path.is_dir() if item.is_dir else item.path.is_file())]
    if not missing:
        return
    lines = []
    for item in missing:
        # Inside a missing folder everything is missing too; name those contents once instead of repeating.
        if any(other.is_dir and other.path in item.path.parents for other in missing):
            continue
        kind = "folder" if item.is_dir else "file"
        line = f"{kind} {item.path.name} is missing: expected at {item.path}. {item.how_to_get}"
        contents = [other.path.relative_to(item.path).as_posix() + ("/" if other.is_dir else "")
                    for other in missing if item.path in other.path.parents]
        if contents:
            line += f" It should hold {', '.join(contents)}."
        lines.append(line)
    raise DataError(f"{dataset}: " + " | ".join(lines) + f" (layouts: {COOP_DATASETS_GUIDE})")


def clean_classname(raw: str, renames: dict[str, str] | None = None) -> str:
    """The class name as the CoOp code puts it into prompts: known renames first, then underscores to spaces.

    Args:
        raw: the name as written in the split file, variants list or classnames.txt.
        renames: dataset-specific replacements keyed by the raw name (e.g. EuroSAT's "AnnualCrop").
    """
    name = raw.strip()
    if renames and name in renames:
        name = renames[name]
    return name.replace("_", " ")


def is_image_name(name: str) -> bool:
    """True for a file name with an image suffix (case-insensitive)."""
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def list_class_folder(folder: Path, label: int) -> tuple[list[LabeledImage], list[Skipped]]:
    """The images directly inside one class folder, sorted by name, and the other files it holds.

    Hidden files (".DS_Store", "._x.jpg") are ignored silently; other non-image files are reported.

    Args:
        folder: the class folder.
        label: label given to every image in it.
    """
    images: list[LabeledImage] = []
    skipped: list[Skipped] = []
    # scandir once per folder: ImageNet's train part has 1.28 M files, a stat per file would be slow.
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if entry.is_file() and is_image_name(entry.name):
                images.append(LabeledImage(Path(entry.path), label))
            elif entry.is_file():
                skipped.append(Skipped(entry.path, "not an image file (unknown suffix); ignored"))
    return images, skipped


def subfolder_names(folder: Path) -> list[str]:
    """Sorted names of the non-hidden sub-folders of `folder` (plain files such as README.txt are left out)."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
