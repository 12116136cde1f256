"""What every part of the workspace shares: the file names and formats of a project folder, the errors
with codes the app translates, the records kept in a manifest, names made safe to show and store,
atomic writes and the per-project locks."""

from __future__ import annotations

import io
import os
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image

from .. import atomic
from ..errors import DataError
from .messages import ERRORS, SKIP_REASONS

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

MAX_NAME_CHARS = 200  # display names of images; longer ones are shortened, never refused
MAX_CLASS_CHARS = 80  # class names end up in a 77-token CLIP prompt
MAX_PROJECT_CHARS = 100
THUMB_SIZE = 160  # pixels of the longer side of a preview
SHA256_NAME = re.compile(r"^[0-9a-f]{64}$")

# ------------------------------------------------------------------------------------- errors


class WorkspaceError(DataError):
    """A workspace operation that cannot be done; `code` and `params` let the app translate it."""

    def __init__(self, code: str, **params):
        super().__init__(ERRORS[code].format(**params))
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
    # "train" or "test" when the picture came from a train/ or test/ folder (a ZIP, the demo):
    # that split is kept when tuning. "" for an ordinary upload; see ProjectManifest.split.
    part: str = ""

    @property
    def file_name(self) -> str:
        return self.sha256 + self.suffix

    def to_dict(self) -> dict:
        data = {"sha256": self.sha256, "name": self.name, "class": self.class_name, "added": self.added,
                "suffix": self.suffix}
        if self.part:
            data["part"] = self.part
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ImageRecord:
        return cls(data["sha256"], data["name"], data["class"], data.get("added", ""), data.get("suffix", ".img"),
                   data.get("part", ""))


@dataclass
class SkippedFile:
    """A file an upload did not keep. `reason` is English; `code`/`params` let the app translate
    the workspace's own reasons (the engine's reasons come as text and are shown as they are)."""

    name: str
    reason: str
    code: str = "rejected"
    params: dict = field(default_factory=dict)

    @classmethod
    def of(cls, code: str, name: str, **params) -> SkippedFile:
        """A skipped file with the English reason of `code` (messages.SKIP_REASONS)."""
        return cls(name, SKIP_REASONS[code].format(**params), code, params)

    def to_dict(self) -> dict:
        return {"name": self.name, "reason": self.reason, "code": self.code, "params": self.params}

    @classmethod
    def from_dict(cls, data: dict) -> SkippedFile:
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
    def from_dict(cls, data: dict) -> IntakeReport:
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
    # Tuned escape and overkill rates (a part passing when the good class is its most probable class);
    # None for a run without a good class.
    escapes: float | None = None
    overkill: float | None = None
    created_by: str | None = None  # the signed-in user whose job made it; None without sign-in


# ------------------------------------------------------------------------------- atomic writes


def atomic_write_json(path: Path, data) -> None:
    atomic.write_json(path, data, indent=1)


def utc_now() -> str:
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
        raise WorkspaceError("class_name_empty")
    if len(cleaned) > MAX_CLASS_CHARS:
        raise WorkspaceError("class_name_long", limit=MAX_CLASS_CHARS)
    return cleaned


def clean_project_name(name: str) -> str:
    cleaned = " ".join(unicodedata.normalize("NFC", str(name or "")).split())
    if not cleaned:
        raise WorkspaceError("project_name_empty")
    return cleaned[:MAX_PROJECT_CHARS]


def slug_of(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40]


# ------------------------------------------------------------------------------------ locks

_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def lock_for(path: Path) -> threading.RLock:
    key = str(path.resolve())
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.RLock())


def mtime_of(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def fsync_dir(path: Path) -> None:
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


def thumbnail_name(sha256: str) -> str:
    # The shape is in the name: previews of the older, unpadded shape (a 3000x20 picture gave a
    # 160x1 one that the page could not show) are simply not used and get made again.
    return f"{sha256}.sq{THUMB_SIZE}.jpg"


def write_thumbnail(image: Image.Image, path: Path) -> None:
    """The picture shrunk to fit THUMB_SIZE and centred on a square, so every picture the intake
    accepts (a 3000x20 strip, a 1x1 pixel) gives a preview of one shape that a grid can scale."""
    # Shrunk by whole factors first (cheap, and no full-size copy of a 100-megapixel photo), then finely.
    factors = (max(1, image.width // (2 * THUMB_SIZE)), max(1, image.height // (2 * THUMB_SIZE)))
    fitted = image.reduce(factors) if factors != (1, 1) else image.copy()
    fitted = fitted if fitted.mode == "RGB" else fitted.convert("RGB")
    fitted.thumbnail((THUMB_SIZE, THUMB_SIZE))
    square = Image.new("RGB", (THUMB_SIZE, THUMB_SIZE), (238, 238, 242))
    square.paste(fitted, ((THUMB_SIZE - fitted.width) // 2, (THUMB_SIZE - fitted.height) // 2))
    buffer = io.BytesIO()
    square.save(buffer, format="JPEG", quality=85)
    atomic.write_bytes(path, buffer.getvalue())
