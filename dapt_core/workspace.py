"""The workspace on disk: projects, their classes and images, and their tuning runs.

    <root>/                                  DAPT_WORKSPACE, default ./workspace
      projects/<project id>/
        project.json                         the manifest: name, classes in order, and every image
                                             (sha256, original name, class)
        project.json.bak                     the manifest before the last change (for recovery)
        images/<sha256>.<ext>                each image once, named by its content hash
        thumbs/<sha256>.jpg                  small previews for the grids
        intake.json                          what the last upload kept and skipped, and why
        runs/<run id>/
          run.json                           settings, metrics, which images trained and tested
          prompts.safetensors                the prompt file
          embeddings.safetensors             before/after image and text embeddings (Inspect)
          projection.json                    the cached 2-D map of those embeddings

Why it is built this way:
- Upload names never become paths: an image is stored under its content hash, and the name a
  user gave it lives only in the manifest, as text. The same picture uploaded twice is stored once
  and refused the second time (one photo cannot carry two labels).
- Every file is written atomically (a temporary file in the same folder, fsync, rename), and a run
  is assembled in a hidden folder that is renamed into place when complete, so a crash or a
  cancelled run never leaves half a project behind; a browser refresh or a server restart loses
  nothing.
- A manifest that cannot be read is reported (`ManifestDamaged`) and left exactly as it is: the
  project refuses changes until the user restores the backup or fixes the file.
- Changes to a manifest are read-modify-write under a per-project lock, because several browser
  sessions of one server may edit the same project at the same time.

Errors carry a `code` and `params` so that the app can show them in the user's language; their
English message is the fallback (and what scripts see).
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
import threading
import time
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

from PIL import Image

from . import atomic
from .data import Split
from .errors import DaptError, DataError, ImageRejected
from .folders import class_prompt_name, scan_folder, split_from_files
from .images import IMAGE_SUFFIXES, load_image, sha256_of

WORKSPACE_ENV = "DAPT_WORKSPACE"
DEFAULT_ROOT = "workspace"
PROJECT_FORMAT = "dapt-studio-project"
RUN_FORMAT = "dapt-studio-run"
FORMAT_VERSION = 1

MANIFEST = "project.json"
BACKUP = "project.json.bak"
INTAKE = "intake.json"
RUN_FILE = "run.json"
PROMPT_FILE = "prompts.safetensors"
EMBEDDINGS_FILE = "embeddings.safetensors"
PROJECTION_FILE = "projection.json"

THUMB_SIZE = 160
MAX_NAME_CHARS = 200  # display names of images; longer ones are shortened, never refused
MAX_CLASS_CHARS = 80  # class names end up in a 77-token CLIP prompt
MAX_PROJECT_CHARS = 100

# A ZIP is expanded into a temporary folder before the engine's folder scan reads it. These caps
# stop a "zip bomb" (a small archive that expands to terabytes) from filling the disk; the real
# size of every member is counted while it is copied, since the sizes in a ZIP header can lie.
ZIP_MAX_MEMBERS = 20_000
ZIP_MAX_TOTAL_BYTES = 4 * 1024**3
ZIP_MAX_MEMBER_BYTES = 512 * 1024**2

# PIL's format names -> the suffix an image blob is stored under (the engine decodes by content,
# the suffix only helps a person browsing the folder).
_SUFFIX_OF_FORMAT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp",
                     "TIFF": ".tif", "MPO": ".jpg"}
_SHA = re.compile(r"^[0-9a-f]{64}$")
_RUN_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[a-z]+-[0-9a-f]{4}$")
_PROJECT_ID = re.compile(r"^[a-z0-9-]{1,60}$")
_STALE_INCOMING_SECONDS = 600
# Identifies this server process in run markers (a PID alone can be reused after a restart).
PROCESS_TOKEN = f"{os.getpid()}-{time.time():.0f}-{secrets.token_hex(3)}"

# ------------------------------------------------------------------------------------- errors


class WorkspaceError(DataError):
    """A workspace operation that cannot be done; `code` and `params` let the app translate it."""

    def __init__(self, code: str, message: str, **params):
        super().__init__(message)
        self.code = code
        self.params = params


class ProjectNotFound(WorkspaceError):
    pass


class ManifestDamaged(WorkspaceError):
    """The project's manifest cannot be read. It is left untouched; nothing is written to it."""


