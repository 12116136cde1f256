"""The paper's benchmark datasets, read from the folder layouts of CoOp's DATASETS.md.

    from dapt_core.data.datasets import read_dataset
    split = read_dataset("OxfordPets", "/data")     # /data/oxford_pets/{images/, split_zhou_OxfordPets.json}

Each reader returns a `Split` with class names cleaned the way CoOp puts them into prompts, and never writes
into the dataset folder (few-shot selections are saved by `dapt_core.data.fewshot`, beside a run's outputs).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ...errors import DataError
from ..records import Split
from . import imagenet
from .fgvc_aircraft import read_fgvc_aircraft
from .split_file import SPLIT_FILE_LAYOUTS, read_split_file_dataset

# The 11 few-shot benchmarks, in the order of the paper's tables.
FEW_SHOT_BENCHMARKS = (
    "ImageNet", "Caltech101", "OxfordPets", "StanfordCars", "Flowers102", "Food101",
    "FGVCAircraft", "SUN397", "DTD", "EuroSAT", "UCF101",
)
# Test-only targets of domain generalisation from 16-shot ImageNet.
DOMAIN_SHIFT_TARGETS = ("ImageNetV2", "ImageNetSketch", "ImageNetA", "ImageNetR")
DATASETS = FEW_SHOT_BENCHMARKS + DOMAIN_SHIFT_TARGETS

# Folder of each dataset under the data root (CoOp's DATASETS.md).
DATASET_FOLDERS: dict[str, str] = {
    **{name: layout.folder for name, layout in SPLIT_FILE_LAYOUTS.items()},
    "ImageNet": "imagenet",
    "FGVCAircraft": "fgvc_aircraft",
    **{name: layout[0] for name, layout in imagenet.VARIANT_LAYOUTS.items()},
}

# CoOp's own class names for two datasets, as they appear in its configs and the recipe's tables.
_ALIASES = {"oxfordflowers": "Flowers102", "describabletextures": "DTD"}


def _readers() -> dict[str, Callable[[Path], Split]]:
    readers: dict[str, Callable[[Path], Split]] = {
        "ImageNet": imagenet.read_imagenet,
        "FGVCAircraft": read_fgvc_aircraft,
    }
    for name, layout in SPLIT_FILE_LAYOUTS.items():
        readers[name] = lambda root, layout=layout: read_split_file_dataset(layout, root)
    for name in imagenet.VARIANT_LAYOUTS:
        readers[name] = lambda root, name=name: imagenet.read_imagenet_variant(name, root)
    return readers


_READERS = _readers()


def canonical_name(name: str) -> str:
    """The canonical spelling of a dataset name, ignoring case, spaces, '-' and '_' ("imagenet-a" -> "ImageNetA").

    Args:
        name: a dataset name as a user typed it.
    """
    key = "".join(ch for ch in name.lower() if ch not in " -_")
    by_key = {known.lower(): known for known in DATASETS} | _ALIASES
    if key not in by_key:
        raise DataError(f"Unknown dataset '{name}'. Known datasets: {', '.join(DATASETS)}.")
    return by_key[key]


def read_dataset(name: str, root: Path | str) -> Split:
    """Read one benchmark from its CoOp layout under `root`.

    Args:
        name: dataset name, case-insensitive (see DATASETS).
        root: the data root holding imagenet/, caltech-101/, oxford_pets/, ... (CoOp's $DATA).
    """
    canonical = canonical_name(name)
    return _READERS[canonical](Path(root).expanduser().absolute())


def imagenet_label_map(name: str, root: Path | str) -> list[int]:
    """ImageNet's label for each class of an ImageNet variant, in the variant's label order.

    Use it to evaluate a 1000-way ImageNet model on ImageNet-A or -R (200 classes): keep the logits at these
    indices. It goes through wnids because two ImageNet class names occur twice in CLIP's list.

    Args:
        name: ImageNet, ImageNetV2, ImageNetSketch, ImageNetA or ImageNetR (any case).
        root: the data root.
    """
    canonical = canonical_name(name)
    if canonical != "ImageNet" and canonical not in DOMAIN_SHIFT_TARGETS:
        raise DataError(f"{canonical} is not an ImageNet variant; choose one of ImageNet, "
                        f"{', '.join(DOMAIN_SHIFT_TARGETS)}.")
    return imagenet.imagenet_label_map(canonical, Path(root).expanduser().absolute())


__all__ = [
    "DATASETS", "DATASET_FOLDERS", "DOMAIN_SHIFT_TARGETS", "FEW_SHOT_BENCHMARKS",
    "canonical_name", "imagenet_label_map", "read_dataset",
]
