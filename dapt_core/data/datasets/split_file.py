"""Readers for the eight benchmarks that come with CoOp's fixed split file `split_zhou_<Name>.json`.

The file holds {"train": [[relative_image_path, label, classname], ...], "val": [...], "test": [...]}; the
paths are relative to the dataset's image folder. Using these files (rather than re-splitting) is what makes
few-shot numbers comparable with the paper.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import DataError
from ..records import LabeledImage, Skipped, Split
from .layout import Required, clean_classname, require

PARTS = ("train", "val", "test")

# Caltech101 and EuroSAT folder names are not good prompt words; CoOp replaces them. The split files
# CoOp distributes usually carry the replacements already, so applying them again must be harmless.
CALTECH101_RENAMES = {
    "airplanes": "airplane",
    "Faces": "face",
    "Leopards": "leopard",
    "Motorbikes": "motorbike",
}
EUROSAT_RENAMES = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}


@dataclass(frozen=True)
class SplitFileLayout:
    """Where one split-file benchmark keeps its files, below the data root.

    Args:
        name: canonical dataset name.
        folder: the dataset's folder under the data root.
        split_file: name of the CoOp split file inside `folder`.
        image_base: folder (relative to `folder`) the split's image paths start from; "" is `folder` itself.
        image_folders: folders (relative to `folder`) that must exist, with how a user gets each.
        renames: raw class name -> name used in prompts, applied before underscores become spaces.
    """

    name: str
    folder: str
    split_file: str
    image_base: str
    image_folders: dict[str, str]
    renames: dict[str, str] = field(default_factory=dict)


def _extract_hint(archive: str, target: str) -> str:
    return f"Download {archive} (see CoOp's DATASETS.md) and extract it so that this folder holds {target}."


SPLIT_FILE_LAYOUTS: dict[str, SplitFileLayout] = {
    layout.name: layout
    for layout in (
        SplitFileLayout(
            "Caltech101", "caltech-101", "split_zhou_Caltech101.json", "101_ObjectCategories",
            {"101_ObjectCategories": _extract_hint("101_ObjectCategories.tar.gz", "one folder per category")},
            CALTECH101_RENAMES,
        ),
        SplitFileLayout(
            "OxfordPets", "oxford_pets", "split_zhou_OxfordPets.json", "images",
            {"images": _extract_hint("images.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/pets/",
                                     "the .jpg files")},
        ),
        SplitFileLayout(
            # Its split paths start with cars_train/ or cars_test/, so they are relative to the dataset folder.
            "StanfordCars", "stanford_cars", "split_zhou_StanfordCars.json", "",
            {"cars_train": _extract_hint("cars_train.tgz", "the training .jpg files"),
             "cars_test": _extract_hint("cars_test.tgz", "the test .jpg files")},
        ),
        SplitFileLayout(
            "Flowers102", "oxford_flowers", "split_zhou_OxfordFlowers.json", "jpg",
            {"jpg": _extract_hint("102flowers.tgz from https://www.robots.ox.ac.uk/~vgg/data/flowers/102/",
                                  "image_00001.jpg ... image_08189.jpg")},
        ),
        SplitFileLayout(
            "Food101", "food-101", "split_zhou_Food101.json", "images",
            {"images": _extract_hint("food-101.tar.gz", "one folder per dish")},
        ),
        SplitFileLayout(
            "SUN397", "sun397", "split_zhou_SUN397.json", "SUN397",
            {"SUN397": _extract_hint("SUN397.tar.gz", "the letter folders a/ ... z/")},
        ),
        SplitFileLayout(
            "DTD", "dtd", "split_zhou_DescribableTextures.json", "images",
            {"images": _extract_hint("dtd-r1.0.1.tar.gz", "one folder per texture")},
        ),
        SplitFileLayout(
            "EuroSAT", "eurosat", "split_zhou_EuroSAT.json", "2750",
            {"2750": _extract_hint("EuroSAT.zip", "one folder per land-use class")},
            EUROSAT_RENAMES,
        ),
        SplitFileLayout(
            "UCF101", "ucf101", "split_zhou_UCF101.json", "UCF-101-midframes",
            {"UCF-101-midframes": _extract_hint("UCF-101-midframes.zip (CoOp's middle video frames)",
                                                "one folder per action")},
        ),
    )
}


def read_split_file_dataset(layout: SplitFileLayout, root: Path) -> Split:
    """Read one split-file benchmark under the data root.

    Images listed in the split file but absent on disk are reported in `skipped` (and a note), not used.

    Args:
        layout: which benchmark and where its files are.
        root: the data root holding the dataset folders (caltech-101/, oxford_pets/, ...).
    """
    dataset_dir = root / layout.folder
    split_path = dataset_dir / layout.split_file
    require(layout.name, [
        Required(dataset_dir, f"Create it under the data root {root} as CoOp's DATASETS.md describes.", True),
        *(Required(dataset_dir / sub, hint, True) for sub, hint in layout.image_folders.items()),
        Required(split_path, f"Download {layout.split_file} (link in the {layout.name} section of CoOp's "
                             f"DATASETS.md) and put it at {split_path}."),
    ])
    entries = load_split_entries(split_path)
    return split_from_entries(entries, dataset_dir / layout.image_base, split_path, layout.renames)


def load_split_entries(split_path: Path) -> dict[str, list[tuple[str, int, str]]]:
    """The checked [relative_path, label, classname] entries of each part of a split file.

    Args:
        split_path: the split_zhou_<Name>.json file.
    """
    try:
        content = json.loads(split_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"Split file {split_path} cannot be read ({exc}); download it again.") from exc
    if not isinstance(content, dict) or any(part not in content for part in PARTS):
        raise DataError(f"Split file {split_path} must hold the parts {', '.join(PARTS)}; download it again.")
    parts: dict[str, list[tuple[str, int, str]]] = {}
    for part in PARTS:
        parts[part] = [_checked_entry(entry, part, index, split_path) for index, entry in enumerate(content[part])]
    return parts


def _checked_entry(entry: object, part: str, index: int, split_path: Path) -> tuple[str, int, str]:
    ok = (
        isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
        and isinstance(entry[1], int) and not isinstance(entry[1], bool) and entry[1] >= 0
        and isinstance(entry[2], str)
    )
    if not ok:
        raise DataError(
            f"Split file {split_path}: entry {index} of '{part}' is {entry!r}, expected "
            "[relative_image_path, label, classname]; download the file again."
        )
    return entry[0], entry[1], entry[2]


def split_from_entries(
    entries: dict[str, list[tuple[str, int, str]]],
    image_base: Path,
    split_path: Path,
    renames: dict[str, str] | None = None,
) -> Split:
    """Turn checked split entries into a Split, dropping images that are not on disk.

    Args:
        entries: part name -> [(relative_path, label, raw classname), ...].
        image_base: folder the relative paths start from.
        split_path: the split file, named in messages.
        renames: raw class name -> prompt name, see `clean_classname`.
    """
    classnames = classnames_from_entries(entries, split_path, renames)
    skipped: list[Skipped] = []
    parts: dict[str, list[LabeledImage]] = {}
    for part in PARTS:
        present: list[LabeledImage] = []
        for relative, label, _ in entries[part]:
            path = image_base / relative
            if path.is_file():
                present.append(LabeledImage(path, label))
            else:
                skipped.append(Skipped(str(path), f"listed in {split_path.name} ({part}) but not found on disk"))
        parts[part] = present
    listed = sum(len(entries[part]) for part in PARTS)
    if listed and not any(parts.values()):
        raise DataError(
            f"None of the {listed} images listed in {split_path} exist under {image_base}; "
            "the images are probably extracted somewhere else. Move them so the listed paths resolve there."
        )
    notes = []
    if skipped:
        notes.append(f"{len(skipped)} images listed in {split_path.name} are missing on disk and were left out "
                     f"(first: {skipped[0].path}).")
    return Split(classnames, parts["train"], parts["test"], parts["val"], skipped, notes)


def classnames_from_entries(
    entries: dict[str, list[tuple[str, int, str]]], split_path: Path, renames: dict[str, str] | None = None
) -> list[str]:
    """Cleaned class names in label order, taken from every part of a split file.

    Raises DataError if a label carries two names or if some label between 0 and the largest has none.

    Args:
        entries: part name -> [(relative_path, label, raw classname), ...].
        split_path: the split file, named in messages.
        renames: raw class name -> prompt name, see `clean_classname`.
    """
    names: dict[int, str] = {}
    for part in PARTS:
        for _, label, raw in entries[part]:
            name = clean_classname(raw, renames)
            if names.setdefault(label, name) != name:
                raise DataError(f"Split file {split_path} gives label {label} two class names "
                                f"('{names[label]}' and '{name}'); download the file again.")
    if not names:
        raise DataError(f"Split file {split_path} lists no images; download it again.")
    gaps = [label for label in range(max(names) + 1) if label not in names]
    if gaps:
        raise DataError(f"Split file {split_path} has no images for labels {gaps[:10]}; download it again.")
    return [names[label] for label in range(len(names))]
