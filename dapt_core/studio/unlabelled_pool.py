"""A project's unlabelled pool: a shift's worth of photos waiting to be labelled, ranked by what labelling
each would teach (dapt_core.engine.labelling_order), labelled one click at a time.

    <project>/unlabelled/
      pool.json                  {"format": 1, "photos": [{sha256, name, suffix, added}], "skipped": [sha256],
                                  "ranking": {...} or null}
      images/<sha256>.<ext>      each photo once, named by its content hash, as the project's own images
      thumbs/<sha256>.sq160.jpg  previews for the grid

Why it is built this way:
- The pool lives in the project folder, so a refresh or a server restart loses neither the photos nor their
  ranking; pool.json is written atomically under the project's lock, like the manifest.
- A photo is labelled through the project's own intake (`Project.add_images`), so the checks an upload gets
  apply (duplicates, a damaged file) and the pool never writes the manifest itself. It leaves the pool once
  the project holds it: added, or refused as a duplicate of a photo the project already has.
- The ranking is kept with the photos it ranked; a photo labelled, skipped or removed since simply drops out
  of the list shown, so the rest stays valid until the user ranks again.
- Nothing here changes the project without the caller asking: ranking only reads.
"""

from __future__ import annotations

import io
import json
import shutil
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .. import atomic
from ..data.images import IMAGE_SUFFIXES
from ..errors import DataError
from . import limits
from .disk import disk_errors
from .intake import read_photo, safe_extract, scratch_folder
from .storage import (
    SHA256_NAME,
    IntakeReport,
    SkippedFile,
    WorkspaceError,
    atomic_write_json,
    clean_display_name,
    lock_for,
    thumbnail_name,
    utc_now,
    write_thumbnail,
)

POOL_DIR = "unlabelled"
POOL_FILE = "pool.json"
FORMAT = 1
POOL_DUPLICATE = "pool_duplicate"  # a skipped file's code: the pool holds that photo already
JOB_KIND = "label_next"  # the job queue's kind of a ranking job (dapt_core.studio.job_queue)
DEFAULT_COUNT = 12
DEFAULT_BACKBONE = "demo"  # without a tuned run, as the label review's default


@dataclass(frozen=True)
class PoolPhoto:
    sha256: str
    name: str  # the name it was uploaded under (display only, never a path)
    suffix: str
    added: str

    def to_dict(self) -> dict:
        return {"sha256": self.sha256, "name": self.name, "suffix": self.suffix, "added": self.added}


@dataclass
class PoolIntake:
    """What one upload into the pool did: photos kept, files skipped with the reason."""

    added: list[PoolPhoto] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


