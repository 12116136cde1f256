"""A project's manifest: reading it fresh on every call, writing it with a backup, restoring the backup,
and what it says (classes, images, their files, the split a run trains on)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .. import atomic
from ..data.folders import split_from_files
from ..data.images import load_image
from ..data.records import Split
from ..errors import ImageRejected
from .disk import disk_errors
from .storage import (
    BACKUP,
    FORMAT_VERSION,
    MANIFEST,
    PROJECT_FORMAT,
    SHA256_NAME,
    ImageRecord,
    ManifestDamaged,
    ProjectNotFound,
    WorkspaceError,
    atomic_write_json,
    fsync_dir,
    lock_for,
    thumbnail_name,
    write_thumbnail,
)

if TYPE_CHECKING:
    from .workspace import Workspace


class ProjectManifest:
    """A handle on one project folder. Every call reads the manifest fresh, so two sessions that
    hold handles on the same project always see each other's changes."""

    def __init__(self, workspace: Workspace, project_id: str):
        self.workspace = workspace
        self.id = project_id
        self.path = workspace.projects_dir / project_id
        self.images_dir = self.path / "images"
        self.thumbs_dir = self.path / "thumbs"
        self.runs_dir = self.path / "runs"
        self._lock = lock_for(self.path)

    # ------------------------------------------------------------------ manifest
    def manifest(self) -> dict:
        """The manifest, validated. Raises ManifestDamaged (never repairs or replaces it)."""
        path = self.path / MANIFEST
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ProjectNotFound("project_not_found", project=self.id) from None
        except (OSError, UnicodeDecodeError) as error:
            raise self._damaged(f"it cannot be read ({error})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise self._damaged(f"it is not valid JSON (line {error.lineno}: {error.msg})") from None
        problem = _manifest_problem(data)
        if problem:
            raise self._damaged(problem)
        return data

    def _damaged(self, what: str) -> ManifestDamaged:
        return ManifestDamaged("manifest_damaged", path=str(self.path / MANIFEST), detail=what,
                               has_backup=(self.path / BACKUP).exists())

    def _write_manifest(self, manifest: dict) -> None:
        """The backup first, then the manifest, each atomically: a crash or a full disk leaves the old
        manifest or the new one. A refusing disk is told as a WorkspaceError (disk.py)."""
        current = self.path / MANIFEST
        with disk_errors():
            if current.exists():
                atomic.write_bytes(self.path / BACKUP, current.read_bytes())
            atomic_write_json(current, manifest)
        # The rename itself made durable: a change reported saved survives a power cut too.
        fsync_dir(self.path)

    def restore_backup(self) -> None:
        """Put the manifest from before the last change back (an explicit user action)."""
        backup = self.path / BACKUP
        with self._lock:
            if not backup.exists():
                raise WorkspaceError("no_backup")
            data = backup.read_bytes()
            try:
                problem = _manifest_problem(json.loads(data))
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                problem = str(error)
            if problem:
                raise WorkspaceError("backup_damaged", detail=problem)
            damaged = self.path / MANIFEST
            if damaged.exists():  # keep the damaged one for whoever wants to look at it
                os.replace(damaged, self.path / f"project.damaged-{int(time.time())}.json")
            atomic.write_bytes(damaged, data)

    # ------------------------------------------------------------------ reading
    @property
    def name(self) -> str:
        return self.manifest()["name"]

    @property
    def classes(self) -> list[str]:
        return list(self.manifest()["classes"])

    def images(self, class_name: str | None = None) -> list[ImageRecord]:
        records = [ImageRecord.from_dict(item) for item in self.manifest()["images"]]
        return [r for r in records if class_name is None or r.class_name == class_name]

    def counts(self) -> dict[str, int]:
        manifest = self.manifest()
        counts = {name: 0 for name in manifest["classes"]}
        for item in manifest["images"]:
            counts[item["class"]] += 1
        return counts

    def image_path(self, sha256: str, suffix: str | None = None) -> Path:
        if not SHA256_NAME.match(sha256):
            raise WorkspaceError("bad_image_id")
        if suffix is None:
            found = sorted(self.images_dir.glob(sha256 + ".*"))
            return found[0] if found else self.images_dir / sha256
        return self.images_dir / (sha256 + suffix)

    def thumbnail_path(self, sha256: str) -> Path:
        """A small JPEG preview, made on first use if it is missing."""
        thumb = self.thumbs_dir / thumbnail_name(sha256)
        if not thumb.exists():
            try:
                write_thumbnail(load_image(self.image_path(sha256)), thumb)
            except (ImageRejected, OSError):  # a full or read-only disk: the photo itself serves
                return self.image_path(sha256)
        return thumb

    def split(self, shots: int | None, seed: int) -> Split:
        """The split for a run: which images train and which are held out to measure on.

        A class with test pictures (from a test/ folder of a ZIP, or the demo) keeps them as its
        test set and draws `shots` from the rest. A class without draws at most half of its
        pictures (seeded), so every class is measured. Images are ordered by the names they were
        uploaded under before the draw, as `dapt tune` orders the files of a folder, so a
        project imported from a train/test folder trains and tests on exactly what the command
        line would.

        Raises WorkspaceError (with what to fix) for fewer than two classes, an empty class, or a
        class that cannot have both a training and a test picture."""
        manifest = self.manifest()  # read once: another session may change it meanwhile
        records = _records_by_path(manifest, self.images_dir)
        pools, tests = _parts_by_class(manifest, records)
        if len(pools) < 2:
            raise WorkspaceError("need_two_classes", count=len(pools))
        empty = [name for name in pools if not pools[name] and not tests[name]]
        if empty:
            raise WorkspaceError("empty_class", name=empty[0], names=", ".join(empty))
        for name in pools:
            if not pools[name]:
                raise WorkspaceError("class_no_train", name=name)
            if not tests[name] and len(pools[name]) < 2:
                raise WorkspaceError("class_too_small", name=name)
        return split_from_files(pools, shots, seed, test_by_class=tests,
                                order=lambda path: (records[path].name if path in records else "", path.name))

    def shot_capacity(self) -> dict[str, int]:
        """The most training pictures each class can give while keeping test pictures: all of a
        class's training pictures when it has test pictures of its own, otherwise half."""
        manifest = self.manifest()
        pools, tests = _parts_by_class(manifest, _records_by_path(manifest, self.images_dir))
        return {name: len(pools[name]) if tests[name] else len(pools[name]) // 2 for name in pools}

    def labelled_images(self, classnames: list[str], exclude: Iterable[str] = ()) -> tuple[list, dict]:
        """This project's images of the classes in `classnames`, labelled by position in that list
        (the order of a prompt file), leaving out the images whose sha256 is in `exclude`.

        Returns the LabeledImages and what was left out: {"excluded": n, "other_classes": {name: n}}.
        Class names match exactly, or else ignoring letter case."""
        from ..data.records import LabeledImage

        index = {name: i for i, name in enumerate(classnames)}
        folded = {name.casefold(): i for i, name in enumerate(classnames)}
        excluded_shas = set(exclude)
        items, excluded, other = [], 0, {}
        for record in self.images():
            label = index.get(record.class_name, folded.get(record.class_name.casefold()))
            if label is None:
                other[record.class_name] = other.get(record.class_name, 0) + 1
            elif record.sha256 in excluded_shas:
                excluded += 1
            else:
                items.append(LabeledImage(self.images_dir / record.file_name, label))
        return items, {"excluded": excluded, "other_classes": other}

    def names_by_sha(self) -> dict[str, ImageRecord]:
        return {r.sha256: r for r in self.images()}


def _records_by_path(manifest: dict, images_dir: Path) -> dict[Path, ImageRecord]:
    records = (ImageRecord.from_dict(item) for item in manifest["images"])
    return {images_dir / record.file_name: record for record in records}


def _parts_by_class(manifest: dict, records: dict[Path, ImageRecord]) -> tuple[dict[str, list[Path]],
                                                                              dict[str, list[Path]]]:
    """({class: pictures to draw shots from}, {class: its own test pictures}), by path; every
    class of the manifest is a key, with or without pictures."""
    pools: dict[str, list[Path]] = {name: [] for name in manifest["classes"]}
    tests: dict[str, list[Path]] = {name: [] for name in manifest["classes"]}
    for path, record in records.items():
        (tests if record.part == "test" else pools)[record.class_name].append(path)
    return pools, tests


def _manifest_problem(data) -> str | None:
    """What is wrong with a parsed manifest, or None. Checked on every read so that a file
    edited by hand or cut short is caught before anything is written on top of it."""
    if not isinstance(data, dict):
        return "it is not a JSON object"
    if data.get("format") != PROJECT_FORMAT:
        return f"its format is {data.get('format')!r}, not {PROJECT_FORMAT!r}"
    if not isinstance(data.get("format_version"), int) or data["format_version"] > FORMAT_VERSION:
        return f"format version {data.get('format_version')!r} is not one this version reads ({FORMAT_VERSION})"
    if not isinstance(data.get("name"), str) or not data["name"].strip():
        return "it has no project name"
    classes = data.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) and c for c in classes):
        return "its class list is not a list of names"
    if len({c.casefold() for c in classes}) != len(classes):
        return "it lists a class twice"
    images = data.get("images")
    if not isinstance(images, list):
        return "its image list is missing"
    known = set(classes)
    seen = set()
    for index, item in enumerate(images):
        if not isinstance(item, dict) or not SHA256_NAME.match(str(item.get("sha256", ""))):
            return f"image entry {index + 1} has no valid sha256"
        if item.get("class") not in known:
            return f"image entry {index + 1} names class {item.get('class')!r}, which is not in the class list"
        if not isinstance(item.get("name"), str):
            return f"image entry {index + 1} has no name"
        if item["sha256"] in seen:
            return f"image {item['sha256'][:12]} is listed twice"
        if item.get("part", "") not in ("", "train", "test"):
            return f"image entry {index + 1} has part {item.get('part')!r}, not 'train' or 'test'"
        seen.add(item["sha256"])
    return None


def require_class(manifest: dict, name: str) -> None:
    if name not in manifest["classes"]:
        raise WorkspaceError("class_not_found", name=name)


def refuse_taken_name(manifest: dict, name: str, ignore: str | None = None) -> None:
    for existing in manifest["classes"]:
        if existing != ignore and existing.casefold() == name.casefold():
            raise WorkspaceError("class_exists", name=existing)
