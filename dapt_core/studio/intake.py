"""Images into a project: uploads, local files and ZIP archives, each image checked, stored once under
its content hash, with a report of what was kept and what was skipped and why; removing and moving
images."""

from __future__ import annotations

import io
import json
import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from PIL import Image

from .. import atomic
from ..data.folders import class_prompt_name, scan_folder
from ..data.images import IMAGE_SUFFIXES, load_image, sha256_of
from ..data.trailing_data import without_trailing_data
from ..errors import ImageRejected
from . import limits
from .disk import disk_errors
from .manifest import ProjectManifest, refuse_taken_name, require_class
from .storage import (
    INTAKE,
    ImageRecord,
    IntakeReport,
    SkippedFile,
    WorkspaceError,
    atomic_write_json,
    clean_class_name,
    clean_display_name,
    thumbnail_name,
    utc_now,
    write_thumbnail,
)

# A ZIP is expanded into a temporary folder of the workspace before the engine's folder scan reads it
# (recovery.py empties the folder on the next start after a crash). The caps of limits.py stop a "zip
# bomb" (a small archive that expands to terabytes) from filling the disk; the real size of every member
# is counted while it is copied, since the sizes in a ZIP header can lie.
TEMPORARY_FOLDER = "tmp"
# PIL's format names -> the suffix an image blob is stored under (the engine decodes by content,
# the suffix only helps a person browsing the folder).
_SUFFIX_OF_FORMAT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp",
                     "TIFF": ".tif", "MPO": ".jpg"}