# ------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ImageRecord:
    sha256: str
    name: str  # the name the user gave the file (display only)
    class_name: str
    added: str
    suffix: str

    @property
    def file_name(self) -> str:
        return self.sha256 + self.suffix

    def to_dict(self) -> dict:
        return {"sha256": self.sha256, "name": self.name, "class": self.class_name, "added": self.added,
                "suffix": self.suffix}

    @classmethod
    def from_dict(cls, data: dict) -> "ImageRecord":
        return cls(data["sha256"], data["name"], data["class"], data.get("added", ""), data.get("suffix", ".img"))


@dataclass
class SkippedFile:
    """A file an upload did not keep. `reason` is English; `code`/`params` let the app translate
    the workspace's own reasons (the engine's reasons come as text and are shown as they are)."""

    name: str
    reason: str
    code: str = "rejected"
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "reason": self.reason, "code": self.code, "params": self.params}

    @classmethod
    def from_dict(cls, data: dict) -> "SkippedFile":
        return cls(data.get("name", "?"), data.get("reason", ""), data.get("code", "rejected"),
                   dict(data.get("params") or {}))


@dataclass
class IntakeReport:
    """What one upload did: images kept (by class), files skipped with reasons, classes created."""

    added: list[ImageRecord] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    created_classes: list[str] = field(default_factory=list)
    source: str = ""
    when: str = ""

    def added_by_class(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.added:
            counts[record.class_name] = counts.get(record.class_name, 0) + 1
        return counts

    def to_dict(self) -> dict:
        return {"added": [r.to_dict() for r in self.added], "skipped": [s.to_dict() for s in self.skipped],
                "created_classes": self.created_classes, "source": self.source, "when": self.when}

    @classmethod
    def from_dict(cls, data: dict) -> "IntakeReport":
        return cls([ImageRecord.from_dict(r) for r in data.get("added", [])],
                   [SkippedFile.from_dict(s) for s in data.get("skipped", [])],
                   list(data.get("created_classes", [])), data.get("source", ""), data.get("when", ""))


@dataclass(frozen=True)
class ProjectInfo:
    """One line of the project list. `error` is set (and the counts are 0) for a damaged project."""

    id: str
    name: str
    modified: float
    n_classes: int = 0
    n_images: int = 0
    n_runs: int = 0
    error: WorkspaceError | None = None


@dataclass(frozen=True)
class RunInfo:
    """A saved run as listed: its id, when, how, and the headline numbers."""

    id: str
    created: str
    method: str
    backbone: str
    shots: int
    accuracy: float | None
    zero_shot_accuracy: float | None
    n_test: int
    error: WorkspaceError | None = None


# ------------------------------------------------------------------------------- atomic writes


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic.write_bytes(path, data)


def atomic_write_json(path: Path, data) -> None:
    atomic.write_json(path, data, indent=1)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -------------------------------------------------------------------------------------- names


def clean_display_name(name: str | None) -> str:
    """A file name fit to show: the last path component, no control characters, bounded length.

    Browsers send bare names, but archives and some clients send 'folder/name' or 'C:\\x\\name';
    only the text after the last separator is kept. The result is never used to build a path."""
    text = unicodedata.normalize("NFC", str(name or ""))
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip()
    if len(text) > MAX_NAME_CHARS:
        stem, dot, suffix = text.rpartition(".")
        keep = MAX_NAME_CHARS - len(suffix) - 2
        text = (stem[:keep] + "~." + suffix) if dot and len(suffix) < 12 else text[:MAX_NAME_CHARS]
    return text or "unnamed"


def clean_class_name(name: str) -> str:
    """The class name as stored and as CLIP reads it; raises WorkspaceError if none is left."""
    cleaned = " ".join(unicodedata.normalize("NFC", str(name or "")).split())
    cleaned = "".join(ch for ch in cleaned if unicodedata.category(ch)[0] != "C")
    if not cleaned:
        raise WorkspaceError("class_name_empty", "A class needs a name, for example 'scratch' or 'no defect'.")
    if len(cleaned) > MAX_CLASS_CHARS:
        raise WorkspaceError("class_name_long", f"Class names can have at most {MAX_CLASS_CHARS} characters; "
                             "CLIP reads the name inside a short sentence.", limit=MAX_CLASS_CHARS)
    return cleaned


def _clean_project_name(name: str) -> str:
    cleaned = " ".join(unicodedata.normalize("NFC", str(name or "")).split())
    if not cleaned:
        raise WorkspaceError("project_name_empty", "A project needs a name.")
    return cleaned[:MAX_PROJECT_CHARS]


def _slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40]


# ------------------------------------------------------------------------------------ locks

_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> threading.RLock:
    key = str(path.resolve())
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.RLock())


# -------------------------------------------------------------------------------- workspace


