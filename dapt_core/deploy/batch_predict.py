"""A shift's worth of photos: classify every image under a folder (recursively) and write a CSV.

Works with any engine's `predict(images) -> list[Prediction]` (the torch Classifier or the ONNX
runner). Photos are decoded and classified in batches, so memory stays flat
however many there are; a file that cannot be read is skipped with its reason and the rest go on.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..data.images import IMAGE_SUFFIXES, load_image
from ..data.records import Skipped
from ..errors import DataError, ImageRejected
from .prediction import Prediction

# verdict and good_probability came later: appended, so readers of the older columns keep working.
CSV_COLUMNS = ("path", "class", "probability", "unknown", "novelty", "set", "verdict", "good_probability")


@dataclass
class FolderResult:
    rows: list[tuple[str, Prediction]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def photos_per_second(self) -> float:
        return len(self.rows) / self.seconds if self.seconds > 0 else float("nan")


def image_files(root: str | Path) -> list[Path]:
    """Every file under `root` with an image suffix, sorted; hidden files and folders are left out."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder. Give a folder of photos, or the photos themselves.")
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        found.extend(Path(folder) / f for f in files
                     if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES)
    return sorted(found)


def expand_inputs(inputs: Iterable[str | Path]) -> tuple[list[Path], list[Skipped]]:
    """Files as given, folders walked; a path that does not exist is skipped with its reason."""
    paths, skipped = [], []
    for item in map(Path, inputs):
        if item.is_dir():
            paths.extend(image_files(item))
        elif item.is_file():
            paths.append(item)
        else:
            skipped.append(Skipped(str(item), "no such file or folder"))
    return paths, skipped


def predict_paths(predict: Callable[[list], list[Prediction]], paths: list[Path], *, batch_size: int = 32,
                  on_progress: Callable[[int, int], None] | None = None) -> FolderResult:
    """Classify `paths` in batches with `predict` (PIL images in, Predictions out); on_progress(done,
    total) after each batch."""
    result = FolderResult()
    started = time.perf_counter()
    done = 0
    for batch_paths, images, skipped in _batches(paths, batch_size):
        result.skipped.extend(skipped)
        if images:
            result.rows.extend(zip(batch_paths, predict(images)))
        done += len(batch_paths) + len(skipped)
        if on_progress is not None:
            on_progress(done, len(paths))
    result.seconds = time.perf_counter() - started
    return result


def _batches(paths: list[Path], size: int) -> Iterator[tuple[list[str], list, list[Skipped]]]:
    names, images, skipped = [], [], []
    for path in paths:
        try:
            images.append(load_image(path))
            names.append(str(path))
        except ImageRejected as error:
            skipped.append(Skipped(str(path), str(error)))
        except OSError as error:  # unreadable file: permissions, a vanished network share
            skipped.append(Skipped(str(path), f"cannot be read ({error.strerror or error})"))
        if len(images) == size:
            yield names, images, skipped
            names, images, skipped = [], [], []
    if images or skipped:
        yield names, images, skipped


def write_heatmaps(rows: list[tuple[str, Prediction]], out_dir: str | Path) -> int:
    """One PNG per photo that has a heatmap, named after the photo (its folder's name in front, so
    photos of the same name in different folders do not overwrite each other)."""
    from .heatmaps import save_overlay

    out_dir = Path(out_dir)
    written = 0
    for path, prediction in rows:
        if prediction.heatmap is None:
            continue
        source = Path(path)
        name = f"{source.parent.name}__{source.stem}.png" if source.parent.name else f"{source.stem}.png"
        verdict = f"{prediction.verdict.upper()} · " if prediction.verdict else ""
        save_overlay(load_image(source), prediction.heatmap, out_dir / name,
                     caption=f"{verdict}{prediction.label} {prediction.score:.0%}")
        written += 1
    return written


def write_csv(result: FolderResult, out: str | Path) -> Path:
    """One row per photo; the set is the classes joined by '|' (empty when no coverage was asked)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(CSV_COLUMNS)
        for path, p in result.rows:
            writer.writerow([path, p.label, f"{p.score:.6f}", "" if p.unknown is None else str(p.unknown).lower(),
                             "" if p.novelty is None else f"{p.novelty:.6f}",
                             "" if p.prediction_set is None else "|".join(p.prediction_set),
                             p.verdict or "", "" if p.good_probability is None else f"{p.good_probability:.6f}"])
    return out