class ImageIntake(ProjectManifest):
    """The image intake of a Project (it keeps the images a saved run still refers to)."""

    def last_intake(self) -> IntakeReport | None:
        try:
            return IntakeReport.from_dict(json.loads((self.path / INTAKE).read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            return None

    def clear_last_intake(self) -> None:
        (self.path / INTAKE).unlink(missing_ok=True)

    # ------------------------------------------------------------------ images
    def add_images(self, class_name: str, files: Iterable[tuple[str, bytes | Path]], *, source: str = "upload",
                   remember: bool = True, create_class: bool = False, part: str = "") -> IntakeReport:
        """Keep every file the engine can decode, in `class_name`; list the others with the reason.

        `files` are (name as uploaded, bytes or a path to read). Nothing of a name is used for a path.
        `part` is "train" or "test" for pictures from such a folder (see ProjectManifest.split).

        All or nothing on a full or read-only disk: the manifest is written once, at the end, and the
        files this call stored are removed again when anything fails (WorkspaceError "disk_full", ...)."""
        report = IntakeReport(source=source, when=utc_now())
        with self._lock, self._stored_or_undone() as batch:
            manifest = self.manifest()
            self._add_files(manifest, batch, class_name, files, report, create_class=create_class, part=part)
            if report.added or report.created_classes:
                self._write_manifest(manifest)
        if remember:
            self._remember(report)
        return report

    @contextmanager
    def _stored_or_undone(self):
        """A batch of stored files that is taken back if the block fails, with disk refusals told as
        WorkspaceErrors. (A crash leaves the files behind unlisted: recovery.py sweeps them.)"""
        batch = _Batch(limits.current(), _stored_bytes(self.images_dir))
        if batch.stored >= batch.limits.max_project_bytes:
            raise WorkspaceError("project_full", size_mb=limits.megabytes(batch.stored),
                                 limit_mb=batch.limits.max_project_mb)
        try:
            with disk_errors():
                yield batch
        except BaseException:
            for path in reversed(batch.written):
                try:
                    path.unlink(missing_ok=True)
                except OSError:  # a read-only disk: recovery sweeps it once the disk is writable again
                    pass
            raise

    def _add_files(self, manifest: dict, batch: _Batch, class_name: str, files: Iterable[tuple[str, bytes | Path]],
                   report: IntakeReport, *, create_class: bool = False, part: str = "") -> None:
        """Store `files` in `class_name` and list them in `manifest` (in memory: the caller writes it)."""
        if create_class and class_name not in manifest["classes"]:
            class_name = clean_class_name(class_name)
            refuse_taken_name(manifest, class_name)
            manifest["classes"].append(class_name)
            report.created_classes.append(class_name)
        require_class(manifest, class_name)
        known = {item["sha256"]: item for item in manifest["images"]}
        for raw_name, data in files:
            record = self._intake_one(clean_display_name(raw_name), data, class_name, known, report, part, batch)
            if record is not None:
                known[record.sha256] = record.to_dict()
                manifest["images"].append(record.to_dict())
                report.added.append(record)

    def _intake_one(self, name: str, data: bytes | Path, class_name: str, known: dict,
                    report: IntakeReport, part: str, batch: _Batch) -> ImageRecord | None:
        photo = read_photo(name, data, batch.limits, report.skipped)
        if photo is None:
            return None
        data, image, digest = photo
        if digest in known:
            other = known[digest]
            report.skipped.append(SkippedFile.of("duplicate", name,
                                                 **{"other": other["name"], "class": other["class"]}))
            return None
        suffix = _suffix_for(data, name)
        blob = self.images_dir / (digest + suffix)
        if not blob.exists():
            if batch.stored + len(data) > batch.limits.max_project_bytes:
                report.skipped.append(SkippedFile.of("project_full", name, limit_mb=batch.limits.max_project_mb))
                return None
            batch.written.append(blob)
            atomic.write_bytes(blob, data)
            batch.stored += len(data)
        thumb = self.thumbs_dir / thumbnail_name(digest)
        if not thumb.exists():
            batch.written.append(thumb)
        write_thumbnail(image, thumb)
        return ImageRecord(digest, name, class_name, utc_now(), suffix, part)

    def add_image_paths(self, class_name: str, paths: Iterable[Path], **kwargs) -> IntakeReport:
        """add_images for files on disk (each read when its turn comes, not all at once)."""
        return self.add_images(class_name, ((Path(p).name, Path(p)) for p in paths), **kwargs)

    def import_zip(self, data: bytes | BinaryIO, archive_name: str = "upload.zip") -> IntakeReport:
        """Add a ZIP with one folder per class (or train/ and test/ holding those): new folder
        names become classes, and pictures from train/ and test/ remember their part, so tuning
        keeps that split. The archive is expanded safely into a temporary folder of the workspace
        (recovery.py sweeps what a crash leaves there) and read with the engine's folder scan, whose
        reasons for skipping a file are kept. `data` is the archive's bytes or a binary file.

        The whole archive is one change of the manifest: a failure or a crash half-way adds nothing."""
        report = IntakeReport(source=clean_display_name(archive_name), when=utc_now())
        current = limits.current()
        with scratch_folder(self.workspace.root, "dapt-zip-") as temporary:
            root = temporary / "archive"
            root.mkdir()
            try:
                with disk_errors():
                    safe_extract(data, root, report, current)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
                raise WorkspaceError("zip_bad", name=report.source, detail=str(error)) from None
            task_root = _task_root(root)
            scan = scan_folder(task_root)
            for skipped in scan.skipped:
                report.skipped.append(SkippedFile.of("rejected", _relative(skipped.path, root), reason=skipped.reason))
            if not scan.classes:
                raise WorkspaceError("zip_no_classes", name=report.source)
            with self._lock, self._stored_or_undone() as batch:
                manifest = self.manifest()
                existing = {c.casefold(): c for c in manifest["classes"]}
                for part_name, classes in scan.parts.items():
                    if part_name == "val":  # as `dapt tune`, which tunes on train/ and measures on test/
                        report.skipped.extend(SkippedFile.of("zip_val", _relative(str(p), root))
                                              for paths in classes.values() for p in paths)
                        continue
                    for folder_name, paths in classes.items():
                        try:
                            class_name = clean_class_name(class_prompt_name(folder_name))
                        except WorkspaceError as error:
                            report.skipped.extend(SkippedFile.of(error.code, _relative(str(p), root), **error.params)
                                                  for p in paths)
                            continue
                        target = existing.get(class_name.casefold(), class_name)
                        files = ((_relative(str(p), root), p) for p in paths)
                        self._add_files(manifest, batch, target, files, report, create_class=True,
                                        part=part_name if part_name in ("train", "test") else "")
                        existing[target.casefold()] = target
                if report.added or report.created_classes:
                    self._write_manifest(manifest)
        self._remember(report)
        return report

    def remove_images(self, shas: Iterable[str]) -> int:
        wanted = set(shas)
        with self._lock:
            manifest = self.manifest()
            before = len(manifest["images"])
            manifest["images"] = [item for item in manifest["images"] if item["sha256"] not in wanted]
            removed = before - len(manifest["images"])
            if removed:
                self._write_manifest(manifest)
                self._forget_blobs(wanted)
        return removed

    def move_images(self, shas: Iterable[str], to_class: str) -> int:
        wanted = set(shas)
        with self._lock:
            manifest = self.manifest()
            require_class(manifest, to_class)
            moved = 0
            for item in manifest["images"]:
                if item["sha256"] in wanted and item["class"] != to_class:
                    item["class"] = to_class
                    moved += 1
            if moved:
                self._write_manifest(manifest)
        return moved

    def _forget_blobs(self, shas: Iterable[str]) -> None:
        """Delete image files no longer in the manifest, except those a saved run shows (the
        Inspect gallery of an older run still needs its pictures)."""
        keep = {item["sha256"] for item in self.manifest()["images"]} | self._shas_in_runs()
        for sha in set(shas) - keep:
            # also previews of an older shape; a file that cannot go now (a read-only disk) is an orphan
            # that recovery.py sweeps later: the manifest, already written, is what counts
            for path in [*self.images_dir.glob(sha + ".*"), *self.thumbs_dir.glob(sha + ".*")]:
                try:
                    path.unlink(missing_ok=True)
                except OSError:
                    pass

    def _remember(self, report: IntakeReport) -> None:
        """Keep what the upload did for the page; on a full disk the images are kept all the same, and the
        summary of an earlier upload is removed rather than shown as this one's."""
        try:
            atomic_write_json(self.path / INTAKE, report.to_dict())
        except OSError:
            try:
                (self.path / INTAKE).unlink(missing_ok=True)
            except OSError:
                pass


@dataclass
class _Batch:
    """The files one intake stored so far (taken back if it fails) and the project's stored bytes."""

    limits: limits.Limits
    stored: int
    written: list[Path] = field(default_factory=list)


def _stored_bytes(images_dir: Path) -> int:
    total = 0
    for path in images_dir.glob("*") if images_dir.is_dir() else ():
        try:
            total += path.stat().st_size
        except OSError:
            pass
    return total


@contextmanager
def scratch_folder(workspace_root: Path | None, prefix: str) -> Iterator[Path]:
    """A fresh temporary folder in the workspace's tmp/, removed afterwards. In the workspace rather than the
    system's temporary folder so that what a crash leaves there is swept at the next start (recovery.py) and
    an expanded upload fills the disk the workspace's limits and disk-full messages are about. `workspace_root`
    None (the command line, which has no workspace) takes the system's temporary folder."""
    if workspace_root is None:
        with tempfile.TemporaryDirectory(prefix=prefix) as temporary:
            yield Path(temporary)
        return
    scratch = Path(workspace_root) / TEMPORARY_FOLDER
    with disk_errors():
        scratch.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=prefix, dir=scratch))
    try:
        yield temporary
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def read_photo(name: str, data: bytes | Path, within: limits.Limits,
               skipped: list[SkippedFile]) -> tuple[bytes, Image.Image, str] | None:
    """What to store of one uploaded or local photo (the picture only), the picture decoded, and the sha256 that
    names it; None, with the reason added to `skipped`, for a file over the per-photo limit, one that cannot be
    read, or no picture. The project's intake and the unlabelled pool take photos through here alike."""
    size = _size_of(data)
    if size > within.max_file_bytes:
        skipped.append(SkippedFile.of("file_too_big", name, size_mb=limits.megabytes(size),
                                      limit_mb=within.max_file_mb))
        return None
    if isinstance(data, Path):
        try:
            data = data.read_bytes()
        except OSError as error:
            skipped.append(SkippedFile.of("rejected", name, reason=f"cannot read file: {error.strerror or error}"))
            return None
    try:
        image = load_image(data)
    except ImageRejected as rejected:
        skipped.append(SkippedFile.of("rejected", name, reason=str(rejected)))
        return None
    # Only the picture is stored, and named by the hash of what is stored: the same photo with or
    # without bytes glued after it is one photo (a duplicate the second time).
    data = _picture_only(data)
    return data, image, sha256_of(data)