class Workspace:
    """The folder that holds every project. Cheap to create; holds no state but the root path."""

    def __init__(self, root: str | os.PathLike | None = None):
        root = root if root is not None else os.environ.get(WORKSPACE_ENV) or DEFAULT_ROOT
        self.root = Path(root).expanduser().absolute()
        self.projects_dir = self.root / "projects"
        self.projects_dir.mkdir(parents=True, exist_ok=True)
        self.cache_dir = self.root / "cache"  # derived data (zero-shot class embeddings), safe to delete

    def list_projects(self) -> list[ProjectInfo]:
        """Every project, most recently changed first; damaged ones are listed with their error."""
        infos = []
        for folder in self.projects_dir.iterdir():
            if folder.name.startswith(".") or not folder.is_dir():
                continue
            project = Project(self, folder.name)
            modified = _mtime(folder / MANIFEST)
            try:
                manifest = project.manifest()
            except WorkspaceError as error:
                infos.append(ProjectInfo(folder.name, folder.name, modified, error=error))
                continue
            infos.append(ProjectInfo(folder.name, manifest["name"], modified, len(manifest["classes"]),
                                     len(manifest["images"]), len(project.run_ids())))
        return sorted(infos, key=lambda info: -info.modified)

    def create_project(self, name: str, classes: Iterable[str] = ()) -> "Project":
        name = _clean_project_name(name)
        taken = {info.name.casefold() for info in self.list_projects()}
        if name.casefold() in taken:
            raise WorkspaceError("project_exists", f"A project named '{name}' already exists; choose another name.",
                                 name=name)
        base = _slug(name) or "project"
        project_id = f"{base}-{secrets.token_hex(3)}"
        folder = self.projects_dir / project_id
        folder.mkdir(parents=True)
        manifest = {"format": PROJECT_FORMAT, "format_version": FORMAT_VERSION, "id": project_id, "name": name,
                    "created": _now(), "classes": [], "images": []}
        for class_name in classes:
            cleaned = clean_class_name(class_name)
            if cleaned.casefold() not in {c.casefold() for c in manifest["classes"]}:
                manifest["classes"].append(cleaned)
        atomic_write_json(folder / MANIFEST, manifest)
        return Project(self, project_id)

    def project(self, project_id: str) -> "Project":
        """The project with this id; raises ProjectNotFound. (A damaged manifest is reported when
        it is read, so a damaged project can still be opened to be repaired or deleted.)"""
        if not _PROJECT_ID.match(str(project_id or "")) or not (self.projects_dir / project_id / MANIFEST).exists():
            raise ProjectNotFound("project_not_found", f"There is no project '{project_id}' in {self.projects_dir}.",
                                  project=str(project_id))
        return Project(self, project_id)

    def delete_project(self, project_id: str) -> None:
        project = self.project(project_id)
        # Renamed out of the listing first, so a deletion interrupted half-way leaves no
        # half-project behind that looks real.
        trash = self.projects_dir / f".deleted-{project_id}-{secrets.token_hex(2)}"
        with _lock_for(project.path):
            os.replace(project.path, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def create_demo_project(self, name: str, *, seed: int = 0,
                            progress: Callable[[int, int], None] | None = None) -> "Project":
        """A project holding the demo inspection task (dapt_core.demo_task), training and test
        pictures together per class; the hold-out split is drawn when tuning starts."""
        from . import demo_task

        project = self.create_project(name, demo_task.CLASSES)
        counts = {"train": demo_task.TRAIN_PER_CLASS, "test": demo_task.TEST_PER_CLASS}
        total = len(demo_task.CLASSES) * sum(counts.values())
        done = 0
        for class_name in demo_task.CLASSES:
            files = []
            for part, n in counts.items():
                for index in range(n):
                    pixels = demo_task.render_demo_image(seed, part, class_name, index)
                    buffer = io.BytesIO()
                    Image.fromarray(pixels).save(buffer, format="PNG")
                    files.append((f"{part}-{index:03d}.png", buffer.getvalue()))
                    done += 1
                    if progress is not None:
                        progress(done, total)
            project.add_images(class_name, files, source="demo", remember=False)
        return project


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


# ---------------------------------------------------------------------------------- project


class Project:
    """A handle on one project folder. Every call reads the manifest fresh, so two sessions that
    hold handles on the same project always see each other's changes."""

    def __init__(self, workspace: Workspace, project_id: str):
        self.workspace = workspace
        self.id = project_id
        self.path = workspace.projects_dir / project_id
        self.images_dir = self.path / "images"
        self.thumbs_dir = self.path / "thumbs"
        self.runs_dir = self.path / "runs"
        self._lock = _lock_for(self.path)

    # ------------------------------------------------------------------ manifest
    def manifest(self) -> dict:
        """The manifest, validated. Raises ManifestDamaged (never repairs or replaces it)."""
        path = self.path / MANIFEST
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ProjectNotFound("project_not_found", f"The project folder {self.path} has no {MANIFEST}; "
                                  "it may have been deleted.", project=self.id) from None
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
        backup = self.path / BACKUP
        hint = (f" A copy from before the last change is in {backup}; restore it from the Projects page or by hand."
                if backup.exists() else " Fix the file by hand, or delete the project.")
        return ManifestDamaged("manifest_damaged",
                               f"The manifest {self.path / MANIFEST} of project '{self.id}' is damaged: {what}. "
                               f"It was left as it is.{hint}",
                               path=str(self.path / MANIFEST), detail=what, has_backup=backup.exists())

    def _write_manifest(self, manifest: dict) -> None:
        current = self.path / MANIFEST
        if current.exists():
            atomic_write_bytes(self.path / BACKUP, current.read_bytes())
        atomic_write_json(current, manifest)

    def restore_backup(self) -> None:
        """Put the manifest from before the last change back (an explicit user action)."""
        backup = self.path / BACKUP
        with self._lock:
            if not backup.exists():
                raise WorkspaceError("no_backup", f"There is no backup manifest {backup}.")
            data = backup.read_bytes()
            try:
                problem = _manifest_problem(json.loads(data))
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                problem = str(error)
            if problem:
                raise WorkspaceError("backup_damaged", f"The backup {backup} is damaged too ({problem}).",
                                     detail=problem)
            damaged = self.path / MANIFEST
            if damaged.exists():  # keep the damaged one for whoever wants to look at it
                os.replace(damaged, self.path / f"project.damaged-{int(time.time())}.json")
            atomic_write_bytes(damaged, data)

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
        if not _SHA.match(sha256):
            raise WorkspaceError("bad_image_id", f"'{sha256}' is not an image id.")
        if suffix is None:
            found = sorted(self.images_dir.glob(sha256 + ".*"))
            return found[0] if found else self.images_dir / sha256
        return self.images_dir / (sha256 + suffix)

    def thumbnail_path(self, sha256: str) -> Path:
        """A small JPEG preview, made on first use if it is missing."""
        thumb = self.thumbs_dir / f"{sha256}.jpg"
        if not thumb.exists():
            try:
                _write_thumbnail(load_image(self.image_path(sha256)), thumb)
            except ImageRejected:
                return self.image_path(sha256)
        return thumb

    def files_by_class(self) -> dict[str, list[Path]]:
        manifest = self.manifest()
        files: dict[str, list[Path]] = {name: [] for name in manifest["classes"]}
        for item in manifest["images"]:
            files[item["class"]].append(self.images_dir / (item["sha256"] + item.get("suffix", "")))
        return files

    def split(self, shots: int | None, seed: int) -> Split:
        """The hold-out draw for a run: `shots` images per class train, the rest are test images.

        Raises DataError (with what to fix) for fewer than two classes or an empty class."""
        files = self.files_by_class()
        if len(files) < 2:
            raise WorkspaceError("need_two_classes",
                                 f"A task needs at least two classes; this project has {len(files)}. "
                                 "Add classes on the Projects page.", count=len(files))
        empty = [name for name, paths in files.items() if not paths]
        if empty:
            raise WorkspaceError("empty_class", f"Class '{empty[0]}' has no images. Upload some or delete the class.",
                                 name=empty[0], names=", ".join(empty))
        return split_from_files(files, shots, seed)

    def labelled_images(self, classnames: list[str], exclude: Iterable[str] = ()) -> tuple[list, dict]:
        """This project's images of the classes in `classnames`, labelled by position in that list
        (the order of a prompt file), leaving out the images whose sha256 is in `exclude`.

        Returns the LabeledImages and what was left out: {"excluded": n, "other_classes": {name: n}}.
        Class names match exactly, or else ignoring letter case."""
        from .data import LabeledImage

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

    def last_intake(self) -> IntakeReport | None:
        try:
            return IntakeReport.from_dict(json.loads((self.path / INTAKE).read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            return None

    def clear_last_intake(self) -> None:
        (self.path / INTAKE).unlink(missing_ok=True)

    # ------------------------------------------------------------------ project and classes
    def rename(self, new_name: str) -> None:
        new_name = _clean_project_name(new_name)
        others = {info.name.casefold() for info in self.workspace.list_projects() if info.id != self.id}
        if new_name.casefold() in others:
            raise WorkspaceError("project_exists", f"A project named '{new_name}' already exists; choose another name.",
                                 name=new_name)
        with self._lock:
            manifest = self.manifest()
            manifest["name"] = new_name
            self._write_manifest(manifest)

    def add_class(self, name: str) -> str:
        name = clean_class_name(name)
        with self._lock:
            manifest = self.manifest()
            _refuse_taken(manifest, name)
            manifest["classes"].append(name)
            self._write_manifest(manifest)
        return name

    def rename_class(self, old: str, new: str) -> str:
        new = clean_class_name(new)
        with self._lock:
            manifest = self.manifest()
            _require_class(manifest, old)
            if new != old:
                _refuse_taken(manifest, new, ignore=old)
            manifest["classes"] = [new if c == old else c for c in manifest["classes"]]
            for item in manifest["images"]:
                if item["class"] == old:
                    item["class"] = new
            self._write_manifest(manifest)
        return new

    def delete_class(self, name: str) -> int:
        """Remove a class and its images; returns how many images went with it."""
        with self._lock:
            manifest = self.manifest()
            _require_class(manifest, name)
            removed = [item["sha256"] for item in manifest["images"] if item["class"] == name]
            manifest["classes"] = [c for c in manifest["classes"] if c != name]
            manifest["images"] = [item for item in manifest["images"] if item["class"] != name]
            self._write_manifest(manifest)
            self._forget_blobs(removed)
        return len(removed)

    # ------------------------------------------------------------------ images
    def add_images(self, class_name: str, files: Iterable[tuple[str, bytes | Path]], *, source: str = "upload",
                   remember: bool = True, create_class: bool = False) -> IntakeReport:
        """Keep every file the engine can decode, in `class_name`; list the others with the reason.

        `files` are (name as uploaded, bytes or a path to read). Nothing of a name is used for a path."""
        report = IntakeReport(source=source, when=_now())
        with self._lock:
            manifest = self.manifest()
            if create_class and class_name not in manifest["classes"]:
                class_name = clean_class_name(class_name)
                _refuse_taken(manifest, class_name)
                manifest["classes"].append(class_name)
                report.created_classes.append(class_name)
            _require_class(manifest, class_name)
            known = {item["sha256"]: item for item in manifest["images"]}
            for raw_name, data in files:
                record = self._intake_one(clean_display_name(raw_name), data, class_name, known, report)
                if record is not None:
                    known[record.sha256] = record.to_dict()
                    manifest["images"].append(record.to_dict())
                    report.added.append(record)
            if report.added or report.created_classes:
                self._write_manifest(manifest)
        if remember:
            self._remember(report)
        return report

    def _intake_one(self, name: str, data: bytes | Path, class_name: str, known: dict,
                    report: IntakeReport) -> ImageRecord | None:
        if isinstance(data, Path):
            try:
                data = data.read_bytes()
            except OSError as error:
                report.skipped.append(SkippedFile(name, f"cannot read file: {error.strerror or error}", "rejected"))
                return None
        try:
            image = load_image(data)
        except ImageRejected as rejected:
            report.skipped.append(SkippedFile(name, str(rejected), "rejected"))
            return None
        digest = sha256_of(data)
        if digest in known:
            other = known[digest]
            report.skipped.append(SkippedFile(
                name, f"the same picture is already in the project as '{other['name']}' in class '{other['class']}'",
                "duplicate", {"other": other["name"], "class": other["class"]}))
            return None
        suffix = _suffix_for(data, name)
        blob = self.images_dir / (digest + suffix)
        if not blob.exists():
            atomic_write_bytes(blob, data)
        _write_thumbnail(image, self.thumbs_dir / f"{digest}.jpg")
        return ImageRecord(digest, name, class_name, _now(), suffix)

    def add_image_paths(self, class_name: str, paths: Iterable[Path], **kwargs) -> IntakeReport:
        """add_images for files on disk (each read when its turn comes, not all at once)."""
        return self.add_images(class_name, ((Path(p).name, Path(p)) for p in paths), **kwargs)

    def import_zip(self, data: bytes, archive_name: str = "upload.zip") -> IntakeReport:
        """Add a ZIP with one folder per class (or train/ and test/ holding those): new folder
        names become classes. The archive is expanded safely into a temporary folder and read
        with the engine's folder scan, whose reasons for skipping a file are kept."""
        report = IntakeReport(source=clean_display_name(archive_name), when=_now())
        with tempfile.TemporaryDirectory(prefix="dapt-zip-") as temporary:
            root = Path(temporary) / "archive"
            root.mkdir()
            try:
                _safe_extract(data, root, report)
            except zipfile.BadZipFile as error:
                raise WorkspaceError("zip_bad", f"{report.source} is not a readable ZIP archive ({error}).",
                                     name=report.source) from None
            task_root = _task_root(root)
            scan = scan_folder(task_root)
            for skipped in scan.skipped:
                report.skipped.append(SkippedFile(_relative(skipped.path, root), skipped.reason, "rejected"))
            classes = scan.classes
            if not classes:
                raise WorkspaceError("zip_no_classes",
                                     f"{report.source} holds no class folders. Put the images of each class in a "
                                     "folder named after the class, and zip those folders.", name=report.source)
            existing = {c.casefold(): c for c in self.classes}
            for folder_name, paths in classes.items():
                try:
                    class_name = clean_class_name(class_prompt_name(folder_name))
                except WorkspaceError as error:
                    report.skipped.extend(SkippedFile(_relative(str(p), root), str(error), error.code) for p in paths)
                    continue
                target = existing.get(class_name.casefold(), class_name)
                files = ((_relative(str(p), root), p) for p in paths)
                part = self.add_images(target, files, remember=False, create_class=True)
                report.added.extend(part.added)
                report.skipped.extend(part.skipped)
                report.created_classes.extend(part.created_classes)
                existing[target.casefold()] = target
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
            _require_class(manifest, to_class)
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
            for path in self.images_dir.glob(sha + ".*"):
                path.unlink(missing_ok=True)
            (self.thumbs_dir / f"{sha}.jpg").unlink(missing_ok=True)

    def _remember(self, report: IntakeReport) -> None:
        atomic_write_json(self.path / INTAKE, report.to_dict())

    # ------------------------------------------------------------------ runs
    def run_ids(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        return sorted((p.name for p in self.runs_dir.iterdir() if _RUN_ID.match(p.name)), reverse=True)

    def runs(self) -> list[RunInfo]:
        """Saved runs, newest first; a run whose files are damaged is listed with its error."""
        infos = []
        for run_id in self.run_ids():
            try:
                data = self.run(run_id).data
            except WorkspaceError as error:
                infos.append(RunInfo(run_id, "", "?", "?", 0, None, None, 0, error))
                continue
            metrics = data["metrics"]
            infos.append(RunInfo(run_id, data["created"], data["method"], data["backbone"]["spec"],
                                 int(data.get("shots") or 0), metrics.get("accuracy"),
                                 metrics.get("zero_shot_accuracy"), int(metrics.get("n_test") or 0)))
        return infos

    def run(self, run_id: str) -> "SavedRun":
        folder = self.runs_dir / str(run_id)
        if not _RUN_ID.match(str(run_id)) or not folder.is_dir():
            raise WorkspaceError("run_not_found", f"There is no run '{run_id}' in project '{self.id}'.", run=str(run_id))
        return SavedRun(self, folder)

    def delete_run(self, run_id: str) -> None:
        run = self.run(run_id)
        trash = self.runs_dir / f".deleted-{run_id}"
        os.replace(run.path, trash)
        shutil.rmtree(trash, ignore_errors=True)
        with self._lock:
            manifest = self.manifest()
            in_manifest = {item["sha256"] for item in manifest["images"]}
        orphans = {p.stem for p in self.images_dir.glob("*") if p.stem not in in_manifest}
        self._forget_blobs(orphans)

    def _shas_in_runs(self) -> set[str]:
        shas: set[str] = set()
        for run_id in self.run_ids():
            try:
                data = self.run(run_id).data
            except WorkspaceError:
                continue
            shas.update(item["sha256"] for item in data.get("train", []) + data.get("test", []))
        return shas

    def save_run(self, result, *, request: dict | None = None, prompt_extra: dict | None = None) -> "SavedRun":
        """Store an ExperimentResult: settings and metrics, the prompt file, and the embeddings
        Inspect draws. Everything is written into a hidden folder that is renamed into place
        at the end, so a run is either complete or absent."""
        import torch
        from safetensors.torch import save_file

        records = self.names_by_sha()
        classnames = list(result.split.classnames)
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{result.config.method}-{secrets.token_hex(2)}"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self._clean_incoming()
        incoming = self.runs_dir / f".incoming-{run_id}"
        incoming.mkdir()
        try:
            def describe(path, label) -> dict:
                sha = Path(path).stem
                record = records.get(sha)
                return {"sha256": sha, "name": record.name if record else Path(path).name,
                        "class": classnames[label], "suffix": Path(path).suffix}

            test_rows = [describe(p, int(label)) for p, label in zip(result.after.paths, result.after.labels.tolist())]
            train_rows = [describe(item.path, item.label) for item in result.split.train]
            metrics = result.metrics()
            for entry in metrics.get("skipped", []):
                sha = Path(entry["path"]).stem
                entry["path"] = records[sha].name if sha in records else Path(entry["path"]).name
            data = {
                "format": RUN_FORMAT, "format_version": FORMAT_VERSION, "id": run_id, "created": _now(),
                "project": {"id": self.id, "name": self.name},
                "method": result.config.method, "backbone": result.backbone.describe(),
                "device": str(result.backbone.device), "shots": result.shots, "seed": result.config.seed,
                "classnames": classnames, "request": request or {}, "metrics": metrics,
                "train": train_rows, "test": test_rows,
            }
            before, after = result.before, result.after
            tensors = {
                "before_features": before.features, "after_features": after.features,
                "before_text": before.text_features, "after_text": after.text_features,
                "before_logits": before.logits, "after_logits": after.logits,
                "labels": after.labels.to(torch.int64),
            }
            tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
            tensors = {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}
            save_file(tensors, str(incoming / EMBEDDINGS_FILE))
            extra = {"dapt_studio": {"project": data["project"]["name"], "run_id": run_id,
                                     "image_names": {row["sha256"]: row["name"] for row in train_rows}}}
            extra["dapt_studio"].update(prompt_extra or {})
            result.save_prompt_file(incoming / PROMPT_FILE, extra=extra)
            atomic_write_json(incoming / RUN_FILE, data)
            _fsync_dir(incoming)
            os.replace(incoming, self.runs_dir / run_id)
            _fsync_dir(self.runs_dir)
        except BaseException:
            shutil.rmtree(incoming, ignore_errors=True)
            raise
        return SavedRun(self, self.runs_dir / run_id)

    # A job that is tuning leaves a marker, removed when it ends in any way. A marker written by
    # another server process means that process stopped mid-run: the user is told, not left
    # wondering where the run went.
    def mark_running(self, job_id: str, info: dict) -> None:
        atomic_write_json(self.runs_dir / f".running-{job_id}.json",
                          {**info, "job_id": job_id, "process": PROCESS_TOKEN, "started": _now()})

    def clear_running(self, job_id: str) -> None:
        if re.fullmatch(r"[0-9a-f]{1,32}", str(job_id)):
            (self.runs_dir / f".running-{job_id}.json").unlink(missing_ok=True)

    def interrupted_runs(self) -> list[dict]:
        """Runs that a previous server process started and never finished."""
        found = []
        for path in sorted(self.runs_dir.glob(".running-*.json")) if self.runs_dir.is_dir() else []:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if data.get("process") != PROCESS_TOKEN:
                found.append(data)
        return found

    def _clean_incoming(self) -> None:
        """Remove leftovers of runs whose saving was interrupted (a crash mid-save)."""
        for folder in self.runs_dir.glob(".incoming-*"):
            if time.time() - _mtime(folder) > _STALE_INCOMING_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)


class SavedRun:
    """One saved run: its settings and metrics (`data`), embeddings and prompt file."""

    def __init__(self, project: Project, folder: Path):
        self.project = project
        self.path = folder
        self.id = folder.name
        try:
            self.data = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise WorkspaceError("run_damaged", f"Run {self.id} cannot be read ({error}); delete it.",
                                 run=self.id, detail=str(error)) from None
        if not isinstance(self.data, dict) or self.data.get("format") != RUN_FORMAT or "metrics" not in self.data:
            raise WorkspaceError("run_damaged", f"Run {self.id} is not a DAPT Studio run; delete it.",
                                 run=self.id, detail="unknown format")

    @property
    def metrics(self) -> dict:
        return self.data["metrics"]

    @property
    def classnames(self) -> list[str]:
        return list(self.data["classnames"])

    @property
    def prompt_file(self) -> Path:
        return self.path / PROMPT_FILE

    def embeddings(self) -> dict:
        """numpy arrays: before/after_features (N, D), before/after_text (C, D), before/after_logits
        (N, C) and labels (N,); row i is test image self.data['test'][i]."""
        from safetensors.numpy import load_file

        try:
            return load_file(str(self.path / EMBEDDINGS_FILE))
        except Exception as error:  # safetensors raises its own error types for damaged files
            raise WorkspaceError("run_damaged", f"The embeddings of run {self.id} cannot be read ({error}).",
                                 run=self.id, detail=str(error)) from None

    def test_image_path(self, row: dict) -> Path:
        return self.project.image_path(row["sha256"], row.get("suffix") or None)

    def load_projection(self, key: dict) -> dict | None:
        """The cached map if it was made with the same settings (`key`), else None."""
        try:
            data = json.loads((self.path / PROJECTION_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return data if data.get("key") == key else None

    def save_projection(self, key: dict, coordinates: dict) -> None:
        atomic_write_json(self.path / PROJECTION_FILE, {"key": key, **coordinates})


# -------------------------------------------------------------------------------- helpers


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
        if not isinstance(item, dict) or not _SHA.match(str(item.get("sha256", ""))):
            return f"image entry {index + 1} has no valid sha256"
        if item.get("class") not in known:
            return f"image entry {index + 1} names class {item.get('class')!r}, which is not in the class list"
        if not isinstance(item.get("name"), str):
            return f"image entry {index + 1} has no name"
        if item["sha256"] in seen:
            return f"image {item['sha256'][:12]} is listed twice"
        seen.add(item["sha256"])
    return None


def _require_class(manifest: dict, name: str) -> None:
    if name not in manifest["classes"]:
        raise WorkspaceError("class_not_found", f"There is no class '{name}' in this project.", name=name)


def _refuse_taken(manifest: dict, name: str, ignore: str | None = None) -> None:
    for existing in manifest["classes"]:
        if existing != ignore and existing.casefold() == name.casefold():
            raise WorkspaceError("class_exists", f"A class named '{existing}' already exists.", name=existing)


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


def _write_thumbnail(image: Image.Image, path: Path) -> None:
    thumb = image.copy()
    thumb.thumbnail((THUMB_SIZE, THUMB_SIZE))
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=85)
    atomic_write_bytes(path, buffer.getvalue())


def _fsync_dir(path: Path) -> None:
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


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


def _safe_extract(data: bytes, root: Path, report: IntakeReport) -> None:
    """Expand a ZIP under `root`: no absolute paths, no '..', no links, bounded sizes."""
    total = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
        if len(members) > ZIP_MAX_MEMBERS:
            raise WorkspaceError("zip_too_many", f"The archive holds {len(members):,} entries; at most "
                                 f"{ZIP_MAX_MEMBERS:,} are read. Split it into smaller archives.",
                                 count=len(members), limit=ZIP_MAX_MEMBERS)
        for member in members:
            if member.is_dir():
                continue
            relative = _safe_member_path(member.filename)
            shown = member.filename
            if relative is None:
                report.skipped.append(SkippedFile(shown, "its path leaves the archive folder (absolute or '..'); "
                                                  "it was not extracted", "zip_unsafe_path"))
                continue
            mode = member.external_attr >> 16
            if stat.S_ISLNK(mode):
                report.skipped.append(SkippedFile(shown, "it is a link, not a file; it was not extracted", "zip_link"))
                continue
            target = root.joinpath(*relative.parts)
            if target.exists():
                report.skipped.append(SkippedFile(shown, "the archive holds this path twice; the first copy was kept",
                                                  "zip_duplicate_path"))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            too_big = False
            with archive.open(member) as source, open(target, "wb") as out:
                for block in iter(lambda: source.read(1 << 20), b""):
                    written += len(block)
                    if written > ZIP_MAX_MEMBER_BYTES or total + written > ZIP_MAX_TOTAL_BYTES:
                        too_big = True
                        break
                    out.write(block)
            if too_big:
                target.unlink(missing_ok=True)
                report.skipped.append(SkippedFile(shown, "it expands to more than the size limit; it was not "
                                                  "extracted", "zip_too_big",
                                                  {"limit_mb": ZIP_MAX_MEMBER_BYTES // 2**20}))
                if total + written > ZIP_MAX_TOTAL_BYTES:
                    raise WorkspaceError("zip_total_too_big", "The archive expands to more than "
                                         f"{ZIP_MAX_TOTAL_BYTES // 2**30} GB; split it into smaller archives.",
                                         limit_gb=ZIP_MAX_TOTAL_BYTES // 2**30)
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


__all__ = [
    "Workspace", "Project", "SavedRun", "ImageRecord", "IntakeReport", "SkippedFile", "ProjectInfo", "RunInfo",
    "WorkspaceError", "ProjectNotFound", "ManifestDamaged", "DaptError", "atomic_write_json", "atomic_write_bytes",
    "clean_display_name", "clean_class_name", "WORKSPACE_ENV",
]
