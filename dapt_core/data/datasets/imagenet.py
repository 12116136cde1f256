"""Readers for ImageNet and the four test-only variants used for domain generalisation.

All of them name classes through a `classnames.txt` ("<wnid> <class name>" per line; CoOp distributes the
CLIP class names in this form). ImageNet's label order is the sorted wnid order, which is also the order of
ImageNetV2's numbered folders and of every torchvision ImageFolder, so one name list serves all five.

ImageNet-A and ImageNet-R cover 200 of the 1000 classes. Their labels index those 200 (sorted by wnid) and
their names are the very strings ImageNet's reader gives. Names alone do not identify a class, though: CLIP's
list names two wnids "missile" and two "sunglasses", and ImageNet-A holds one of each, so map their labels
onto ImageNet's with `imagenet_label_map`, which goes through the wnids.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import DataError
from ..records import LabeledImage, Skipped, Split
from .layout import Required, clean_classname, is_image_name, list_class_folder, require, subfolder_names

IMAGENET_CLASS_COUNT = 1000
SUBSET_CLASS_COUNT = 200


# dataset name -> (folder under the data root, image folder inside it, how to get the images)
VARIANT_LAYOUTS: dict[str, tuple[str, str, str]] = {
    "ImageNetV2": (
        "imagenetv2", "imagenetv2-matched-frequency-format-val",
        "Download imagenetv2-matched-frequency.tar.gz (https://github.com/modestyachts/ImageNetV2) and extract "
        "it here; it holds folders 0 ... 999.",
    ),
    "ImageNetSketch": (
        "imagenet-sketch", "images",
        "Download ImageNet-Sketch (https://github.com/HaohanWang/ImageNet-Sketch) and extract it here; if the "
        "archive's folder is called sketch/, rename it to images/.",
    ),
    "ImageNetA": (
        "imagenet-adversarial", "imagenet-a",
        "Download imagenet-a.tar (https://github.com/hendrycks/natural-adv-examples) and extract it here.",
    ),
    "ImageNetR": (
        "imagenet-rendition", "imagenet-r",
        "Download imagenet-r.tar (https://github.com/hendrycks/imagenet-r) and extract it here.",
    ),
}

_CLASSNAMES_HINT = ("Download classnames.txt (link in the ImageNet section of CoOp's DATASETS.md; the CLIP class "
                    "names) and put it at {path}.")


def read_imagenet_classnames(path: Path) -> dict[str, str]:
    """wnid -> cleaned class name, ordered by wnid (ImageNet's label order).

    Args:
        path: a classnames.txt with "<wnid> <class name>" lines; the name may contain spaces.
    """
    names: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        wnid, _, raw = line.strip().partition(" ")
        if not raw.strip():
            raise DataError(f"{path} line {number} has no class name after '{wnid}'; download the file again.")
        if wnid in names:
            raise DataError(f"{path} lists {wnid} twice; download the file again.")
        names[wnid] = clean_classname(raw)
    if not names:
        raise DataError(f"{path} is empty; download classnames.txt again.")
    return {wnid: names[wnid] for wnid in sorted(names)}


def read_imagenet(root: Path) -> Split:
    """ImageNet: train from images/train/<wnid>/, test from the official validation images/val/<wnid>/.

    The validation part stays empty: CoOp tests on the official validation set (and reuses it as its own
    "val"), so anything tuned on a val part here would be tuned on test images.

    Args:
        root: the data root holding imagenet/.
    """
    dataset_dir = root / "imagenet"
    images_hint = ("Download ILSVRC2012 from https://image-net.org and extract the training and validation sets "
                   "to images/train and images/val, one folder per wnid.")
    classnames_path = dataset_dir / "classnames.txt"
    require("ImageNet", [
        Required(dataset_dir, f"Create it under the data root {root} as CoOp's DATASETS.md describes.", True),
        Required(dataset_dir / "images" / "train", images_hint, True),
        Required(dataset_dir / "images" / "val", images_hint, True),
        Required(classnames_path, _CLASSNAMES_HINT.format(path=classnames_path)),
    ])
    names = read_imagenet_classnames(classnames_path)
    label_of = {wnid: label for label, wnid in enumerate(names)}
    val_dir = dataset_dir / "images" / "val"
    _reject_flat_val(val_dir)
    train, train_skipped = read_wnid_folders(dataset_dir / "images" / "train", label_of, classnames_path)
    test, test_skipped = read_wnid_folders(val_dir, label_of, classnames_path)
    notes = ["ImageNet has no validation part: as in CoOp, the official validation images are the test set."]
    notes += _class_count_notes("ImageNet", len(names), IMAGENET_CLASS_COUNT)
    notes += _empty_class_notes("training", train, names)
    return Split(list(names.values()), train, test, [], train_skipped + test_skipped, notes)


def read_imagenet_variant(name: str, root: Path) -> Split:
    """One of the test-only variants: ImageNetV2, ImageNetSketch, ImageNetA or ImageNetR.

    V2 and Sketch keep ImageNet's 1000 classes and labels; A and R get the classes they hold, in ImageNet order.

    Args:
        name: canonical name, a key of VARIANT_LAYOUTS.
        root: the data root holding the variant's folder.
    """
    folder, image_folder, images_hint = VARIANT_LAYOUTS[name]
    dataset_dir = root / folder
    image_dir = dataset_dir / image_folder
    require(name, [
        Required(dataset_dir, f"Create it under the data root {root} as CoOp's DATASETS.md describes.", True),
        Required(image_dir, images_hint, True),
    ])
    classnames_path = variant_classnames_path(name, root)
    names = read_imagenet_classnames(classnames_path)
    if name == "ImageNetV2":
        test, skipped = read_numbered_folders(image_dir, len(names))
        classnames = list(names.values())
    elif name == "ImageNetSketch":
        test, skipped = read_wnid_folders(image_dir, {w: i for i, w in enumerate(names)}, classnames_path)
        classnames = list(names.values())
    else:
        wnids = subset_wnids(image_dir, names, classnames_path)
        test, skipped = read_wnid_folders(image_dir, {w: i for i, w in enumerate(wnids)}, classnames_path)
        classnames = [names[w] for w in wnids]
    notes = [f"{name} is a test-only dataset: train and val are empty."]
    expected = SUBSET_CLASS_COUNT if name in ("ImageNetA", "ImageNetR") else IMAGENET_CLASS_COUNT
    notes += _class_count_notes(name, len(classnames), expected)
    return Split(classnames, [], test, [], skipped, notes)


def variant_classnames_path(name: str, root: Path) -> Path:
    """The classnames.txt a variant uses: its own copy (as DATASETS.md asks), else ImageNet's.

    Args:
        name: canonical variant name.
        root: the data root.
    """
    own = root / VARIANT_LAYOUTS[name][0] / "classnames.txt"
    shared = root / "imagenet" / "classnames.txt"
    if own.is_file():
        return own
    if shared.is_file():
        return shared
    raise DataError(
        f"{name}: file classnames.txt is missing: expected at {own} (or at {shared}). Copy ImageNet's "
        "classnames.txt there, or download it (link in the ImageNet section of CoOp's DATASETS.md)."
    )


def subset_wnids(image_dir: Path, names: dict[str, str], classnames_path: Path) -> list[str]:
    """The sorted wnid folders of ImageNet-A or -R, each checked against classnames.txt.

    Args:
        image_dir: imagenet-a/ or imagenet-r/ (its README.txt is a file and is ignored).
        names: wnid -> class name from classnames.txt.
        classnames_path: named in the error for an unknown wnid.
    """
    wnids = subfolder_names(image_dir)
    unknown = [w for w in wnids if w not in names]
    if unknown:
        raise DataError(f"Folders {unknown[:5]} in {image_dir} have no line in {classnames_path}; "
                        "use the classnames.txt of ImageNet-1k from CoOp's DATASETS.md.")
    if not wnids:
        raise DataError(f"{image_dir} holds no class folders; extract the dataset archive there.")
    return wnids


def read_wnid_folders(
    image_dir: Path, label_of: dict[str, int], classnames_path: Path
) -> tuple[list[LabeledImage], list[Skipped]]:
    """The images of every <wnid>/ folder in `image_dir`, labelled through `label_of`.

    Args:
        image_dir: folder holding one sub-folder per wnid.
        label_of: wnid -> label.
        classnames_path: named in the error for a wnid folder without a class name.
    """
    wnids = subfolder_names(image_dir)
    unknown = [w for w in wnids if w not in label_of]
    if unknown:
        raise DataError(f"Folders {unknown[:5]} in {image_dir} have no line in {classnames_path}; "
                        "check that classnames.txt is ImageNet's (from CoOp's DATASETS.md).")
    images: list[LabeledImage] = []
    skipped: list[Skipped] = []
    for wnid in wnids:
        found, ignored = list_class_folder(image_dir / wnid, label_of[wnid])
        images.extend(found)
        skipped.extend(ignored)
    return images, skipped


def read_numbered_folders(image_dir: Path, class_count: int) -> tuple[list[LabeledImage], list[Skipped]]:
    """ImageNetV2's folders 0 ... 999, whose number is the ImageNet label.

    Args:
        image_dir: imagenetv2-matched-frequency-format-val/.
        class_count: number of ImageNet classes; a folder number must be below it.
    """
    folders = subfolder_names(image_dir)
    bad = [f for f in folders if not f.isdigit() or int(f) >= class_count]
    if bad:
        raise DataError(f"{image_dir} should hold folders 0 ... {class_count - 1} (one per ImageNet label) but "
                        f"also holds {bad[:5]}; extract imagenetv2-matched-frequency.tar.gz again.")
    images: list[LabeledImage] = []
    skipped: list[Skipped] = []
    for folder in sorted(folders, key=int):
        found, ignored = list_class_folder(image_dir / folder, int(folder))
        images.extend(found)
        skipped.extend(ignored)
    return images, skipped


def imagenet_label_map(name: str, root: Path) -> list[int]:
    """For each class of an ImageNet variant (in its label order), that class's label in ImageNet.

    Goes through wnids, because CLIP's ImageNet names are not unique ("missile", "sunglasses").

    Args:
        name: canonical name: ImageNet, ImageNetV2, ImageNetSketch, ImageNetA or ImageNetR.
        root: the data root.
    """
    if name == "ImageNet":
        path = root / "imagenet" / "classnames.txt"
        require(name, [Required(path, _CLASSNAMES_HINT.format(path=path))])
        return list(range(len(read_imagenet_classnames(path))))
    if name in ("ImageNetV2", "ImageNetSketch"):
        return list(range(len(read_imagenet_classnames(variant_classnames_path(name, root)))))
    folder, image_folder, images_hint = VARIANT_LAYOUTS[name]
    image_dir = root / folder / image_folder
    require(name, [Required(image_dir, images_hint, True)])
    classnames_path = variant_classnames_path(name, root)
    names = read_imagenet_classnames(classnames_path)
    position = {wnid: label for label, wnid in enumerate(names)}
    return [position[w] for w in subset_wnids(image_dir, names, classnames_path)]


def _reject_flat_val(val_dir: Path) -> None:
    # The ILSVRC archive ships val/ as 50,000 loose files; labels then live in a separate file we do not read.
    if not subfolder_names(val_dir) and any(is_image_name(p.name) for p in val_dir.iterdir()):
        raise DataError(
            f"ImageNet: {val_dir} holds loose images, not one folder per wnid. Sort them into <wnid>/ folders "
            "(for example with the widely used valprep.sh script) as CoOp's DATASETS.md expects."
        )


def _class_count_notes(name: str, found: int, expected: int) -> list[str]:
    if found == expected:
        return []
    return [f"{name} has {found} classes here; the full dataset has {expected}. Results will not be comparable "
            "with published numbers."]


def _empty_class_notes(part: str, images: list[LabeledImage], names: dict[str, str]) -> list[str]:
    present = {image.label for image in images}
    empty = [name for label, name in enumerate(names.values()) if label not in present]
    if not empty:
        return []
    return [f"{len(empty)} classes have no {part} images (first: {', '.join(empty[:5])})."]
