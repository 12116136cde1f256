"""Reader for FGVC-Aircraft, which has its own fixed splits and so no CoOp split file.

Layout (the `data/` folder of fgvc-aircraft-2013b.tar.gz renamed to `fgvc_aircraft/`):
    fgvc_aircraft/images/<image id>.jpg
    fgvc_aircraft/variants.txt                 one variant (class) per line, in label order
    fgvc_aircraft/images_variant_train.txt     "<image id> <variant>" per line; also _val and _test
"""

from __future__ import annotations

from pathlib import Path

from ...errors import DataError
from ..records import LabeledImage, Skipped, Split
from .layout import Required, clean_classname, require

NAME = "FGVCAircraft"
FOLDER = "fgvc_aircraft"
PART_FILES = {"train": "images_variant_train.txt", "val": "images_variant_val.txt", "test": "images_variant_test.txt"}

_GET_ARCHIVE = ("Download fgvc-aircraft-2013b.tar.gz (see CoOp's DATASETS.md), keep its data/ folder and "
                "rename it to fgvc_aircraft/ under the data root.")


def read_fgvc_aircraft(root: Path) -> Split:
    """Read FGVC-Aircraft's variant-level train/val/test parts.

    Args:
        root: the data root holding fgvc_aircraft/.
    """
    dataset_dir = root / FOLDER
    require(NAME, [
        Required(dataset_dir, _GET_ARCHIVE, True),
        Required(dataset_dir / "images", _GET_ARCHIVE, True),
        Required(dataset_dir / "variants.txt", _GET_ARCHIVE),
        *(Required(dataset_dir / name, _GET_ARCHIVE) for name in PART_FILES.values()),
    ])
    variants = read_variants(dataset_dir / "variants.txt")
    label_of = {variant: label for label, variant in enumerate(variants)}
    parts: dict[str, list[LabeledImage]] = {}
    skipped: list[Skipped] = []
    for part, file_name in PART_FILES.items():
        parts[part], missing = read_variant_list(dataset_dir / file_name, dataset_dir / "images", label_of)
        skipped.extend(missing)
    notes = [f"{len(skipped)} listed images are missing on disk and were left out."] if skipped else []
    classnames = [clean_classname(variant) for variant in variants]
    return Split(classnames, parts["train"], parts["test"], parts["val"], skipped, notes)


def read_variants(path: Path) -> list[str]:
    """Variant names in label order, one per non-empty line (names such as "F-16A/B" keep their spaces).

    Args:
        path: variants.txt.
    """
    variants = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(set(variants)) != len(variants):
        raise DataError(f"{path} lists a variant twice; extract fgvc-aircraft-2013b.tar.gz again.")
    return variants


def read_variant_list(
    path: Path, image_dir: Path, label_of: dict[str, int]
) -> tuple[list[LabeledImage], list[Skipped]]:
    """The images of one part file, and those listed in it but missing on disk.

    Args:
        path: an images_variant_<part>.txt file ("<image id> <variant name>" per line).
        image_dir: the images/ folder.
        label_of: variant name -> label, from variants.txt.
    """
    images: list[LabeledImage] = []
    skipped: list[Skipped] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        image_id, _, variant = line.strip().partition(" ")
        if variant not in label_of:
            raise DataError(f"{path} line {number}: variant '{variant}' is not in variants.txt; "
                            "extract fgvc-aircraft-2013b.tar.gz again.")
        image_path = image_dir / f"{image_id}.jpg"
        if image_path.is_file():
            images.append(LabeledImage(image_path, label_of[variant]))
        else:
            skipped.append(Skipped(str(image_path), f"listed in {path.name} but not found on disk"))
    return images, skipped