class UnlabelledPool:
    """The unlabelled photos of one project (a handle: every call reads pool.json fresh)."""

    def __init__(self, project):
        self.project = project
        self.path = Path(project.path) / POOL_DIR
        self.images_dir = self.path / "images"
        self.thumbs_dir = self.path / "thumbs"
        self._lock = lock_for(Path(project.path))  # the project's lock: labelling writes both

    # ------------------------------------------------------------------ reading
    def _stored(self) -> dict | None:
        """pool.json as written, or None where it is missing or cannot be read as a pool's index."""
        try:
            data = json.loads((self.path / POOL_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("photos"), list) else None

    def _read(self) -> dict:
        data = self._stored()
        if data is None:
            # A missing or unreadable index: rebuilt from what the images folder holds (names lost, photos not).
            data = {"format": FORMAT, "photos": self._photos_on_disk(), "skipped": [], "ranking": None}
        data.setdefault("skipped", [])
        data.setdefault("ranking", None)
        return data

    def _write(self, data: dict) -> None:
        atomic_write_json(self.path / POOL_FILE, data)

    def _photos_on_disk(self) -> list[dict]:
        if not self.images_dir.is_dir():
            return []
        return [PoolPhoto(p.stem, p.name, p.suffix, "").to_dict() for p in sorted(self.images_dir.iterdir())
                if len(p.stem) == 64 and not p.name.startswith(".")]

    def photos(self) -> list[PoolPhoto]:
        """Every photo in the pool, in the order they came."""
        return [PoolPhoto(d["sha256"], d["name"], d.get("suffix", ""), d.get("added", ""))
                for d in self._read()["photos"]]

    def waiting(self) -> list[PoolPhoto]:
        """The photos still to decide on: in the pool and not skipped."""
        data = self._read()
        skipped = set(data["skipped"])
        return [photo for photo in self.photos() if photo.sha256 not in skipped]

    def image_path(self, photo: PoolPhoto) -> Path:
        return self.images_dir / (photo.sha256 + photo.suffix)

    def thumbnail_path(self, sha256: str) -> Path:
        return self.thumbs_dir / thumbnail_name(sha256)

    def ranking(self) -> dict | None:
        """The last ranking, its picks limited to photos still waiting (each pick: sha256, name, rank, kind,
        reason in English, details); None before the first."""
        data = self._read()
        ranking = data.get("ranking")
        if not isinstance(ranking, dict):
            return None
        waiting = {d["sha256"] for d in data["photos"]} - set(data["skipped"])
        return {**ranking, "picks": [pick for pick in ranking.get("picks", []) if pick.get("sha256") in waiting]}

    def unlisted_files(self) -> list[Path]:
        """Photos and previews in the pool's folders that pool.json does not list: written by an upload that a
        crash stopped before pool.json was (recovery.py removes them). None of them while pool.json cannot be
        read, or lists a photo it cannot name, since the pool is then rebuilt from the photos on disk."""
        data = self._stored()
        if data is None or not all(isinstance(d, dict) and "sha256" in d for d in data["photos"]):
            return []
        listed = {d["sha256"] for d in data["photos"]}
        return [path for folder in (self.images_dir, self.thumbs_dir) if folder.is_dir()
                for path in folder.iterdir() if path.is_file() and SHA256_NAME.match(path.name.split(".", 1)[0])
                and path.name.split(".", 1)[0] not in listed]

    # ------------------------------------------------------------------ changing
    def add(self, files: Iterable[tuple[str, bytes | Path]]) -> PoolIntake:
        """Keep every file that decodes as an image, once (by content); a photo the project holds already,
        or the pool, is skipped with the reason."""
        report = PoolIntake()
        in_project = {record.sha256: record for record in self.project.images()}
        with self._lock:
            data = self._read()
            known = {d["sha256"] for d in data["photos"]}
            for raw_name, content in files:
                name = clean_display_name(raw_name)
                photo = self._intake_one(name, content, known, in_project, report)
                if photo is not None:
                    known.add(photo.sha256)
                    data["photos"].append(photo.to_dict())
                    report.added.append(photo)
            if report.added:
                self._write(data)
        return report

    def _intake_one(self, name: str, content: bytes | Path, known: set, in_project: dict,
                    report: PoolIntake) -> PoolPhoto | None:
        photo = read_photo(name, content, limits.current(), report.skipped)
        if photo is None:
            return None
        content, image, digest = photo
        if digest in in_project:
            other = in_project[digest]
            report.skipped.append(SkippedFile.of("duplicate", name, **{"other": other.name, "class": other.class_name}))
            return None
        if digest in known:
            report.skipped.append(SkippedFile(name, "the same photo is already among the unlabelled photos",
                                              POOL_DUPLICATE))
            return None
        suffix = Path(name).suffix.lower()
        suffix = suffix if suffix in IMAGE_SUFFIXES else ".img"
        atomic.write_bytes(self.images_dir / (digest + suffix), content)
        write_thumbnail(image, self.thumbs_dir / thumbnail_name(digest))
        return PoolPhoto(digest, name, suffix, utc_now())

    def add_zip(self, content: bytes, archive_name: str = "upload.zip") -> PoolIntake:
        """Every image in a ZIP (any folders; their names mean nothing here), expanded with the intake's
        guards against unsafe paths, links and zip bombs."""
        intake = IntakeReport(source=clean_display_name(archive_name), when=utc_now())
        with scratch_folder(self.project.workspace.root, "dapt-pool-zip-") as root:
            try:
                with disk_errors():
                    safe_extract(content, root, intake, limits.current())
            except zipfile.BadZipFile as error:
                raise WorkspaceError("zip_bad", name=intake.source, detail=str(error)) from None
            files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                           and "__MACOSX" not in p.parts and not p.name.startswith("."))
            report = self.add((p.relative_to(root).as_posix(), p) for p in files)
        report.skipped[:0] = intake.skipped
        return report

    def label(self, sha256: str, class_name: str) -> IntakeReport:
        """Move one photo into the project under `class_name`, through the project's intake. It leaves the pool
        when the project holds it afterwards (added now, or refused as a photo the project had already)."""
        with self._lock:
            photo = next((p for p in self.photos() if p.sha256 == sha256), None)
            if photo is None:  # labelled or removed meanwhile (another window): nothing to do
                return IntakeReport(source="unlabelled", when=utc_now())
            report = self.project.add_images(class_name, [(photo.name, self.image_path(photo))],
                                             source="unlabelled", remember=False)
            if report.added or any(s.code == "duplicate" for s in report.skipped):
                self._forget([sha256])
        return report

    def skip(self, sha256: str) -> None:
        """Not worth labelling: kept in the pool, no longer shown or ranked."""
        with self._lock:
            data = self._read()
            if sha256 not in data["skipped"]:
                data["skipped"].append(sha256)
                self._write(data)

    def clear(self) -> None:
        """Empty the pool: photos, previews, ranking."""
        with self._lock:
            shutil.rmtree(self.path, ignore_errors=True)

    def _forget(self, shas: Iterable[str]) -> None:
        gone = set(shas)
        with self._lock:
            data = self._read()
            data["photos"] = [d for d in data["photos"] if d["sha256"] not in gone]
            data["skipped"] = [s for s in data["skipped"] if s not in gone]
            self._write(data)
            for sha in gone:
                for path in list(self.images_dir.glob(sha + ".*")) + list(self.thumbs_dir.glob(sha + ".*")):
                    path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ ranking
    def rank(self, backbone_for: Callable[[str | None], object], *, count: int = DEFAULT_COUNT, seed: int = 0,
             cache_dir=None, cancel=None, on_batch: Callable[[int, int], None] | None = None) -> dict:
        """Rank the waiting photos as `dapt next` does (labelling_order.ranking_model and rank_photos): with
        the project's newest run's tuned prompts when it has one (the model's doubtful photos), else the
        frozen `backbone_for(None)` (typical photos of groups no label covers), the project's photos counting
        as labelled. The ranking is kept in pool.json and returned."""
        from ..data.records import LabeledImage
        from ..engine.labelling_order import rank_photos, ranking_model

        started = time.perf_counter()
        waiting = self.waiting()
        if not waiting:
            raise DataError("There is no unlabelled photo to rank: upload some first.")
        run = self.newest_run()
        classifier, backbone = ranking_model(None if run is None else run.prompt_file, None, backbone_for)
        classes = self.project.classes
        index = {name: i for i, name in enumerate(classes)}
        labelled = [LabeledImage(self.project.images_dir / record.file_name, index[record.class_name])
                    for record in self.project.images() if record.class_name in index]
        by_path = {str(self.image_path(photo)): photo for photo in waiting}
        result = rank_photos(backbone, list(by_path), labelled=labelled, classifier=classifier,
                             count=max(1, min(count, len(waiting))), seed=seed,
                             names=[photo.name for photo in waiting], cache_dir=cache_dir, cancel=cancel,
                             on_batch=on_batch)
        picks = []
        for rank, pick in enumerate(result["picks"], start=1):
            photo = by_path[result["paths"][pick.index]]
            picks.append({"rank": rank, "sha256": photo.sha256, "name": photo.name, "kind": pick.kind,
                          "reason": pick.reason, "group": pick.group, "details": pick.details,
                          "score": pick.to_dict()["score"]})
        ranking = {"mode": result["mode"], "run_id": None if run is None else run.id,
                   "backbone": result["backbone"], "photos": result["photos"], "when": utc_now(),
                   "unknown_threshold": result.get("unknown_threshold"),
                   "seconds": time.perf_counter() - started, "picks": picks,
                   "skipped": [{"name": Path(s["path"]).name, "reason": s["reason"]} for s in result["skipped"]]}
        with self._lock:
            data = self._read()
            data["ranking"] = ranking
            self._write(data)
        return self.ranking()

    def newest_run(self):
        """The newest saved run whose files can be read, or None."""
        for run_id in self.project.run_ids():
            try:
                run = self.project.run(run_id)
            except WorkspaceError:
                continue
            if run.prompt_file.is_file():
                return run
        return None


def upload_files(pool: UnlabelledPool, files: Iterable[tuple[str, bytes]]) -> PoolIntake:
    """Uploaded files into the pool: a ZIP is expanded, every other file taken as a photo."""
    total = PoolIntake()
    photos = []
    for name, content in files:
        if name.lower().endswith(".zip") or _is_zip(content):
            part = pool.add_zip(content, name)
            total.added += part.added
            total.skipped += part.skipped
        else:
            photos.append((name, content))
    if photos:
        part = pool.add(photos)
        total.added += part.added
        total.skipped += part.skipped
    return total


def _is_zip(content: bytes) -> bool:
    return zipfile.is_zipfile(io.BytesIO(content)) if content[:2] == b"PK" else False