def _size_of(data: bytes | Path) -> int:
    if isinstance(data, Path):
        try:
            return data.stat().st_size
        except OSError:
            return 0  # reading it says why
    return len(data)


def _picture_only(data: bytes) -> bytes:
    """`data` without bytes after the picture, if that still decodes (else as it came: it decoded so)."""
    trimmed = without_trailing_data(data)
    if len(trimmed) == len(data):
        return data
    try:
        load_image(trimmed)
    except ImageRejected:
        return data
    return trimmed


def _suffix_for(data: bytes, name: str) -> str:
    try:
        with Image.open(io.BytesIO(data)) as image:
            found = _SUFFIX_OF_FORMAT.get(image.format or "")
    except Exception:  # load_image accepted it already; the suffix is cosmetic
        found = None
    if found:
        return found
    suffix = PurePosixPath(name).suffix.lower()
    return suffix if suffix in IMAGE_SUFFIXES else ".img"



def _safe_member_path(name: str) -> PurePosixPath | None:
    """A ZIP member's path as safe relative parts, or None if it tries to leave the folder."""
    text = name.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        return None
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    if any(unicodedata.category(ch)[0] == "C" for p in parts for ch in p):
        return None
    return PurePosixPath(*parts)


def safe_extract(data: bytes | BinaryIO, root: Path, report: IntakeReport, caps: limits.Limits) -> None:
    """Expand a ZIP under `root`: no absolute paths, no '..', no links, bounded sizes (limits.py)."""
    source = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    archive_bytes = source.seek(0, io.SEEK_END)
    source.seek(0)
    most = caps.zip_expansion_limit(archive_bytes)

    def too_much() -> WorkspaceError:
        if most >= caps.zip_max_expanded_mb * limits.MB:
            return WorkspaceError("zip_total_too_big", limit_gb=f"{caps.zip_max_expanded_mb / 1000:g}")
        return WorkspaceError("zip_expands_too_much", name=report.source, limit_mb=limits.megabytes(most),
                              ratio=caps.zip_max_ratio)

    total = 0
    with zipfile.ZipFile(source) as archive:
        members = archive.infolist()
        if len(members) > caps.zip_max_entries:
            raise WorkspaceError("zip_too_many", count=len(members), limit=caps.zip_max_entries)
        # The sizes the archive states are checked before anything is written (they can lie low, never
        # to our cost: the bytes actually written are counted below).
        if sum(m.file_size for m in members if m.file_size <= caps.max_file_bytes) > most:
            raise too_much()
        for member in members:
            if member.is_dir():
                continue
            relative = _safe_member_path(member.filename)
            shown = member.filename
            if relative is None:
                report.skipped.append(SkippedFile.of("zip_unsafe_path", shown))
                continue
            mode = member.external_attr >> 16
            if stat.S_ISLNK(mode):
                report.skipped.append(SkippedFile.of("zip_link", shown))
                continue
            if member.file_size > caps.max_file_bytes:
                report.skipped.append(SkippedFile.of("zip_too_big", shown, limit_mb=caps.max_file_mb))
                continue
            target = root.joinpath(*relative.parts)
            if target.exists():
                report.skipped.append(SkippedFile.of("zip_duplicate_path", shown))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            too_big = False
            with archive.open(member) as member_data, open(target, "wb") as out:
                for block in iter(lambda: member_data.read(1 << 20), b""):
                    written += len(block)
                    if written > caps.max_file_bytes or total + written > most:
                        too_big = True
                        break
                    out.write(block)
            if too_big:
                target.unlink(missing_ok=True)
                if total + written > most:
                    raise too_much()
                report.skipped.append(SkippedFile.of("zip_too_big", shown, limit_mb=caps.max_file_mb))
                continue
            total += written


def _task_root(root: Path) -> Path:
    """Zipping a folder puts everything under one top folder ('photos/good/...'): descend
    through single wrapping folders to the one that holds the class (or train/test) folders."""
    current = root
    for _ in range(5):
        entries = [p for p in current.iterdir() if not p.name.startswith(".") and p.name.casefold() != "__macosx"]
        folders = [p for p in entries if p.is_dir()]
        files = [p for p in entries if p.is_file()]
        if len(folders) == 1 and not files and any(child.is_dir() for child in folders[0].iterdir()):
            current = folders[0]
            continue
        break
    return current


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return Path(path).name
