"""The app's drift check of a saved run (dapt_core.deploy.drift, as `dapt drift` runs it): uploaded photos (files
or a ZIP) or a CSV from `dapt predict --csv`, compared in windows with the held-out photos the run's prompt file
was calibrated on. The last check of a run is kept in its folder, so a refresh or a restart shows it again.

    <project>/runs/<run id>/drift.json   {"format": 1, "when", "source": "photos" | "csv", "photos",
                                          "window", "report": DriftReport.to_dict(), "skipped": [{name, reason}]}

Uploads never become paths: each photo is written under its position in name order, and its name is kept
as text beside it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

from ..data.images import IMAGE_SUFFIXES
from ..errors import DataError
from . import limits
from .disk import disk_errors
from .intake import safe_extract, scratch_folder
from .storage import IntakeReport, atomic_write_json, clean_display_name, utc_now

DRIFT_FILE = "drift.json"
FORMAT = 1
JOB_KIND = "drift"  # the job queue's kind of a drift check (dapt_core.studio.job_queue)


def check_run(run, files: list[tuple[str, bytes]], *, window: int, classifier_for: Callable,
              on_progress: Callable[[int, int], None] | None = None, workspace_root: Path | None = None) -> dict:
    """Check `files` (name, bytes) against `run`'s prompt file: photos and ZIPs of photos, or one CSV written by
    `dapt predict --csv`. `classifier_for(prompt file)` gives the Classifier (the app's cached backbone).
    The result is kept in the run's folder and returned (see `load_last`). The upload is written out under the
    workspace's tmp/ (`workspace_root`; intake.scratch_folder) while the check runs."""
    from ..deploy import drift
    from ..engine import prompt_file

    file = prompt_file.load(run.prompt_file)
    csvs = [(name, data) for name, data in files if name.lower().endswith(".csv")]
    with scratch_folder(workspace_root, "dapt-drift-") as root:
        if csvs:
            if len(files) != 1:
                raise DataError("Give one CSV from `dapt predict --csv`, or photos, not both.")
            path = root / "predictions.csv"
            with disk_errors():
                path.write_bytes(csvs[0][1])
            report, skipped = drift.check(file, path, order="name", window=window)
            for w in report.windows:  # paths on the line's PC: their file names say enough here
                w.first, w.last = Path(w.first).name, Path(w.last).name
            report.verdict = drift.overall_verdict(report)
            source = "csv"
        else:
            with disk_errors():
                paths, shown, skipped_upload = _photos_in(files, root)
            if not paths:
                raise DataError("None of the uploaded files is a photo.")
            report, skipped = drift.check(file, paths, order="name", window=window, classifier_for=classifier_for,
                                          on_progress=on_progress)
            # the report names photos by their temporary paths: back to the names they were uploaded under
            by_path = dict(zip(map(str, paths), shown))
            for w in report.windows:
                w.first, w.last = by_path.get(w.first, w.first), by_path.get(w.last, w.last)
            report.verdict = drift.overall_verdict(report)
            source = "photos"
            skipped = [{"name": by_path.get(str(s.path), Path(s.path).name), "reason": s.reason} for s in skipped]
            skipped = skipped_upload + skipped
    result = {"format": FORMAT, "when": utc_now(), "source": source, "photos": sum(w.photos for w in report.windows),
              "window": window, "report": report.to_dict(), "skipped": skipped if source == "photos" else []}
    atomic_write_json(Path(run.path) / DRIFT_FILE, result)
    return result


def load_last(run) -> dict | None:
    """The run's last drift check, or None (never checked, or unreadable)."""
    import json

    try:
        data = json.loads((Path(run.path) / DRIFT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def report_of(result: dict):
    """The kept check's report as a deploy.drift.DriftReport again (for the chart)."""
    from ..deploy.drift import DriftReport, Window

    data = result["report"]
    return DriftReport([Window(**w) for w in data["windows"]], data["alpha_per_window"], list(data["tests"]),
                       bool(data["drift"]), data["verdict"], list(data["notes"]), data["reference_photos"],
                       data["permutations"])


def first_photo_of(report, window_index: int) -> int:
    """The position (from 1) of a window's first photo in the whole sequence."""
    return 1 + sum(w.photos for w in report.windows if w.index < window_index)


def _photos_in(files: list[tuple[str, bytes]], root: Path) -> tuple[list[Path], list[str], list[dict]]:
    """The uploaded photos (a ZIP's expanded with the intake's guards) written under `root` in name order:
    their paths, the names to show, and the files skipped (name, reason)."""
    named: list[tuple[str, bytes | Path]] = []
    skipped: list[dict] = []
    for index, (name, data) in enumerate(files):
        if name.lower().endswith(".zip"):
            report = IntakeReport(source=clean_display_name(name))
            folder = root / f"zip-{index}"
            folder.mkdir()
            try:
                safe_extract(data, folder, report, limits.current())
            except zipfile.BadZipFile:
                skipped.append({"name": clean_display_name(name), "reason": "not a readable ZIP archive"})
                continue
            skipped += [{"name": s.name, "reason": s.reason} for s in report.skipped]
            named += [(p.relative_to(folder).as_posix(), p) for p in folder.rglob("*")
                      if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and "__MACOSX" not in p.parts]
        else:
            named.append((clean_display_name(name), data))
    named.sort(key=lambda item: item[0])
    photos = root / "photos"
    photos.mkdir()
    paths, shown = [], []
    for position, (name, data) in enumerate(named):
        path = photos / f"{position:06d}{Path(name).suffix.lower()[:8]}"
        if isinstance(data, Path):
            data.replace(path)
        else:
            path.write_bytes(data)
        paths.append(path)
        shown.append(name)
    return paths, shown, skipped

